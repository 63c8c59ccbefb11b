package gen

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// memFS keeps generated files in memory.
type memFS struct {
	mu    sync.Mutex
	files map[string]*bytes.Buffer
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

func (m *memFS) create(name string) (io.WriteCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string]*bytes.Buffer{}
	}
	b := &bytes.Buffer{}
	m.files[name] = b
	return nopCloser{b}, nil
}

func generate(t testing.TB, o Options) (*memFS, *Summary) {
	t.Helper()
	fs := &memFS{}
	o.Create = fs.create
	sum, err := Generate(context.Background(), o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return fs, sum
}

func small(seed uint64, sessions int) Options {
	o := Defaults()
	o.Seed = seed
	o.Sessions = sessions
	o.Lines = 0
	o.GarbageRate = 0.01
	return o
}

func readTruth(t testing.TB, fs *memFS) []Truth {
	t.Helper()
	var ts []Truth
	if err := ReadTruth(bytes.NewReader(fs.files[TruthFile].Bytes()), func(x *Truth) error {
		ts = append(ts, *x)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestDeterministic(t *testing.T) {
	a, _ := generate(t, small(42, 3000))
	b, _ := generate(t, small(42, 3000))
	c, _ := generate(t, small(43, 3000))
	if len(a.files) != len(b.files) {
		t.Fatalf("file sets differ: %d vs %d", len(a.files), len(b.files))
	}
	differs := false
	for name, fa := range a.files {
		fb, ok := b.files[name]
		if !ok {
			t.Fatalf("second run lacks %s", name)
		}
		if !bytes.Equal(fa.Bytes(), fb.Bytes()) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if fc, ok := c.files[name]; !ok || !bytes.Equal(fa.Bytes(), fc.Bytes()) {
			differs = true
		}
	}
	if !differs {
		t.Error("seed 43 produced the same bytes as seed 42")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	o := Options{Hosts: 0, Sessions: -1, Lines: -1, Concurrency: 0, GarbageRate: 2, MaxSkew: -time.Second, ProductList: []string{"postfix"}}
	err := o.Validate()
	if err == nil {
		t.Fatal("invalid options accepted")
	}
	for _, want := range []string{"hosts 0", "sessions -1", "lines -1", "start time", "concurrency 0", "garbage rate 2", "max skew -1s", `product "postfix"`, "output directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	d := Defaults()
	d.OutDir = t.TempDir()
	if err := d.Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

// Line shapes per dialect. The loose expressions are derived from the real lines in
// /work/shared/corpus/real (and must match them, see TestShapesMatchRealCorpus); the strict
// ones pin the generator's own variants and must match every generated line.
var (
	syslogHdr = `^[A-Z][a-z]{2} [ 1-3]?\d \d\d:\d\d:\d\d \S+ `
	shapes    = map[string]*regexp.Regexp{
		"spamdyke":            regexp.MustCompile(syslogHdr + `spamdyke\[\d+\]: (?:[A-Z_]+ from: \S+ to: \S+ origin_ip: [\d.]+ origin_rdns: \S+ auth: \S+ encryption: \S+ reason: \S+|FILTER_[A-Z_]+ .+)$`),
		"icdsoft-smtp":        regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, (?:from, [^\s<>]+|to, <\S+>|resp, \d{3} .+|check, (?:accepted|rejected) rcpt, (?:h|unknown):[\d.]+, \S+, .+|size, \d+)$`),
		"icdsoft-delivery":    regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, (?:init, <\S*>|try, \d+, (?:local|remote), \S+|result, \d+, (?:success|deferral|failure), \S+)$`),
		"smtpf":               regexp.MustCompile(syslogHdr + `smtpf\[\d+\]: [0-9A-Za-z]{6}\d{10}[0-9A-Za-z]{2} (?:#\d{3} )?\S.*$`),
		"qmail":               regexp.MustCompile(syslogHdr + `(?:qmail-smtpd\[\d+\]: CHKUSER (?:accepted sender|rejected sender|accepted rcpt|rejected rcpt|rejected relaying|must auth): from <[^:>]*:[^:>]*:[^>]*> remote <[^:>]*:[^:>]*:[\d.]+> rcpt <[^>]*> : .+|qmail: \d{10}\.\d{6} (?:new msg \d+|info msg \d+: bytes \d+ from <\S*> qp \d+ uid \d+|starting delivery \d+: msg \d+ to (?:local|remote) \S+|delivery \d+: (?:success|deferral|failure): \S+|end msg \d+|rblsmtpd: [\d.]+ pid \d+ \S+: \d{3} .+))$`),
		"isode":               regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (critical|fatal|error|warning|authfail|authok|notice|info|detail|debug|pdu) MTA_SMTP (\w+) (\d+) smtpserver\[\d+\]: conn=\d+ .+$`),
		"mailenable-activity": regexp.MustCompile(`^\d\d/\d\d/\d\d \d\d:\d\d:\d\d\tSMTP-(?:IN|OU)\t(?:[0-9A-F]{32}\.MAI)?\t\d+\t[\d.]+\t[A-Z]*\t[^\t]*\t\d{3}[ -][^\t]*\t\d+\t\d+(?:\t[^\t]*\t)?$`),
		"mailenable-debug":    regexp.MustCompile(`^\d\d/\d\d/\d\d \d\d:\d\d:\d\d SMTP-IN [0-9A-F]{32}\.MAI \d+ [\d.]+ ME-(I0073|I0101|I0102|I0106|I0107|I0108|I0110|I0111|I0112|E0109): .+$`),
		"imail":               regexp.MustCompile(`^\d\d:\d\d \d\d:\d\d (?:SMTPD|SMTP-|SMTP)\((?:[0-9a-f]{8}|[0-9a-f]{16})\) (?:\[[\d.]+\] )?\S.*$`),
		"imail-antispam":      regexp.MustCompile(`^\d\d:\d\d \d\d:\d\d SMTPD?\([0-9a-f]+\) (?:BLACKLIST:|VALIDATION: |validation: |message failed |email determined to be spam by Premium filter, Tag = ).+$`),
	}
	// The generator's own, stricter forms.
	strict = map[string]*regexp.Regexp{
		"smtpf":    regexp.MustCompile(syslogHdr + `smtpf\[\d+\]: [0-9A-Za-z]{6}\d{10}00 #(?:637 start \S* \[[\d.]+\] f="[^"]*" th=\d+ cn=\d+ cs=\d+|717 sender <\S+> f="[^"]*" spf-mail=\w+ spf-helo=\w+ x="\d{3} .*"|718 recipient <\S+> f="[^"]*" x="\d{3} .* #\d{3} \([0-9A-Za-z]{18}\)"|719 data x="354 .*"|720 message <[0-9A-Za-z]{18}> f="[^"]*" b=\d+ m=<\S+> x="\d{3} .* #\d{3} \([0-9A-Za-z]{18}\)"|721 end i=[\d.]+ p="[^"]*" f="[^"]*" h="[^"]*" b=\d+ t=\d+|523 dns-bl found [\d.]+ \S+|387 grey listed \{.+\} for \d+ seconds|207 message \S+ is INFECTED with \S+|692 spamd .+|639 client .* I/O error: .+)$`),
		"imail":    regexp.MustCompile(`^\d\d:\d\d \d\d:\d\d (?:SMTPD\([0-9a-f]{8}\) \[[\d.]+\] (?:connect [\d.]+ port \d+|EHLO \S+|MAIL FROM:<\S+>|RCPT To:<\S+>|C:\\IMail\\spool\\D[0-9a-f]{16}\.SMD \d+)|SMTP-\([0-9a-f]{8}\) (?:processing C:\\IMail\\spool\\Q[0-9a-f]{16}\.SMD|ldeliver \S+ \S+ \(1\) <\S+> \d+|finished C:\\IMail\\spool\\Q[0-9a-f]{16}\.SMD status=1))$`),
		"spamdyke": regexp.MustCompile(syslogHdr + `spamdyke\[\d+\]: (?:(?:ALLOWED|TIMEOUT|TLS_ENCRYPTED|FAILED_AUTH|DENIED_[A-Z_]+) from: \S+ to: \S+ origin_ip: [\d.]+ origin_rdns: \S+ auth: \S+ encryption: (?:\(none\)|TLS|TLS_PASSTHROUGH) reason: \S+|FILTER_(?:RBL_MATCH ip: [\d.]+ rbl: \S+|RDNS_MISSING ip: [\d.]+|OTHER response: ".+"))$`),
	}
)

// isodeEvents is seed 000 (name -> id, severity) plus Close 212 (R19 table).
var isodeEvents = map[string]struct {
	id  string
	sev string
}{
	"BufferTooBig": {"103", "error"}, "Connection": {"102", "info"}, "Critical": {"14", "critical"},
	"DNSBLfailed": {"106", "warning"}, "Error": {"12", "error"}, "ErrorS": {"28", "error"},
	"Fatal": {"13", "fatal"}, "FatalS": {"29", "fatal"}, "Listen": {"100", "notice"},
	"ListenError": {"101", "fatal"}, "Notice": {"6", "notice"}, "NoticeS": {"22", "notice"},
	"rDNSfailed": {"107", "warning"}, "ReadPDU": {"31", "pdu"}, "SASLinit": {"104", "error"},
	"SPFfail": {"108", "error"}, "SPFneutral": {"110", "info"}, "SPFnone": {"112", "warning"},
	"SPFpass": {"111", "info"}, "SPFpermerror": {"114", "error"}, "SPFsoftfail": {"109", "warning"},
	"SPFtemperror": {"113", "error"}, "Timeout": {"105", "info"}, "WritePDU": {"30", "pdu"},
	"Close": {"212", "notice"},
}

func dialectOf(file string) string {
	parts := strings.Split(file, ".")
	return parts[1]
}

func TestShapesMatchRealCorpus(t *testing.T) {
	real := map[string]string{
		"spamdyke.log":         "spamdyke",
		"icdsoft_smtp.log":     "icdsoft-smtp",
		"icdsoft_delivery.log": "icdsoft-delivery",
		"smtpf.log":            "smtpf",
		"mailenable.log":       "mailenable-activity",
		"imail.log":            "imail",
	}
	dir := filepath.Join("testdata", "real")
	for file, dialect := range real {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			if !shapes[dialect].MatchString(line) {
				t.Errorf("%s:%d does not match the %s shape: %q", file, i+1, dialect, line)
			}
		}
	}
	// rblsmtpd through splogger, as in fail2ban's qmail filter test (public sample).
	rbl := "Sep  6 07:33:33 sd6 qmail: 1157520813.485077 rblsmtpd: 198.51.100.77 pid 19597 sbl-xbl.spamhaus.org: 451 http://www.spamhaus.org/query/bl?ip=198.51.100.77"
	if !shapes["qmail"].MatchString(rbl) {
		t.Errorf("qmail shape misses the public rblsmtpd sample %q", rbl)
	}
	// The last real IMail line is an antispam message.
	if !shapes["imail-antispam"].MatchString("10:17 11:24 SMTP(f593012a00000001) email determined to be spam by Premium filter, Tag = 5AE906968DC04881B0626ADBF612D86F") {
		t.Error("imail-antispam shape misses the real Premium filter line")
	}
}

// eachLine calls fn for every line of a generated file with its byte offset and number.
func eachLine(data []byte, fn func(line []byte, off int64, n int)) {
	off := int64(0)
	n := 0
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data)
		}
		n++
		fn(data[:i], off, n)
		off += int64(i + 1)
		if i == len(data) {
			break
		}
		data = data[i+1:]
	}
}

func TestEveryLineHasItsDialectShape(t *testing.T) {
	fs, sum := generate(t, small(7, 6000))
	garbage := 0
	for _, f := range sum.Files {
		d := dialectOf(f.Name)
		re, st := shapes[d], strict[d]
		if re == nil {
			t.Fatalf("no shape for dialect %q", d)
		}
		data := fs.files[f.Name].Bytes()
		bad, lines, g := 0, 0, 0
		eachLine(data, func(line []byte, _ int64, n int) {
			lines++
			if !re.Match(line) {
				// Garbage must not look like any dialect at all.
				for name, other := range shapes {
					if other.Match(line) {
						t.Errorf("%s:%d matches neither its own shape nor is it garbage (matches %s): %q", f.Name, n, name, line)
					}
				}
				g++
				return
			}
			if st != nil && !st.Match(line) {
				bad++
				if bad <= 3 {
					t.Errorf("%s:%d fails the strict %s shape: %q", f.Name, n, d, line)
				}
			}
			if d == "isode" {
				m := re.FindSubmatch(line)
				ev, ok := isodeEvents[string(m[2])]
				if !ok || ev.id != string(m[3]) || ev.sev != string(m[1]) {
					t.Errorf("%s:%d: event %s(%s) severity %s is not in the seed catalogue", f.Name, n, m[2], m[3], m[1])
				}
			}
		})
		if lines != f.Lines {
			t.Errorf("%s: summary says %d lines, file has %d", f.Name, f.Lines, lines)
		}
		if g != f.Garbage {
			t.Errorf("%s: summary says %d garbage lines, %d lines match no shape", f.Name, f.Garbage, g)
		}
		if int64(len(data)) != f.Bytes {
			t.Errorf("%s: summary says %d bytes, file has %d", f.Name, f.Bytes, len(data))
		}
		garbage += g
	}
	if garbage == 0 {
		t.Error("a 1% garbage rate produced no garbage")
	}
	if garbage != sum.Total.Garbage {
		t.Errorf("total garbage %d, summary %d", garbage, sum.Total.Garbage)
	}
}

var icdsoftLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, `)

// keyInLine says whether a session's key appears in one of its lines, per product.
func keyInLine(tr *Truth, line string) bool {
	switch tr.Product {
	case ProductSpamdyke:
		return strings.Contains(line, "spamdyke["+tr.SessionKey+"]")
	case ProductICDSoft:
		// The ICDSoft SMTP and delivery logs carry no key at all.
		return strings.Contains(line, "spamdyke["+tr.SessionKey+"]") || icdsoftLine.MatchString(line)
	case ProductQmail:
		return strings.Contains(line, "["+tr.SessionKey+"]") || strings.Contains(line, " pid "+tr.SessionKey+" ")
	case ProductMailEnable:
		sock, ip, _ := strings.Cut(tr.SessionKey, "/")
		return strings.Contains(line, "\t"+sock+"\t"+ip+"\t") || strings.Contains(line, " "+sock+" "+ip+" ME-")
	case ProductIMail:
		return strings.Contains(line, "("+tr.SessionKey+")")
	default: // smtpf SID, isode conn=N
		return strings.Contains(line, tr.SessionKey+" ")
	}
}

func TestTruthAgreesWithFiles(t *testing.T) {
	t.Run("in-order", func(t *testing.T) { testTruthAgrees(t, 0) })
	t.Run("reordered", func(t *testing.T) { testTruthAgrees(t, 0.05) })
}

func testTruthAgrees(t *testing.T, reorder float64) {
	o := small(11, 8000)
	o.Reorder = reorder
	fs, sum := generate(t, o)
	truth := readTruth(t, fs)
	if len(truth) != 8000 || sum.Total.Sessions != 8000 {
		t.Fatalf("asked for 8000 sessions, truth has %d, summary %d", len(truth), sum.Total.Sessions)
	}
	// Index every line by file and offset.
	type loc struct {
		file string
		off  int64
	}
	lineAt := map[loc]string{}
	lineNo := map[loc]int{}
	for name, b := range fs.files {
		if name == TruthFile || name == SummaryFile {
			continue
		}
		eachLine(b.Bytes(), func(line []byte, off int64, n int) {
			lineAt[loc{name, off}] = string(line)
			lineNo[loc{name, off}] = n
		})
	}
	perFile := map[string]int{}
	perProduct := map[string]map[string]int{}
	total := 0
	for i := range truth {
		tr := &truth[i]
		total += tr.Lines
		for j, p := range []TruthPos{tr.First, tr.Last} {
			l, ok := lineAt[loc{p.File, p.Offset}]
			if !ok {
				t.Fatalf("session %d (%s %s): no line starts at %s:%d", i, tr.Host, tr.SessionKey, p.File, p.Offset)
			}
			if lineNo[loc{p.File, p.Offset}] != p.Line {
				t.Errorf("session %d: %s offset %d is line %d, truth says %d", i, p.File, p.Offset, lineNo[loc{p.File, p.Offset}], p.Line)
			}
			if !strings.HasPrefix(p.File, tr.Host+".") {
				t.Errorf("session %d of host %s points into %s", i, tr.Host, p.File)
			}
			// A joined delivery (ICDSoft, qmail-send, IMail SMTP- worker) may end a session
			// without its key; the first line always carries it.
			joined := tr.Delivery != "" && (tr.Product == ProductICDSoft || tr.Product == ProductQmail || tr.Product == ProductIMail)
			if (j == 0 || !joined) && !keyInLine(tr, l) {
				t.Errorf("session %d (%s key %q): line %s:%d does not carry the key: %q", i, tr.Product, tr.SessionKey, p.File, p.Line, l)
			}
		}
		if tr.StartTime.After(tr.EndTime) {
			t.Errorf("session %d ends before it starts: %v > %v", i, tr.StartTime, tr.EndTime)
		}
		if !tr.Outcome.Valid() {
			t.Errorf("session %d has label %q outside the vocabulary", i, tr.Outcome)
		}
		m := perProduct[tr.Product]
		if m == nil {
			m = map[string]int{}
			perProduct[tr.Product] = m
		}
		m[string(tr.Outcome)]++
		checkRollUp(t, i, tr)
		perFile[tr.First.File]++
	}
	fileLines, late := 0, 0
	for _, f := range sum.Files {
		fileLines += f.Lines - f.Garbage
		late += f.Late
		if !strings.HasPrefix(dialectOf(f.Name), "isode") {
			continue
		}
		// Isode stamps are fixed-width: a late line is one that sorts before its predecessor.
		prev, back := "", 0
		eachLine(fs.files[f.Name].Bytes(), func(line []byte, _ int64, _ int) {
			if len(line) >= 23 && shapes["isode"].Match(line) {
				if ts := string(line[:23]); ts < prev {
					back++
				} else {
					prev = ts
				}
			}
		})
		if reorder == 0 && back != 0 {
			t.Errorf("%s: %d lines go back in time without reordering", f.Name, back)
		}
		if reorder > 0 && back == 0 {
			t.Errorf("%s: reorder %v left every line in time order", f.Name, reorder)
		}
	}
	if (late > 0) != (reorder > 0) {
		t.Errorf("reorder %v: %d late lines counted", reorder, late)
	}
	if total != fileLines {
		t.Errorf("truth accounts for %d lines, files hold %d non-garbage lines", total, fileLines)
	}
	for p, m := range perProduct {
		for o, n := range m {
			if sum.Sessions[p][o] != n {
				t.Errorf("summary has %d %s/%s sessions, truth %d", sum.Sessions[p][o], p, o, n)
			}
		}
	}
}

// checkRollUp re-derives the session label from the recipients with the rule.
func checkRollUp(t *testing.T, i int, tr *Truth) {
	t.Helper()
	partial := false
	for _, f := range tr.Flags {
		partial = partial || f == FlagPartial
	}
	if len(tr.Recipients) == 0 {
		if partial || tr.Outcome == record.Allowed {
			t.Errorf("session %d: no recipients but outcome %s partial=%v", i, tr.Outcome, partial)
		}
		return
	}
	anyAllowed, anyRefused := false, false
	var best record.Outcome
	for _, r := range tr.Recipients {
		if !r.Outcome.Valid() || r.Outcome == record.OutcomeNone {
			t.Errorf("session %d: recipient label %q", i, r.Outcome)
		}
		if r.Permanent != (r.SMTPCode >= 500) {
			t.Errorf("session %d: recipient %s permanent=%v with code %d", i, r.Address, r.Permanent, r.SMTPCode)
		}
		if r.Outcome == record.Allowed {
			anyAllowed = true
			continue
		}
		anyRefused = true
		if best == "" || r.Outcome.Stage() < best.Stage() {
			best = r.Outcome
		}
	}
	switch {
	case anyAllowed:
		if tr.Outcome != record.Allowed || partial != anyRefused || tr.Permanent {
			t.Errorf("session %d: allowed recipients but outcome %s partial=%v permanent=%v", i, tr.Outcome, partial, tr.Permanent)
		}
	case tr.Outcome != best:
		t.Errorf("session %d: outcome %s, earliest-stage refusal is %s", i, tr.Outcome, best)
	}
}

// Every label a product's model can produce must show up in a modest run.
func TestOutcomeMixCoversEveryLabel(t *testing.T) {
	want := map[string][]record.Outcome{
		ProductSpamdyke: {record.Allowed, record.DeniedRBL, record.DeniedRHSBL, record.DeniedRDNS, record.DeniedBlacklist,
			record.DeniedProtocol, record.DeniedPolicy, record.DeniedSender, record.DeniedAuthRequired, record.AuthFailed,
			record.DeniedGreylist, record.DeniedRelay, record.DeniedUnknownRecipient, record.DeniedRecipient,
			record.DeniedVirus, record.DeniedSpamScore, record.DeniedContent, record.DeniedOther, record.TempFail,
			record.Timeout, record.Encrypted},
		ProductICDSoft: {record.Allowed, record.DeniedRBL, record.DeniedRHSBL, record.DeniedRDNS, record.DeniedBlacklist,
			record.DeniedProtocol, record.DeniedSender, record.DeniedGreylist, record.DeniedRelay,
			record.DeniedUnknownRecipient, record.DeniedRecipient, record.DeniedVirus, record.DeniedSpamScore,
			record.DeniedOther, record.TempFail},
		ProductQmail: {record.Allowed, record.DeniedRBL, record.DeniedSender, record.DeniedAuthRequired, record.DeniedRelay,
			record.DeniedUnknownRecipient, record.TempFail},
		ProductSmtpf: {record.Allowed, record.DeniedRBL, record.DeniedRDNS, record.DeniedGreylist, record.DeniedUnknownRecipient,
			record.DeniedRelay, record.DeniedSender, record.TempFail, record.DeniedVirus, record.DeniedSpamScore,
			record.DeniedBlacklist, record.Disconnected},
		ProductIsode: {record.Allowed, record.DeniedRBL, record.DeniedRDNS, record.DeniedSPF, record.DeniedProtocol,
			record.Timeout, record.TempFail, record.DeniedUnknownRecipient},
		ProductMailEnable: {record.Allowed, record.DeniedRelay, record.AuthFailed, record.DeniedBlacklist,
			record.DeniedUnknownRecipient, record.TempFail, record.DeniedOther},
		ProductIMail: {record.Allowed, record.DeniedRBL, record.DeniedHELO, record.DeniedSender, record.DeniedRDNS,
			record.DeniedSpamScore},
	}
	_, sum := generate(t, small(5, 20000))
	denied, all := 0, 0
	for p, labels := range want {
		for _, l := range labels {
			if sum.Sessions[p][string(l)] == 0 {
				t.Errorf("%s: no %s session in 20000", p, l)
			}
		}
		for o, n := range sum.Sessions[p] {
			all += n
			if record.Outcome(o).Denied() {
				denied += n
			}
			found := false
			for _, l := range labels {
				found = found || string(l) == o
			}
			if !found {
				t.Errorf("%s produced %s, which this test does not expect", p, o)
			}
		}
	}
	// Most inbound mail is spam, and most of it is refused.
	if share := float64(denied) / float64(all); share < 0.5 || share > 0.8 {
		t.Errorf("denied share %.2f, want a spam-heavy 0.5..0.8", share)
	}
	if sum.Partial == 0 {
		t.Error("no partially accepted multi-recipient session")
	}
}

// Sessions overlap within a file, and pids, sockets and SIDs behave like the real ones.
func TestInterleavingAndReuse(t *testing.T) {
	o := small(3, 0)
	o.Sessions = 0
	o.Lines = 150000
	o.Hosts = 7
	o.GarbageRate = 0
	fs, _ := generate(t, o)
	truth := readTruth(t, fs)
	type span struct{ first, last int }
	spans := map[string][]span{}
	keys := map[string]map[string]int{}
	for i := range truth {
		tr := &truth[i]
		if tr.First.File == tr.Last.File {
			spans[tr.First.File] = append(spans[tr.First.File], span{tr.First.Line, tr.Last.Line})
		}
		k := tr.Host
		if keys[k] == nil {
			keys[k] = map[string]int{}
		}
		key := tr.SessionKey
		if tr.Product == ProductMailEnable {
			key, _, _ = strings.Cut(key, "/") // the socket alone is what gets reused
		}
		keys[k][key]++
	}
	for file, ss := range spans {
		if strings.Contains(file, "icdsoft") {
			continue // ICDSoft writes each group contiguously (seed 004)
		}
		sort.Slice(ss, func(i, j int) bool { return ss[i].first < ss[j].first })
		overlapping := 0
		maxLast := 0
		for _, s := range ss {
			if s.first < maxLast {
				overlapping++
			}
			if s.last > maxLast {
				maxLast = s.last
			}
		}
		if overlapping < len(ss)/10 {
			t.Errorf("%s: only %d of %d sessions interleave with an earlier one", file, overlapping, len(ss))
		}
	}
	reused := map[string]int{}
	for host, m := range keys {
		for _, n := range m {
			if n > 1 {
				reused[host]++
			}
		}
	}
	for _, h := range []string{"mx03", "qm04", "me06", "srv02"} {
		if reused[h] == 0 {
			t.Errorf("%s: no session key (pid or socket) was reused", h)
		}
	}
	for _, h := range []string{"gw01", "mswitch05", "imail07"} {
		if reused[h] != 0 {
			t.Errorf("%s: %d session keys repeat, but SIDs, conn ids and connection ids are unique", h, reused[h])
		}
	}
	// A reused pid never belongs to two sessions open at once (the kernel does not allow it).
	open := map[string]Truth{}
	for _, tr := range truth {
		if tr.Product != ProductSpamdyke && tr.Product != ProductQmail {
			continue
		}
		k := tr.Host + "/" + tr.SessionKey
		if prev, ok := open[k]; ok && prev.First.File == tr.First.File && prev.Last.Line > tr.First.Line && prev.First.Line < tr.First.Line {
			t.Errorf("pid %s on %s used by two overlapping sessions (lines %d-%d and %d-)", tr.SessionKey, tr.Host, prev.First.Line, prev.Last.Line, tr.First.Line)
		}
		open[k] = tr
	}
}

func TestClockSkewBetweenHosts(t *testing.T) {
	o := small(9, 700)
	o.MaxSkew = 2 * time.Minute
	_, sum := generate(t, o)
	seen := map[float64]bool{}
	for _, h := range sum.Hosts {
		if h.SkewSeconds < -120 || h.SkewSeconds > 120 {
			t.Errorf("%s skew %v outside ±120 s", h.Host, h.SkewSeconds)
		}
		seen[h.SkewSeconds] = true
	}
	if len(seen) < len(sum.Hosts)-1 {
		t.Errorf("hosts share clock skews: %v", sum.Hosts)
	}
	o.MaxSkew = 0
	fs, _ := generate(t, o)
	for _, tr := range readTruth(t, fs)[:50] {
		if tr.StartTime.Before(o.Start.Add(-time.Second)) {
			t.Errorf("without skew a session starts at %v, before the start %v", tr.StartTime, o.Start)
		}
	}
}

// The ICDSoft join keys of FORMATS.md §2.3 hold in generated data: the spamdyke reason of an
// accepted message equals the final SMTP resp with spaces turned into '_', in the same second.
func TestICDSoftJoinKeys(t *testing.T) {
	o := small(13, 600)
	o.ProductList = []string{ProductICDSoft}
	o.Hosts = 1
	o.GarbageRate = 0
	fs, _ := generate(t, o)
	finals := map[string]string{} // "ts|resp" from the SMTP log
	sc := bufio.NewScanner(bytes.NewReader(fs.files["srv01.icdsoft-smtp.log"].Bytes()))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, ", resp, 250 ok ") {
			ts, resp, _ := strings.Cut(l, ", resp, ")
			finals[strings.ReplaceAll(resp, " ", "_")] = ts
		}
	}
	if len(finals) == 0 {
		t.Fatal("no accepted message in the ICDSoft SMTP log")
	}
	matched := 0
	sc = bufio.NewScanner(bytes.NewReader(fs.files["srv01.spamdyke.log"].Bytes()))
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, ": ALLOWED from: ") {
			continue
		}
		reason := l[strings.LastIndex(l, " reason: ")+len(" reason: "):]
		ts, ok := finals[reason]
		if !ok {
			t.Errorf("spamdyke ALLOWED reason %q has no matching SMTP resp", reason)
			continue
		}
		if ts[11:] != l[7:15] {
			t.Errorf("spamdyke line at %s joins an SMTP resp at %s", l[7:15], ts[11:])
		}
		// qmail's unix stamp is UTC; the log is UTC+2 local time (seed 004).
		parts := strings.Split(reason, "_")
		unix, _ := strconv.ParseInt(parts[2], 10, 64)
		local, _ := time.Parse("2006-01-02 15:04:05", ts)
		if local.Unix()-unix != icdUTCOffset {
			t.Errorf("resp stamp %d is %d s from the local time %s", unix, local.Unix()-unix, ts)
		}
		matched++
	}
	if matched == 0 {
		t.Fatal("no spamdyke ALLOWED line")
	}
}

func TestWritesFilesToDisk(t *testing.T) {
	dir := t.TempDir()
	o := small(1, 300)
	o.OutDir = dir
	sum, err := Generate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sum.Files {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != f.Bytes {
			t.Errorf("%s: %d bytes on disk, summary %d", f.Name, st.Size(), f.Bytes)
		}
	}
	for _, n := range []string{TruthFile, SummaryFile} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Error(err)
		}
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := small(1, 100000)
	fs := &memFS{}
	o.Create = fs.create
	if _, err := Generate(ctx, o); err == nil {
		t.Fatal("a cancelled context did not stop the run")
	}
}

// Memory is bounded by the open sessions of one host, which follow Concurrency, not the run
// length.
func TestOpenSessionsBounded(t *testing.T) {
	o := small(21, 0)
	o.Lines = 150000
	o.Concurrency = 8
	_, sum := generate(t, o)
	for _, h := range sum.Hosts {
		// Isode's 5-minute timeouts keep a few sessions open much longer than the mean.
		low := 2
		if h.Product == ProductICDSoft {
			low = 1 // each ICDSoft group is written within its second, as a block
		}
		if h.MaxOpen < low || h.MaxOpen > 150 {
			t.Errorf("%s (%s): %d sessions open at most over %d sessions, want a bounded 2..150", h.Host, h.Product, h.MaxOpen, h.Sessions)
		}
	}
	if got, want := sum.Total.Lines-sum.Total.Garbage, o.Lines; got < want || got > want+want/20 {
		t.Errorf("asked for about %d lines, got %d", want, got)
	}
}

// FuzzGenerate checks the generator's invariants for arbitrary seeds and fleet shapes: every
// line has its dialect's shape or is counted garbage, and the truth accounts for every other
// line with a valid roll-up.
func FuzzGenerate(f *testing.F) {
	f.Add(uint64(1), uint8(10), uint16(300), uint8(5))
	f.Add(uint64(99), uint8(3), uint16(50), uint8(0))
	f.Add(uint64(7), uint8(1), uint16(1), uint8(255))
	f.Fuzz(func(t *testing.T, seed uint64, hosts uint8, sessions uint16, garbage uint8) {
		o := Defaults()
		o.Seed = seed
		o.Hosts = 1 + int(hosts)%14
		o.Sessions = 1 + int(sessions)%400
		o.Lines = 0
		o.GarbageRate = float64(garbage) / 510
		fs, sum := generate(t, o)
		truth := readTruth(t, fs)
		if len(truth) != o.Sessions {
			t.Fatalf("%d sessions asked, %d in truth", o.Sessions, len(truth))
		}
		lines := 0
		for i := range truth {
			lines += truth[i].Lines
			checkRollUp(t, i, &truth[i])
		}
		garbageLines := 0
		for _, fsum := range sum.Files {
			re := shapes[dialectOf(fsum.Name)]
			eachLine(fs.files[fsum.Name].Bytes(), func(line []byte, _ int64, n int) {
				if !re.Match(line) {
					garbageLines++
				}
			})
			lines += fsum.Garbage
		}
		if garbageLines != sum.Total.Garbage {
			t.Errorf("%d lines match no shape, %d garbage counted", garbageLines, sum.Total.Garbage)
		}
		if lines != sum.Total.Lines {
			t.Errorf("truth and garbage account for %d lines, files hold %d", lines, sum.Total.Lines)
		}
	})
}
