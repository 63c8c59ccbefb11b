// Package checkpoint owns the shipper's file positions: which file (device, inode and a
// fingerprint of its first bytes) has been acknowledged by Kafka up to which byte offset. The
// file is written atomically (temp file, fsync, rename, fsync of the directory), so a crash
// leaves either the old or the new version, never a torn one.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Key identifies a file independently of its path.
type Key struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (k Key) String() string { return fmt.Sprintf("%d:%d", k.Dev, k.Ino) }

// Position is what is persisted for one file.
type Position struct {
	Key Key `json:"key"`
	// Path is informational (last path seen); identity is Key plus Fingerprint.
	Path string `json:"path"`
	// Fingerprint is the file's first bytes (up to the tailer's fingerprint size) when the
	// position was taken; a file whose first bytes differ is a different file or was truncated.
	Fingerprint []byte `json:"fingerprint"`
	// Offset is the byte offset just after the last line Kafka acknowledged.
	Offset int64     `json:"offset"`
	Seen   time.Time `json:"seen"`
}

// Store keeps the positions in memory and persists them to one file.
type Store struct {
	path string

	mu      sync.Mutex
	pos     map[Key]Position
	dirty   bool
	lastOK  time.Time
	lastErr error
}

type fileFormat struct {
	Version   int        `json:"version"`
	Positions []Position `json:"positions"`
}

// Open reads the checkpoint file at path; a missing file is an empty store.
func Open(path string) (*Store, error) {
	s := &Store{path: path, pos: map[Key]Position{}, lastOK: time.Now()}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode checkpoint %q: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("checkpoint %q: unsupported version %d", path, f.Version)
	}
	for _, p := range f.Positions {
		s.pos[p.Key] = p
	}
	return s, nil
}

// Get returns the stored position for k.
func (s *Store) Get(k Key) (Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pos[k]
	return p, ok
}

// Set records p; it reaches the disk at the next Flush.
func (s *Store) Set(p Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos[p.Key] = p
	s.dirty = true
}

// Delete forgets k (the file is gone and fully shipped).
func (s *Store) Delete(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pos[k]; ok {
		delete(s.pos, k)
		s.dirty = true
	}
}

// Age is the time since the last successful flush (or since Open).
func (s *Store) Age() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.lastOK)
}

// Flush writes the positions if anything changed since the last flush.
func (s *Store) Flush() error {
	s.mu.Lock()
	if !s.dirty {
		s.lastOK = time.Now()
		s.mu.Unlock()
		return nil
	}
	f := fileFormat{Version: 1, Positions: make([]Position, 0, len(s.pos))}
	for _, p := range s.pos {
		f.Positions = append(f.Positions, p)
	}
	s.dirty = false
	s.mu.Unlock()

	sort.Slice(f.Positions, func(i, j int) bool { return f.Positions[i].Path < f.Positions[j].Path })
	data, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		err = WriteAtomic(s.path, data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.dirty = true
		s.lastErr = err
		return err
	}
	s.lastOK = time.Now()
	return nil
}

// WriteAtomic replaces path with data: temp file in the same directory, fsync, rename,
// fsync of the directory.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("write checkpoint %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync checkpoint dir %q: %w", dir, err)
		}
	}
	return nil
}
