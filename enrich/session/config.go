package session

import (
	"errors"
	"fmt"
	"time"
)

// Config bounds the assembler. All durations are in event time: the assembler reads no clock.
type Config struct {
	// IdleTimeout closes a session that has seen no line for this long (closed_by=timeout).
	// It must exceed the longest silence inside one session (Isode's own 300 s timeout).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Lateness is how long, after a session's end marker (or an ICDSoft group's last line),
	// late lines of the same session are still joined: lines of one host arrive from several
	// files and IMail/ICDSoft/spamdyke stamps are coarse. 0 closes on the end marker at once
	// and settles ICDSoft joins immediately.
	Lateness time.Duration `yaml:"lateness"`
	// MaxOpen caps open sessions; on overflow the least recently active one is closed with
	// closed_by=evicted and counted.
	MaxOpen int `yaml:"max_open"`
	// PidReuseGap: a spamdyke/qmail line of a pid that has been silent this long starts a
	// new session (pids wrap around); so does a new connection from another client IP.
	PidReuseGap time.Duration `yaml:"pid_reuse_gap"`
	// IsodeKeyPrefix names the Isode session key: the first token of an event's text that
	// starts with it (default "conn="). No public Isode layout exists (FORMATS.md §4.2); when
	// the token is missing the parser's key (host process[pid]) is used.
	IsodeKeyPrefix string `yaml:"isode_key_prefix"`
	// NotableCodes are product codes (as the parser gives them: "#523", "DENIED_RBL_MATCH",
	// "106", "ME-I0073", "BLACKLIST_FOUND") whose lines are notable events whatever their
	// severity; lines at severity error or worse always are.
	NotableCodes []string `yaml:"notable_codes"`
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		IdleTimeout:    10 * time.Minute,
		Lateness:       2 * time.Minute,
		MaxOpen:        200_000,
		PidReuseGap:    time.Minute,
		IsodeKeyPrefix: "conn=",
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("idle_timeout %v: must be positive", c.IdleTimeout))
	}
	if c.Lateness < 0 {
		errs = append(errs, fmt.Errorf("lateness %v: must not be negative", c.Lateness))
	}
	if c.Lateness >= c.IdleTimeout && c.IdleTimeout > 0 {
		errs = append(errs, fmt.Errorf("lateness %v: must be shorter than idle_timeout %v", c.Lateness, c.IdleTimeout))
	}
	if c.MaxOpen < 1 {
		errs = append(errs, fmt.Errorf("max_open %d: must be at least 1", c.MaxOpen))
	}
	if c.PidReuseGap <= 0 {
		errs = append(errs, fmt.Errorf("pid_reuse_gap %v: must be positive", c.PidReuseGap))
	}
	for i, code := range c.NotableCodes {
		if code == "" {
			errs = append(errs, fmt.Errorf("notable_codes[%d]: empty code", i))
		}
	}
	if c.IsodeKeyPrefix == "" {
		errs = append(errs, errors.New("isode_key_prefix: must not be empty"))
	}
	return errors.Join(errs...)
}
