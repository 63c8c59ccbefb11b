package config

import (
	"strings"
	"testing"
	"time"
)

func TestSessionsDefaultsAreValidAndConvert(t *testing.T) {
	c := Default()
	sc := c.Enrich.Sessions.Config()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	if sc.IdleTimeout != 10*time.Minute || sc.IsodeKeyPrefix != "conn=" {
		t.Fatalf("%+v", sc)
	}
}

func TestSessionsValidate(t *testing.T) {
	c := Default()
	c.Enrich.Sessions = Sessions{IdleTimeout: time.Minute, Lateness: time.Hour, NotableCodes: []string{""}}
	var got []string
	for _, p := range c.Validate() {
		if strings.HasPrefix(p.Path, "enrich.sessions.") {
			got = append(got, p.Path)
		}
	}
	want := "enrich.sessions.lateness enrich.sessions.max_open enrich.sessions.pid_reuse_gap enrich.sessions.isode_key_prefix enrich.sessions.notable_codes"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
}
