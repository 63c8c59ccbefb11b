package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	long := "Mar  9 11:10:37 mx1 spamdyke[7]: ALLOWED " + strings.Repeat("x", maxLine+10)
	in := strings.Join([]string{
		"Mar  9 11:10:37 mx1 spamdyke[29207]: DENIED_RDNS_MISSING from: a@b.example to: c@d.example origin_ip: 203.0.113.66 origin_rdns: (unknown) auth: (unknown) encryption: (none) reason: (empty)\r",
		"not a mail log line \xff",
		long,
		"",
		"2021-03-09 12:43:51, size, 23533", // last line without a newline
	}, "\n")
	var out, errb bytes.Buffer
	code := runParse(context.Background(), []string{"--host", "fallback", "--year", "2021", "--tz", "Europe/Sofia"}, strings.NewReader(in), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d output lines, want 5 (one per input line)", len(lines))
	}
	var evs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("invalid JSON %.200q: %v", l, err)
		}
		for _, k := range []string{"time", "host", "product", "dialect", "session_key", "code", "name", "severity", "fields", "parsed", "raw"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("key %q missing in %.200s", k, l)
			}
		}
		evs = append(evs, m)
	}
	if evs[0]["product"] != "spamdyke" || evs[0]["code"] != "DENIED_RDNS_MISSING" || evs[0]["parsed"] != true {
		t.Errorf("line 1: %v", evs[0])
	}
	if ts, _ := time.Parse(time.RFC3339Nano, evs[0]["time"].(string)); !ts.Equal(time.Date(2021, 3, 9, 9, 10, 37, 0, time.UTC)) {
		t.Errorf("line 1 time %v", evs[0]["time"])
	}
	if strings.HasSuffix(evs[0]["raw"].(string), "\r") {
		t.Error("CR kept in raw")
	}
	if evs[1]["parsed"] != false || evs[1]["product"] != "unknown" || evs[1]["error"] == "" || evs[1]["host"] != "fallback" {
		t.Errorf("line 2: %v", evs[1])
	}
	if evs[2]["parsed"] != false || evs[2]["error"] != reasonTooLong || len(evs[2]["raw"].(string)) != maxLine {
		t.Errorf("long line: parsed=%v error=%v raw len=%d", evs[2]["parsed"], evs[2]["error"], len(evs[2]["raw"].(string)))
	}
	if src, _ := evs[4]["source"].(map[string]any); src["line"] != 5.0 || src["offset"] != float64(len(in)-len("2021-03-09 12:43:51, size, 23533")) {
		t.Errorf("source position of the last line: %v", evs[4]["source"])
	}
	if evs[3]["parsed"] != false {
		t.Errorf("empty line: %v", evs[3])
	}
	if evs[4]["dialect"] != "icdsoft-smtp" || evs[4]["fields"].(map[string]any)["size"] != "23533" {
		t.Errorf("last line: %v", evs[4])
	}
	if !strings.Contains(errb.String(), "lines 5, parsed 2 (40.0%)") || !strings.Contains(errb.String(), "dialect spamdyke") {
		t.Errorf("summary: %s", errb.String())
	}
}

func TestParseCommandFilesAndPin(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "spamdyke.log")
	// a bare message (header stripped upstream) parses only when pinned
	if err := os.WriteFile(f, []byte("ALLOWED from: a@b to: c@d origin_ip: 192.0.2.1 origin_rdns: x auth: (unknown) encryption: TLS reason: 250_ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runParse(context.Background(), []string{"--format", "spamdyke", f}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"code":"ALLOWED"`) || !strings.Contains(out.String(), `"file":"`+f+`"`) {
		t.Errorf("output: %s", out.String())
	}
	for _, bad := range [][]string{{"--format", "postfix"}, {"--tz", "Mars/Base"}, {"--year", "-3"}} {
		if code := runParse(context.Background(), bad, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code := runParse(context.Background(), []string{filepath.Join(dir, "missing.log")}, nil, &out, &errb); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

func TestParseCommandConfigPins(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "bare-spamdyke.log")
	if err := os.WriteFile(logf, []byte("Mar  9 11:10:37 mx1 spamdyke[7]: ALLOWED from: a@b to: c@d origin_ip: 192.0.2.1 origin_rdns: x auth: (unknown) encryption: TLS reason: 250_ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mxtrail.yaml")
	yaml := "enrich:\n  parser:\n    time_zone: UTC\n    sources:\n      - {path: \"" + filepath.Join(dir, "bare-*.log") + "\", format: spamdyke, time_zone: Europe/Sofia, year: 2019}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runParse(context.Background(), []string{"--config", cfg, logf}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"time":"2019-03-09T11:10:37+02:00"`) {
		t.Errorf("config rule (zone, year) not applied: %s", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("enrich:\n  parser:\n    time_zone: Mars/Base\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := runParse(context.Background(), []string{"--config", bad, logf}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "enrich.parser.time_zone") {
		t.Errorf("bad config: exit %d, stderr %s", code, errb.String())
	}
}
