package benchrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Targets of the issue on a 2-core machine with Kafka and ClickHouse on the same box.
const (
	TargetLinesPerSec     = 150_000
	TargetShipMicros      = 2.0
	TargetEnrichMicros    = 4.0
	TargetSinkMicros      = 2.0
	TargetSinkRowsPerCore = 250_000
)

func stage(r *Result, name string) *Stage {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return &Stage{Name: name}
}

func ratios(r *Result) {
	if e := stage(r, "enrich"); r.Grok.LinesPerCoreSec > 0 {
		r.Ratios.EnricherVsGrok = e.UnitsPerCPUSecond / r.Grok.LinesPerCoreSec
	}
	if s := stage(r, "sink"); r.Native.RowsPerSec > 0 {
		r.Ratios.SinkVsNative = s.UnitsPerCPUSecond / r.Native.RowsPerSec
		if r.WallSeconds > 0 {
			r.Ratios.E2EVsNative = float64(r.Correctness.Rows) / r.WallSeconds / r.Native.RowsPerSec
		}
	}
}

func targets(r *Result) {
	add := func(name, want, unit string, got float64, met bool) {
		r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Unit: unit, Met: met})
	}
	add("end to end", fmt.Sprintf(">= %d", TargetLinesPerSec), "lines/s", r.LinesPerSec, r.LinesPerSec >= TargetLinesPerSec)
	sh, en, si := stage(r, "ship"), stage(r, "enrich"), stage(r, "sink")
	add("ship CPU", fmt.Sprintf("<= %.0f", TargetShipMicros), "µs/line", sh.CPUMicros, sh.CPUMicros <= TargetShipMicros)
	add("enrich CPU", fmt.Sprintf("<= %.0f", TargetEnrichMicros), "µs/line", en.CPUMicros, en.CPUMicros <= TargetEnrichMicros)
	add("sink CPU", fmt.Sprintf("<= %.0f", TargetSinkMicros), "µs/row", si.CPUMicros, si.CPUMicros <= TargetSinkMicros)
	add("sink rows per CPU-second", fmt.Sprintf(">= %d", TargetSinkRowsPerCore), "rows/s", si.UnitsPerCPUSecond, si.UnitsPerCPUSecond >= TargetSinkRowsPerCore)
	add("correctness", "0 lost, 0 extra, 0 dup after dedup", "ok", b2f(r.Correctness.OK), r.Correctness.OK)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// bottleneck names the process that used the most CPU per line during the run: on a machine
// where every stage and both servers share the cores, that is where the time goes. A consumer
// lag that grew to a large share of the input says the same from the other side.
func bottleneck(r *Result) string {
	type use struct {
		name   string
		cpu    float64
		perUse string
	}
	var us []use
	for _, s := range r.Stages {
		us = append(us, use{"mxtrail " + s.Name, s.CPUSeconds, fmt.Sprintf("%.2f µs/%s", s.CPUMicros, s.Per)})
	}
	us = append(us, use{"Kafka broker", r.Kafka.CPUSeconds, fmt.Sprintf("%.2f µs/line", r.Kafka.CPUMicros)},
		use{"ClickHouse server", r.ClickHouse.CPUSeconds, fmt.Sprintf("%.2f µs/line", r.ClickHouse.CPUMicros)})
	var total float64
	for _, u := range us {
		total += u.cpu
	}
	sort.Slice(us, func(i, j int) bool { return us[i].cpu > us[j].cpu })
	if total <= 0 || r.WallSeconds <= 0 {
		return "unknown (no CPU figures)"
	}
	busy := total / (r.WallSeconds * float64(r.Machine.Cores))
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.0f%% of the CPU the pipeline used (%s); the run kept %.0f%% of %d cores busy",
		us[0].name, 100*us[0].cpu/total, us[0].perUse, 100*busy, r.Machine.Cores)
	if len(us) > 1 {
		fmt.Fprintf(&b, "; next %s %.0f%% (%s)", us[1].name, 100*us[1].cpu/total, us[1].perUse)
	}
	if r.Lines > 0 && r.MaxLag.Enrich > r.Lines/10 {
		fmt.Fprintf(&b, "; the enricher fell behind the shipper (max lag %d lines)", r.MaxLag.Enrich)
	}
	if r.Correctness.Rows > 0 && r.MaxLag.Sink > r.Correctness.Rows/10 {
		fmt.Fprintf(&b, "; the sink fell behind the enricher (max lag %d records)", r.MaxLag.Sink)
	}
	switch {
	case busy < 0.8 && r.MachineBusy >= 0.9:
		fmt.Fprintf(&b, "; other processes kept the machine busy (%.0f%% of its cores in use during the run): contention, not the pipeline alone, bounds this run's rate", 100*r.MachineBusy)
	case busy < 0.8:
		b.WriteString("; the cores were not saturated, so waiting (batch age, linger, watermark, polling) bounds the rate more than CPU")
	}
	return b.String()
}

// Markdown is the table the README includes.
func Markdown(r *Result) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Measured %s at commit `%s` on %s (%d cores, %d MiB RAM, Linux %s, %s), Apache Kafka %s and ClickHouse %s on the same machine; %d generated lines (%d hosts, seed %d).\n\n",
		r.Started.Format("2006-01-02"), r.Commit, m.CPU, m.Cores, m.RAMMiB, m.Kernel, m.Go, m.Kafka, m.ClickHouse, r.Lines, r.Run.Hosts, r.Run.Seed)
	b.WriteString("| figure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| end to end (first line ingested → last row visible) | **%.0f lines/s** (%.1f s) | ≥ %d lines/s %s |\n", r.LinesPerSec, r.WallSeconds, TargetLinesPerSec, mark(r.LinesPerSec >= TargetLinesPerSec))
	for _, s := range r.Stages {
		tgt := map[string]string{"ship": fmt.Sprintf("≤ %.0f µs/line", TargetShipMicros), "enrich": fmt.Sprintf("≤ %.0f µs/line", TargetEnrichMicros), "sink": fmt.Sprintf("≤ %.0f µs/row", TargetSinkMicros)}[s.Name]
		lim := map[string]float64{"ship": TargetShipMicros, "enrich": TargetEnrichMicros, "sink": TargetSinkMicros}[s.Name]
		fmt.Fprintf(&b, "| `mxtrail %s` CPU | %.2f µs/%s (%.0f %ss per CPU-s), peak RSS %.0f MiB | %s %s |\n", s.Name, s.CPUMicros, s.Per, s.UnitsPerCPUSecond, s.Per, s.PeakRSSMiB, tgt, mark(s.CPUMicros <= lim))
	}
	fmt.Fprintf(&b, "| Kafka broker CPU | %.2f µs/line%s | |\n", r.Kafka.CPUMicros, background(r.Kafka))
	fmt.Fprintf(&b, "| ClickHouse server CPU | %.2f µs/line%s | |\n", r.ClickHouse.CPUMicros, background(r.ClickHouse))
	fmt.Fprintf(&b, "| latency, ingest → visible in ClickHouse | p50 %.0f ms, p99 %.0f ms (%d sampled sessions, %.0f ms polls) | |\n", r.Latency.P50ms, r.Latency.P99ms, r.Latency.Samples, r.Latency.Pollms)
	c := r.Correctness
	fmt.Fprintf(&b, "| correctness | %d sessions of %d true; %d lost, %d extra, %d duplicated after dedup (%d before); %d agree on outcome/recipients | 0 lost, 0 dup %s |\n",
		c.Unique, c.Truth, c.Lost, c.Extra, c.DupAfter, c.DupBefore, c.Agree, mark(c.OK))
	fmt.Fprintf(&b, "| baseline (a): default-pattern grok in sequence | %.0f lines/s per core; the enricher does %.1f× that (its parser alone %.1f×) | |\n",
		r.Grok.LinesPerCoreSec, r.Ratios.EnricherVsGrok, ratio(r.Grok.RouterLinesPerCoreSec, r.Grok.LinesPerCoreSec))
	fmt.Fprintf(&b, "| baseline (b): `clickhouse-client` Native insert of the same rows | %.0f rows/s; the sink's rows per CPU-s are %.2f× that | |\n", r.Native.RowsPerSec, r.Ratios.SinkVsNative)
	fmt.Fprintf(&b, "| machine busy while the stages ran (every process) | %.0f%% of %d cores (the bench's own polling: %.1f CPU-s) | |\n", 100*r.MachineBusy, r.Machine.Cores, r.BenchCPUSeconds)
	fmt.Fprintf(&b, "\nBottleneck: %s.\n", r.Bottleneck)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s.\n", n)
	}
	return b.String()
}

// background says how much of a shared server's CPU was attributed to others.
func background(s Server) string {
	if s.BackgroundCPUSeconds < 0.05 {
		return ""
	}
	return fmt.Sprintf(" (%.1f of its %.1f CPU-s during the run subtracted as others' load)", s.BackgroundCPUSeconds, s.RawCPUSeconds)
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// Text is the human table printed on stdout.
func Text(w io.Writer, r *Result) {
	fmt.Fprintf(w, "mxtrail bench: %d lines, commit %s, %s, %d cores\n", r.Lines, r.Commit, r.Machine.CPU, r.Machine.Cores)
	fmt.Fprintf(w, "  end to end        %10.0f lines/s  (%.1f s, first line ingested -> last row visible)\n", r.LinesPerSec, r.WallSeconds)
	for _, s := range r.Stages {
		fmt.Fprintf(w, "  %-17s %10.2f µs/%-4s %10.0f %ss/CPU-s  peak RSS %6.0f MiB\n", s.Name, s.CPUMicros, s.Per, s.UnitsPerCPUSecond, s.Per, s.PeakRSSMiB)
	}
	fmt.Fprintf(w, "  kafka broker      %10.2f µs/line  (%.1f CPU-s; %.1f used, %.1f background)\n", r.Kafka.CPUMicros, r.Kafka.CPUSeconds, r.Kafka.RawCPUSeconds, r.Kafka.BackgroundCPUSeconds)
	fmt.Fprintf(w, "  clickhouse server %10.2f µs/line  (%.1f CPU-s; %.1f used, %.1f background)\n", r.ClickHouse.CPUMicros, r.ClickHouse.CPUSeconds, r.ClickHouse.RawCPUSeconds, r.ClickHouse.BackgroundCPUSeconds)
	fmt.Fprintf(w, "  latency           p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d sessions\n", r.Latency.P50ms, r.Latency.P99ms, r.Latency.Maxms, r.Latency.Samples)
	c := r.Correctness
	fmt.Fprintf(w, "  correctness       %d/%d sessions, %d lost, %d extra, %d dup after dedup (%d before), %d disagree; ok=%v\n",
		c.Unique, c.Truth, c.Lost, c.Extra, c.DupAfter, c.DupBefore, c.Mismatched, c.OK)
	for _, e := range c.Examples {
		fmt.Fprintf(w, "    %s\n", e)
	}
	fmt.Fprintf(w, "  baseline grok     %10.0f lines/s/core (enricher %.1fx, its parser %.1fx)\n", r.Grok.LinesPerCoreSec, r.Ratios.EnricherVsGrok, ratio(r.Grok.RouterLinesPerCoreSec, r.Grok.LinesPerCoreSec))
	fmt.Fprintf(w, "  baseline native   %10.0f rows/s (sink rows/CPU-s %.2fx)\n", r.Native.RowsPerSec, r.Ratios.SinkVsNative)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "  target %-26s %-36s got %.2f %s %s\n", t.Name, t.Want, t.Got, t.Unit, map[bool]string{true: "met", false: "MISSED"}[t.Met])
	}
	fmt.Fprintf(w, "  machine busy      %.0f%% of %d cores during the run (every process; the bench's own polling %.1f CPU-s)\n", 100*r.MachineBusy, r.Machine.Cores, r.BenchCPUSeconds)
	fmt.Fprintf(w, "  bottleneck        %s\n", r.Bottleneck)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// Write stores <dir>/<date>-<commit>.json and <dir>/latest.md and returns their paths.
func Write(dir string, r *Result) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("results directory: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("encode results: %w", err)
	}
	jsonPath = filepath.Join(dir, r.Started.Format("2006-01-02")+"-"+r.Commit+".json")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("write results: %w", err)
	}
	mdPath = filepath.Join(dir, "latest.md")
	if err := os.WriteFile(mdPath, []byte(Markdown(r)), 0o644); err != nil {
		return "", "", fmt.Errorf("write results table: %w", err)
	}
	return jsonPath, mdPath, nil
}

// Marker lines of the README block `mxtrail bench --update-readme` rewrites.
const (
	ReadmeBegin = "<!-- bench:begin -->"
	ReadmeEnd   = "<!-- bench:end -->"
)

// UpdateReadme replaces what lies between the markers in path with md.
func UpdateReadme(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("update readme: %w", err)
	}
	out, err := replaceBlock(b, md)
	if err != nil {
		return fmt.Errorf("update readme %s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

func replaceBlock(doc []byte, md string) ([]byte, error) {
	i := bytes.Index(doc, []byte(ReadmeBegin))
	j := bytes.Index(doc, []byte(ReadmeEnd))
	if i < 0 || j < 0 || j < i {
		return nil, fmt.Errorf("markers %q ... %q not found in order", ReadmeBegin, ReadmeEnd)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(ReadmeBegin)])
	out.WriteString("\n")
	out.WriteString(strings.TrimRight(md, "\n"))
	out.WriteString("\n")
	out.Write(doc[j:])
	return out.Bytes(), nil
}
