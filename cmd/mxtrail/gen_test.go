package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/gen"
)

func TestGenCommand(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := run(t, "gen", "-out", dir, "-sessions", "400", "-seed", "7", "-start", "2021-12-31T23:50:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "10 hosts, 16 files, 400 sessions") {
		t.Errorf("stderr summary: %q", stderr)
	}
	var sum gen.Summary
	b, err := os.ReadFile(filepath.Join(dir, gen.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Total.Sessions != 400 || len(sum.Files) != 16 || sum.Seed != 7 {
		t.Errorf("summary: %d sessions, %d files, seed %d", sum.Total.Sessions, len(sum.Files), sum.Seed)
	}
	// Same flags, same bytes.
	dir2 := t.TempDir()
	if code, _, stderr := run(t, "gen", "-out", dir2, "-sessions", "400", "-seed", "7", "-start", "2021-12-31T23:50:00Z"); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	for _, f := range append([]gen.FileSummary{{Name: gen.TruthFile}}, sum.Files...) {
		a, _ := os.ReadFile(filepath.Join(dir, f.Name))
		b, _ := os.ReadFile(filepath.Join(dir2, f.Name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: %d and %d bytes, equal=%v", f.Name, len(a), len(b), bytes.Equal(a, b))
		}
	}
}

func TestGenCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"gen", "-out", t.TempDir(), "-hosts", "0"},
		{"gen", "-out", t.TempDir(), "-products", "smtpf,postfix"},
		{"gen", "-start", "yesterday"},
		{"gen", "-out", t.TempDir(), "extra"},
		{"gen"}, // no -out: refuse rather than write ~150 MB into the working directory
	} {
		code, _, stderr := run(t, args...)
		if code == 0 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, _, stderr := run(t, "gen", "-out", t.TempDir(), "-hosts", "0", "-garbage", "0.9")
	if code != 1 || !strings.Contains(stderr, "hosts 0") || !strings.Contains(stderr, "garbage rate 0.9") {
		t.Errorf("every problem should be reported: exit %d, %q", code, stderr)
	}
}
