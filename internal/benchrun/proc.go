package benchrun

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is one pipeline stage running as its own process of the mxtrail binary.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
	killed  bool
	hwmKiB  int64 // highest VmHWM seen in /proc/<pid>/status
}

// sampleRSS records the child's peak resident set so far (VmHWM). wait4's ru_maxrss cannot be
// used: Linux carries the parent's high-water mark across fork and exec into the child's
// maxrss, so every stage reported the bench's own peak (628 MiB each in a 2M-line run).
func (c *child) sampleRSS() {
	if kib, err := vmHWM(c.cmd.Process.Pid); err == nil && kib > c.hwmKiB {
		c.hwmKiB = kib
	}
}

// vmHWM is a process's peak resident set size in KiB, from /proc/<pid>/status.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	return parseVmHWM(b)
}

func parseVmHWM(status []byte) (int64, error) {
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("malformed VmHWM line %q: %w", l, err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("no VmHWM line in the process status")
}

// startChild runs exe with args, its output going to logDir/<name>.log. env is the
// environment the child gets.
func startChild(name, exe string, args []string, env []string, logDir string) (*child, error) {
	lp := filepath.Join(logDir, name+".log")
	f, err := os.Create(lp)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = f, f, env
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s %s): %w", name, exe, strings.Join(args, " "), err)
	}
	c := &child{name: name, cmd: cmd, logPath: lp, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (the stages drain and commit on it) and waits up to grace, then kills.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	c.sampleRSS()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	tick := time.NewTicker(20 * time.Millisecond) // the drain on SIGTERM may still grow the peak
	defer tick.Stop()
	kill := time.After(grace)
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
			c.sampleRSS()
		case <-kill:
			c.killed = true
			_ = c.cmd.Process.Kill()
			<-c.done
			return
		}
	}
}

// usage is the child's CPU (user+system, from wait4) and peak RSS (the VmHWM samples); valid
// after it exited.
func (c *child) usage() (cpu time.Duration, maxRSSKiB int64) {
	if c.cmd.ProcessState == nil {
		return 0, c.hwmKiB
	}
	return c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime(), c.hwmKiB
}

// logTail is the last n bytes of the child's log, for error messages.
func (c *child) logTail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu of pid %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("pid %d: malformed stat %q", pid, s)
	}
	fs := strings.Fields(s[i+2:])
	if len(fs) < 13 {
		return 0, fmt.Errorf("pid %d: malformed stat %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: malformed stat %q", pid, s)
	}
	const userHZ = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// findServer locates a server process: first the pid file deploy/local wrote under stateDir,
// checked against the command line, else a scan of /proc for a command line matching pattern.
func findServer(pidFile string, pattern *regexp.Regexp) (int, string) {
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if cl := cmdline(pid); pattern.MatchString(cl) {
				return pid, cl
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cl := cmdline(pid); pattern.MatchString(cl) {
			return pid, cl
		}
	}
	return 0, ""
}

func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

var (
	kafkaProc      = regexp.MustCompile(`kafka\.Kafka\b`)
	clickhouseProc = regexp.MustCompile(`clickhouse-server|clickhouse server`)
	kafkaJar       = regexp.MustCompile(`kafka_2\.\d+-([0-9][0-9A-Za-z.\-]*?)\.jar`)
)

// kafkaVersion reads the broker's version from the kafka_2.x-<version>.jar on its class path
// (deploy/local starts it with a directory wildcard, so the jar is looked up there).
func kafkaVersion(cmd string) string {
	if m := kafkaJar.FindStringSubmatch(cmd); m != nil {
		return m[1]
	}
	f := strings.Fields(cmd)
	for i := 0; i+1 < len(f); i++ {
		if f[i] != "-cp" && f[i] != "-classpath" {
			continue
		}
		for _, e := range strings.Split(f[i+1], ":") {
			if !strings.HasSuffix(e, "*") {
				continue
			}
			jars, _ := filepath.Glob(filepath.Join(strings.TrimSuffix(e, "*"), "kafka_2.*-*.jar"))
			for _, j := range jars {
				if m := kafkaJar.FindStringSubmatch(filepath.Base(j)); m != nil {
					return m[1]
				}
			}
		}
	}
	return "unknown"
}

// Machine describes where the bench ran.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	RAMMiB     int64  `json:"ram_mib"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Kafka      string `json:"kafka"`
	ClickHouse string `json:"clickhouse"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", Kernel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.RAMMiB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// machineCPU is the CPU time all processes of the machine used (busy = not idle, not iowait),
// and the wall time it covers (all cores), from /proc/stat.
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseStatCPU(line)
}

// parseStatCPU reads the "cpu  user nice system idle iowait irq softirq steal ..." line.
func parseStatCPU(line string) (busy, total time.Duration, err error) {
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("machine cpu: malformed /proc/stat line %q", line)
	}
	var ticks [8]int64
	for i := 1; i < len(f) && i <= len(ticks); i++ { // guest times are already in user
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("machine cpu: malformed /proc/stat line %q", line)
		}
		ticks[i-1] = v
	}
	var all int64
	for _, v := range ticks {
		all += v
	}
	const userHZ = 100
	idle := ticks[3] + ticks[4]
	return time.Duration(all-idle) * time.Second / userHZ, time.Duration(all) * time.Second / userHZ, nil
}

// gitCommit is the short commit of the working tree in dir, "-dirty" when it has changes;
// outside a work tree, the revision the binary was built from.
func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return builtCommit()
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

func builtCommit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, st := range bi.Settings {
		switch {
		case st.Key == "vcs.revision" && len(st.Value) >= 7:
			rev = st.Value[:7]
		case st.Key == "vcs.modified" && st.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev + dirty
}

// selfCPU is the CPU time (user+system) the bench process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
