package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// startCPUProfile starts the --cpuprofile of a command when path is set; the caller defers
// the returned stop. Errors name the file and are for the command's exit code 2.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %q: %w", path, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// heapProfileAtExit returns a function that writes the allocation profile (every allocation
// since start, and the live heap at the last GC) to path; nothing when path is empty. Errors
// go to stderr: a profile is for performance work and must not change the exit code.
func heapProfileAtExit(path string, stderr io.Writer) func() {
	if path == "" {
		return func() {}
	}
	return func() {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "memory profile %q: %v\n", path, err)
		}
	}
}
