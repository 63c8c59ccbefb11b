package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAlertsSectionEveryProblem(t *testing.T) {
	cfg := Default()
	err := Decode([]byte(`
kafka: {topics: {alerts: "bad topic"}}
enrich:
  alerts:
    window: 0s
    update_interval: -1s
    host_label_limit: 0
    trusted_relay_networks: ["192.0.2.0/24", "not-a-net", "10.0.0.1"]
    auth_burst: {count: 0, window: 0s}
`), &cfg)
	if err == nil {
		if ps := cfg.Validate(); len(ps) > 0 {
			err = ps
		}
	}
	if err == nil {
		t.Fatal("no problems reported")
	}
	for _, want := range []string{"kafka.topics.alerts", "enrich.alerts.window", "enrich.alerts.update_interval",
		"enrich.alerts.host_label_limit", `enrich.alerts.trusted_relay_networks[1]: "not-a-net"`,
		`enrich.alerts.trusted_relay_networks[2]: "10.0.0.1"`, "enrich.alerts.auth_burst.count", "enrich.alerts.auth_burst.window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "trusted_relay_networks[0]") {
		t.Errorf("a valid network was reported: %v", err)
	}
}

func TestAlertConfig(t *testing.T) {
	cfg := Default()
	cfg.Enrich.Alerts.TrustedRelayNetworks = []string{"192.0.2.77/24"}
	ac := cfg.Enrich.AlertConfig()
	if ac == nil || ac.Window != 10*time.Minute || ac.AuthBurstCount != 20 ||
		ac.SessionDelay != cfg.Enrich.Sessions.IdleTimeout+cfg.Enrich.Sessions.Lateness+cfg.Enrich.Stream.Lateness ||
		len(ac.Trusted) != 1 || ac.Trusted[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("%+v", ac)
	}
	if err := ac.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Enrich.Alerts.Enabled = false
	if cfg.Enrich.AlertConfig() != nil {
		t.Fatal("disabled section gave an engine config")
	}
}
