package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// PIDCPU is the user + system CPU time process pid has used so far, from /proc/<pid>/stat
// (utime and stime, in USER_HZ ticks of 10 ms); ok is false when it cannot be read.
func PIDCPU(pid int) (cpu time.Duration, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the ")" closing the command name (which may hold spaces): utime and
	// stime are the 12th and 13th.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * (time.Second / 100), true
}

// KafkaBrokerPID is the pid of the local stack's Kafka broker (the kafka.Kafka JVM), from
// MXTRAIL_KAFKA_PIDFILE or kafka/kafka.pid under StateDir; ok is false when there is none.
// Benchmarks report the broker's CPU per record with PIDCPU: on a shared box it competes
// with the process measured.
func KafkaBrokerPID() (pid int, ok bool) {
	pf := os.Getenv("MXTRAIL_KAFKA_PIDFILE")
	if pf == "" {
		pf = filepath.Join(StateDir(), "kafka", "kafka.pid")
	}
	b, err := os.ReadFile(pf)
	if err != nil {
		return 0, false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if _, ok := PIDCPU(pid); !ok {
		return 0, false // a stale pid file
	}
	return pid, true
}
