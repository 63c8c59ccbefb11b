package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the user + system CPU time this process has used so far (getrusage), for
// benchmarks that report CPU per record: less sensitive than wall time to other jobs on the
// machine.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
