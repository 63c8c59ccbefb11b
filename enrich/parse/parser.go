// Package parse turns one raw mail-log line into one event.Event. It owns the grok pattern
// library (patterns/*.grok, embedded; users add files from a directory), the router that
// picks a line's dialect with cheap byte tests, and the per-product catalogues that give
// each code its name and severity.
//
// A Parser is built once (New compiles every pattern) and is then safe for concurrent use.
// Parse writes into a caller-owned Event and allocates nothing in steady state.
package parse

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

//go:embed patterns/*.grok
var builtinPatterns embed.FS

// Options configure a Parser. Year and zone are inputs: the parser reads no clock.
type Options struct {
	// PatternDir holds extra *.grok files, loaded after the built-in ones; a definition
	// with a built-in name replaces it, new <PREFIX>_Lnn_* names add top-level patterns.
	PatternDir string
	// IsodeHeader, when set, replaces the ISODE_HEADER grok expression.
	IsodeHeader string
	// DefaultYear is the year of yearless lines when a Source has no YearRef. Required.
	DefaultYear int
	// Location is the zone of lines without one when a Source has no Loc; nil means UTC.
	Location *time.Location
}

// Reasons for Parsed == false.
const (
	ReasonEmpty          = "empty line"
	ReasonNoDialect      = "no dialect recognises the line"
	ReasonNoPattern      = "no pattern of the dialect matches"
	ReasonBadTime        = "timestamp out of range"
	ReasonUnknownProgram = "syslog program is not a known mail product"
)

type role uint8

const (
	roleField role = iota
	roleTS
	roleHost
	roleCode
	roleName
	roleSeverity
	roleEventID
	roleSession
)

type compiled struct {
	*Pattern
	roles  []role
	fields []event.Field
	// group is the prefix group (dialectPatterns.groups) whose run is this pattern's first
	// prefixLen tokens, or -1 (see prefix.go).
	group, prefixLen int
}

type dialectPatterns struct {
	pats   []*compiled
	groups []prefixGroup
}

// Parser parses lines of every dialect. Safe for concurrent use after New.
type Parser struct {
	opts     Options
	dialects [event.NumDialects]dialectPatterns
	comp     *compiler

	noPrefix bool // tests: try every pattern from its first token (the reference)

	smtpfByNum    map[int]*smtpfEntry
	isodeByName   map[string]*isodeEvent
	spamdykeKnown map[string]bool
	mailEnable    map[string]string
}

// prefixes maps each dialect to the name prefix of its top-level patterns.
var prefixes = [event.NumDialects]string{
	event.DialectSpamdyke:           "SPAMDYKE_L",
	event.DialectQmail:              "QMAIL_L",
	event.DialectICDSoftSMTP:        "ICDSOFT_SMTP_L",
	event.DialectICDSoftDelivery:    "ICDSOFT_DELIVERY_L",
	event.DialectSmtpf:              "SMTPF_L",
	event.DialectIsode:              "ISODE_L",
	event.DialectMailEnableActivity: "MAILENABLE_ACTIVITY_L",
	event.DialectMailEnableDebug:    "MAILENABLE_DEBUG_L",
	event.DialectIMail:              "IMAIL_L",
}

// New loads and compiles every pattern. It names the pattern or file when one fails.
func New(opts Options) (*Parser, error) {
	if opts.DefaultYear <= 0 || opts.DefaultYear > 9999 {
		return nil, fmt.Errorf("new parser: default year %d out of range 1..9999", opts.DefaultYear)
	}
	defs := map[string]string{}
	if err := loadPatterns(builtinPatterns, "patterns", defs); err != nil {
		return nil, err
	}
	if opts.PatternDir != "" {
		if err := loadPatterns(os.DirFS(opts.PatternDir), ".", defs); err != nil {
			return nil, fmt.Errorf("load extra patterns from %q: %w", opts.PatternDir, err)
		}
	}
	if opts.IsodeHeader != "" {
		defs["ISODE_HEADER"] = opts.IsodeHeader
	}
	c, err := newCompiler(defs)
	if err != nil {
		return nil, err
	}
	p := &Parser{opts: opts, comp: c}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	for d := event.Dialect(1); d < event.NumDialects; d++ {
		pre := prefixes[d]
		for _, n := range names {
			if !isTopLevel(n, pre) {
				if strings.HasPrefix(n, pre) && len(n) > len(pre) && isDigit(n[len(pre)]) {
					// e.g. SMTPF_L16A_X: meant as top-level, would be silently unused
					return nil, fmt.Errorf("compile grok pattern %q: a top-level name is %sNN_<name> (two digits, then _)", n, pre)
				}
				continue
			}
			pat, err := c.compile(n)
			if err != nil {
				return nil, err
			}
			cp := &compiled{Pattern: pat}
			for _, capName := range pat.Names {
				r, f, err := roleOf(capName)
				if err != nil {
					return nil, fmt.Errorf("compile grok pattern %q: %w", n, err)
				}
				cp.roles = append(cp.roles, r)
				cp.fields = append(cp.fields, f)
			}
			if len(cp.roles) > maxCaps {
				return nil, fmt.Errorf("compile grok pattern %q: %d captures, at most %d", n, len(cp.roles), maxCaps)
			}
			p.dialects[d].pats = append(p.dialects[d].pats, cp)
		}
		if len(p.dialects[d].pats) == 0 {
			return nil, fmt.Errorf("new parser: no top-level pattern %s* for dialect %s", pre, d)
		}
		p.dialects[d].groupPatterns()
	}
	p.smtpfByNum = map[int]*smtpfEntry{}
	for i := range smtpfCatalogue {
		e := &smtpfCatalogue[i]
		if _, dup := p.smtpfByNum[e.Num]; !dup {
			p.smtpfByNum[e.Num] = e
		}
	}
	p.isodeByName = map[string]*isodeEvent{}
	for i := range isodeCatalogue {
		p.isodeByName[isodeCatalogue[i].Name] = &isodeCatalogue[i]
	}
	p.spamdykeKnown = map[string]bool{}
	for _, c := range spamdykeCodes {
		p.spamdykeKnown[c.Code] = true
	}
	p.mailEnable = map[string]string{}
	for _, c := range mailEnableCodes {
		p.mailEnable[c.Code] = c.Name
	}
	return p, nil
}

// isTopLevel: NAME is PREFIX + two digits + "_".
func isTopLevel(n, pre string) bool {
	if !strings.HasPrefix(n, pre) || len(n) < len(pre)+3 {
		return false
	}
	r := n[len(pre):]
	return isDigit(r[0]) && isDigit(r[1]) && r[2] == '_'
}

const maxCaps = 24

func roleOf(name string) (role, event.Field, error) {
	switch name {
	case "ts":
		return roleTS, 0, nil
	case "host":
		return roleHost, 0, nil
	case "code":
		return roleCode, 0, nil
	case "name":
		return roleName, 0, nil
	case "severity":
		return roleSeverity, 0, nil
	case "event_id":
		return roleEventID, 0, nil
	case "session":
		return roleSession, 0, nil
	}
	if f, ok := event.FieldByName(name); ok {
		return roleField, f, nil
	}
	return 0, 0, fmt.Errorf("capture %q is neither an event field nor one of ts, host, code, name, severity, event_id, session", name)
}

func loadPatterns(fsys fs.FS, dir string, defs map[string]string) error {
	files, err := fs.Glob(fsys, filepath.ToSlash(filepath.Join(dir, "*.grok")))
	if err != nil {
		return fmt.Errorf("list pattern files: %w", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return fmt.Errorf("read pattern file %q: %w", f, err)
		}
		for i, ln := range strings.Split(string(b), "\n") {
			ln = strings.TrimRight(ln, "\r")
			if strings.TrimSpace(ln) == "" || strings.HasPrefix(strings.TrimSpace(ln), "#") {
				continue
			}
			sp := strings.IndexByte(ln, ' ')
			if sp <= 0 {
				return fmt.Errorf("pattern file %q line %d: want \"NAME expression\", got %q", f, i+1, ln)
			}
			defs[ln[:sp]] = ln[sp+1:]
		}
	}
	return nil
}

// Patterns lists the top-level pattern names of dialect d in the order they are tried.
func (p *Parser) Patterns(d event.Dialect) []string {
	var out []string
	if d < event.NumDialects {
		for _, c := range p.dialects[d].pats {
			out = append(out, c.Name)
		}
	}
	return out
}
