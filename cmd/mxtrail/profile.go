package main

import (
	"fmt"
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
