package gen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current generator")

// TestGolden pins a small fleet (seed 1, 120 sessions, 2% garbage) byte for byte. It fails
// when a change alters any generated line, so format changes are deliberate and visible in
// review (go test ./enrich/gen -run Golden -update rewrites it). The files double as small
// fixtures for the parser and assembler.
func TestGolden(t *testing.T) {
	o := small(1, 120)
	o.GarbageRate = 0.02
	fs, _ := generate(t, o)
	dir := filepath.Join("testdata", "golden")
	names := make([]string, 0, len(fs.files))
	for n := range fs.files {
		names = append(names, n)
	}
	sort.Strings(names)
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), fs.files[n].Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(names) {
		t.Errorf("golden holds %d files, the generator wrote %d", len(entries), len(names))
	}
	for _, n := range names {
		want, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("golden lacks %s: %v", n, err)
			continue
		}
		if got := fs.files[n].Bytes(); !bytes.Equal(got, want) {
			line := 1 + bytes.Count(want[:commonPrefix(got, want)], []byte{'\n'})
			t.Errorf("%s differs from testdata/golden from line %d (rerun with -update if the change is intended)", n, line)
		}
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
