package config

import (
	"fmt"
	"os"
	"path"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// Enrich configures `mxtrail enrich` and the parser (owned by the parser/enricher work).
type Enrich struct {
	Parser   Parser   `yaml:"parser"`
	Sessions Sessions `yaml:"sessions"` // the session assembler (sessions.go)
	Stream   Stream   `yaml:"stream"`   // the Kafka loop of mxtrail enrich (stream.go)
	Alerts   Alerts   `yaml:"alerts"`   // the alert engine (alerts.go)
}

// Parser configures enrich/parse.
type Parser struct {
	// PatternDir holds extra *.grok files loaded after the built-in ones: a definition with
	// a built-in name replaces it; a new <DIALECT>_Lnn_<name> adds a top-level pattern.
	PatternDir string `yaml:"pattern_dir"`
	// DefaultYear is the year of yearless lines (syslog, IMail) when the file's mtime is
	// unknown. 0 means the current year at start-up.
	DefaultYear int `yaml:"default_year"`
	// TimeZone is the IANA zone of lines without one. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// IsodeHeader replaces the grok expression of the Isode event-log header (no public
	// layout exists; see enrich/parse/patterns/isode.grok for the default).
	IsodeHeader string `yaml:"isode_header"`
	// Sources pin a dialect, zone or year per source; the first match wins.
	Sources []ParserSource `yaml:"sources"`
}

// ParserSource matches lines by host and/or file path glob.
type ParserSource struct {
	Host     string `yaml:"host"`
	Path     string `yaml:"path"`      // glob, as path.Match
	Format   string `yaml:"format"`    // a --format name; "" or "auto" detects per line
	TimeZone string `yaml:"time_zone"` // overrides parser.time_zone
	Year     int    `yaml:"year"`      // overrides the year of yearless lines
}

func defaultEnrich() Enrich {
	return Enrich{Parser: Parser{TimeZone: "UTC"}, Sessions: defaultSessions(), Stream: defaultStream(), Alerts: defaultAlerts()}
}

func (e *Enrich) validate(ps *Problems, p string) {
	e.Sessions.validate(ps, join(p, "sessions"))
	e.Stream.validate(ps, join(p, "stream"))
	e.Alerts.validate(ps, join(p, "alerts"))
	pp := join(p, "parser")
	c := &e.Parser
	if c.PatternDir != "" {
		if st, err := os.Stat(c.PatternDir); err != nil {
			ps.add(join(pp, "pattern_dir"), "%q: %v", c.PatternDir, err)
		} else if !st.IsDir() {
			ps.add(join(pp, "pattern_dir"), "%q is not a directory", c.PatternDir)
		}
	}
	if c.DefaultYear != 0 && (c.DefaultYear < 1970 || c.DefaultYear > 9999) {
		ps.add(join(pp, "default_year"), "%d is out of range 1970..9999 (0 means the current year)", c.DefaultYear)
	}
	if _, err := loadZone(c.TimeZone); err != nil {
		ps.add(join(pp, "time_zone"), "%q: %v", c.TimeZone, err)
	}
	for i, s := range c.Sources {
		sp := fmt.Sprintf("%s.sources[%d]", pp, i)
		if s.Host == "" && s.Path == "" {
			ps.add(sp, "needs host or path to match")
		}
		if s.Path != "" {
			if _, err := path.Match(s.Path, ""); err != nil {
				ps.add(join(sp, "path"), "%q: %v", s.Path, err)
			}
		}
		if s.Format != "" {
			if _, ok := event.ParseDialect(s.Format); !ok {
				ps.add(join(sp, "format"), "%q is not one of %v", s.Format, event.DialectNames())
			}
		}
		if s.TimeZone != "" {
			if _, err := loadZone(s.TimeZone); err != nil {
				ps.add(join(sp, "time_zone"), "%q: %v", s.TimeZone, err)
			}
		}
		if s.Year != 0 && (s.Year < 1970 || s.Year > 9999) {
			ps.add(join(sp, "year"), "%d is out of range 1970..9999", s.Year)
		}
	}
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	return time.LoadLocation(name)
}

// Location is the parser's default zone (validated).
func (c *Parser) Location() *time.Location {
	l, err := loadZone(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return l
}

// Match returns the first source rule for host and file path, or nil.
func (c *Parser) Match(host, file string) *ParserSource {
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Host == "" && s.Path == "" {
			continue // invalid rule (Validate reports it); never a catch-all
		}
		if s.Host != "" && s.Host != host {
			continue
		}
		if s.Path != "" {
			if ok, _ := path.Match(s.Path, file); !ok {
				continue
			}
		}
		return s
	}
	return nil
}
