package config

import (
	"strings"
	"testing"
)

func TestShipDefaultsValidate(t *testing.T) {
	s := defaultShip()
	var ps Problems
	s.validate(&ps, "ship")
	if len(ps) != 0 {
		t.Fatalf("defaults are invalid: %v", ps)
	}
}

func TestShipDecodeAndValidateEveryProblem(t *testing.T) {
	cfg := Default()
	err := Decode([]byte(`
ship:
  files:
    - {path: "/var/log/maillog", dialect: spamdyke, start: end, tz: Europe/Sofia}
    - {path: "/var/log/[", start: middle, tz: Mars/Olympus}
  syslog: {udp: "0.0.0.0:514", tcp: "nope"}
  max_line: 2MiB
  compression: brotli
  poll: 0s
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Validate()
	got := ps.Error()
	for _, want := range []string{
		"ship.files[1].path", "ship.files[1].start", "ship.files[1].tz", "ship.syslog.tcp",
		"ship.max_line", "ship.compression", "ship.poll",
	} {
		if !strings.Contains(got, want+":") {
			t.Errorf("missing problem at %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "files[0]") || strings.Contains(got, "syslog.udp") {
		t.Errorf("valid entries reported:\n%s", got)
	}
	if cfg.Ship.Files[0].Start != "end" || cfg.Ship.MaxLine != 2<<20 {
		t.Errorf("decoded %+v", cfg.Ship.Files[0])
	}
}

func TestShipUnknownKey(t *testing.T) {
	cfg := Default()
	err := Decode([]byte("ship:\n  filez: []\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "ship.filez") {
		t.Fatalf("unknown key not reported with its path: %v", err)
	}
}
