package benchrun

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/vjeantet/grok"

	"github.com/mxtrail/mxtrail/enrich/event"
	"github.com/mxtrail/mxtrail/enrich/gen"
	"github.com/mxtrail/mxtrail/enrich/parse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// sampleLine is one generated line with what the shipper would tell the enricher about it.
type sampleLine struct {
	line []byte
	src  event.Source
}

// sampleLines takes about n lines spread evenly over the shipped files (every k-th line), with
// what the enricher knows of them (host; no dialect hint).
func sampleLines(dir string, sum *gen.Summary, n int) ([]sampleLine, error) {
	total := sum.Total.Lines
	k := 1
	if n > 0 && total > n {
		k = (total + n - 1) / n
	}
	var out []sampleLine
	for _, h := range sum.Hosts {
		name := mergedName(h.Host)
		fh, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sample lines: %w", err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		i := 0
		for sc.Scan() {
			if i%k == 0 {
				out = append(out, sampleLine{line: bytes.Clone(sc.Bytes()), src: event.Source{Host: h.Host, File: name, Loc: time.UTC}})
			}
			i++
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("sample lines of %s: %w", name, err)
		}
	}
	return out, nil
}

// threadCPU is the CPU time of the calling OS thread (the caller locks it).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD on Linux
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// GrokBaseline is baseline (a): the same lines through default-pattern grok in sequence.
type GrokBaseline struct {
	Lines int `json:"lines"`
	// Matched counts lines some pattern matched (the rest tried all nine).
	Matched int `json:"matched"`
	// LinesPerCoreSec = lines / CPU seconds of the one thread that parsed them.
	LinesPerCoreSec float64 `json:"lines_per_core_s"`
	// RouterLinesPerCoreSec: the same sample through mxtrail's own parser, same method.
	RouterLinesPerCoreSec float64 `json:"router_lines_per_core_s"`
	RouterParsed          int     `json:"router_parsed"`
}

func grokBaseline(lines []sampleLine, year int) (GrokBaseline, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g, err := grok.NewWithConfig(&grok.Config{NamedCapturesOnly: true})
	if err != nil {
		return GrokBaseline{}, fmt.Errorf("grok baseline: %w", err)
	}
	for _, pat := range parse.TelegrafPatterns { // compile before timing
		if _, err := g.Parse(pat, ""); err != nil {
			return GrokBaseline{}, fmt.Errorf("compile grok pattern %q: %w", pat, err)
		}
	}
	res := GrokBaseline{Lines: len(lines)}
	c0 := threadCPU()
	for i := range lines {
		s := string(lines[i].line)
		for _, pat := range parse.TelegrafPatterns {
			if m, _ := g.Parse(pat, s); len(m) > 0 {
				res.Matched++
				break
			}
		}
	}
	if d := threadCPU() - c0; d > 0 {
		res.LinesPerCoreSec = float64(len(lines)) / d.Seconds()
	}

	p, err := parse.New(parse.Options{DefaultYear: year, Location: time.UTC})
	if err != nil {
		return res, fmt.Errorf("router baseline: %w", err)
	}
	var ev event.Event
	for i := range lines { // warm the event buffer
		p.Parse(&ev, lines[i].line, &lines[i].src)
	}
	const rounds = 5 // the router is ~30x faster: time more of it
	c0 = threadCPU()
	for r := 0; r < rounds; r++ {
		for i := range lines {
			p.Parse(&ev, lines[i].line, &lines[i].src)
			if r == 0 && ev.Parsed {
				res.RouterParsed++
			}
		}
	}
	if d := threadCPU() - c0; d > 0 {
		res.RouterLinesPerCoreSec = float64(rounds*len(lines)) / d.Seconds()
	}
	return res, nil
}

// NativeBaseline is baseline (b): the sunk session rows inserted by clickhouse-client in
// Native format into an empty copy of the sessions table (the server's ceiling here).
type NativeBaseline struct {
	Rows       int64   `json:"rows"`
	Bytes      int64   `json:"bytes"` // size of the Native file
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_s"`
	// ServerCPUMicrosPerRow is ClickHouse's CPU during the insert, per row.
	ServerCPUMicrosPerRow float64 `json:"server_cpu_us_per_row"`
	Client                string  `json:"client"`
}

// clickhouseClient builds clickhouse-client arguments for the first configured address.
func clickhouseClient(o *Options) (string, []string, error) {
	bin, err := exec.LookPath("clickhouse-client")
	if err != nil {
		return "", nil, fmt.Errorf("clickhouse-client not found (apt-get install clickhouse-client): %w", err)
	}
	if len(o.ClickHouse.Addrs) == 0 {
		return "", nil, fmt.Errorf("no clickhouse address configured")
	}
	host, port, err := net.SplitHostPort(o.ClickHouse.Addrs[0])
	if err != nil {
		return "", nil, fmt.Errorf("clickhouse address %q: %w", o.ClickHouse.Addrs[0], err)
	}
	args := []string{"--host", host, "--port", port}
	if o.ClickHouse.Username != "" {
		args = append(args, "--user", o.ClickHouse.Username)
	}
	if o.ClickHouse.Password != "" {
		args = append(args, "--password", o.ClickHouse.Password)
	}
	if o.ClickHouse.TLS != nil {
		args = append(args, "--secure")
	}
	return bin, args, nil
}

func nativeBaseline(ctx context.Context, o *Options, conn driver.Conn, db, runDir string, chPid int) (NativeBaseline, error) {
	bin, base, err := clickhouseClient(o)
	if err != nil {
		return NativeBaseline{}, err
	}
	res := NativeBaseline{Client: bin}
	file := filepath.Join(runDir, "sessions.native")
	defer os.Remove(file)
	f, err := os.Create(file)
	if err != nil {
		return res, fmt.Errorf("native baseline: %w", err)
	}
	exp := exec.CommandContext(ctx, bin, append(base, "--query", "SELECT * FROM "+db+".sessions FORMAT Native")...)
	var stderr bytes.Buffer
	exp.Stdout, exp.Stderr = f, &stderr
	err = exp.Run()
	f.Close()
	if err != nil {
		return res, fmt.Errorf("export sessions in Native format: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if st, err := os.Stat(file); err == nil {
		res.Bytes = st.Size()
	}
	// the copy needs the settings the schema was created with (LowCardinality on 18.x)
	sv, err := schema.DetectServer(conn)
	if err != nil {
		return res, fmt.Errorf("native baseline: %w", err)
	}
	plan, err := schema.Render(schema.Options{Database: db, Server: sv})
	if err != nil {
		return res, fmt.Errorf("native baseline: %w", err)
	}
	cctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings(plan.Settings)))
	if err := conn.Exec(cctx, "CREATE TABLE "+db+".sessions_native AS "+db+".sessions"); err != nil {
		return res, fmt.Errorf("create the copy of the sessions table: %w", err)
	}
	in, err := os.Open(file)
	if err != nil {
		return res, fmt.Errorf("native baseline: %w", err)
	}
	defer in.Close()
	stderr.Reset()
	ins := exec.CommandContext(ctx, bin, append(base, "--query", "INSERT INTO "+db+".sessions_native FORMAT Native")...)
	ins.Stdin, ins.Stderr = in, &stderr
	var s0 time.Duration
	if chPid > 0 {
		s0, _ = procCPU(chPid)
	}
	t0 := time.Now()
	if err := ins.Run(); err != nil {
		return res, fmt.Errorf("insert sessions in Native format: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	res.Seconds = time.Since(t0).Seconds()
	var s1 time.Duration
	if chPid > 0 {
		s1, _ = procCPU(chPid)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".sessions_native").Scan(&n); err != nil {
		return res, fmt.Errorf("count the copy of the sessions table: %w", err)
	}
	res.Rows = int64(n)
	if res.Seconds > 0 {
		res.RowsPerSec = float64(n) / res.Seconds
	}
	if n > 0 && s1 > s0 {
		res.ServerCPUMicrosPerRow = float64((s1 - s0).Microseconds()) / float64(n)
	}
	return res, nil
}
