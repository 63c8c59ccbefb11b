package config

import (
	"time"

	"github.com/mxtrail/mxtrail/enrich/session"
)

// Sessions configures the session assembler of the enricher (enrich/session).
type Sessions struct {
	// IdleTimeout closes a session silent this long, in event time.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Lateness keeps a session open this long after its end marker for late lines.
	Lateness time.Duration `yaml:"lateness"`
	// MaxOpen caps open sessions per assembler (least recently active evicted, counted).
	MaxOpen int `yaml:"max_open"`
	// PidReuseGap: a spamdyke/qmail pid silent this long starts a new session.
	PidReuseGap time.Duration `yaml:"pid_reuse_gap"`
	// IsodeKeyPrefix names the Isode session key token in the event text.
	IsodeKeyPrefix string `yaml:"isode_key_prefix"`
	// NotableCodes are product codes emitted as notable events whatever their severity.
	NotableCodes []string `yaml:"notable_codes"`
}

func defaultSessions() Sessions {
	d := session.Defaults()
	return Sessions{IdleTimeout: d.IdleTimeout, Lateness: d.Lateness, MaxOpen: d.MaxOpen,
		PidReuseGap: d.PidReuseGap, IsodeKeyPrefix: d.IsodeKeyPrefix}
}

// Config converts the section to the assembler's configuration.
func (s *Sessions) Config() session.Config {
	return session.Config{IdleTimeout: s.IdleTimeout, Lateness: s.Lateness, MaxOpen: s.MaxOpen,
		PidReuseGap: s.PidReuseGap, IsodeKeyPrefix: s.IsodeKeyPrefix, NotableCodes: s.NotableCodes}
}

func (s *Sessions) validate(ps *Problems, p string) {
	if s.IdleTimeout <= 0 {
		ps.add(join(p, "idle_timeout"), "%v must be positive", s.IdleTimeout)
	}
	if s.Lateness < 0 || s.IdleTimeout > 0 && s.Lateness >= s.IdleTimeout {
		ps.add(join(p, "lateness"), "%v must be 0 or more and shorter than idle_timeout %v", s.Lateness, s.IdleTimeout)
	}
	if s.MaxOpen < 1 {
		ps.add(join(p, "max_open"), "%d must be at least 1", s.MaxOpen)
	}
	if s.PidReuseGap <= 0 {
		ps.add(join(p, "pid_reuse_gap"), "%v must be positive", s.PidReuseGap)
	}
	if s.IsodeKeyPrefix == "" {
		ps.add(join(p, "isode_key_prefix"), "must not be empty")
	}
	for i, c := range s.NotableCodes {
		if c == "" {
			ps.add(join(p, "notable_codes"), "entry %d is empty", i)
		}
	}
}
