package config

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mxtrail/mxtrail/enrich/alert"
)

// Alerts configures the alert engine of the enricher (enrich/alert). Its records go to
// kafka.topics.alerts, which the sink writes into the alerts table.
type Alerts struct {
	// Enabled turns the engine and its metrics on.
	Enabled bool `yaml:"enabled"`
	// Window: alerts of one (rule, host) are throttled into windows of this size, aligned in
	// event time; the first line opens the alert at once, the window's end resolves it.
	Window time.Duration `yaml:"window"`
	// UpdateInterval: repeats emit an updated record (count, last_seen) at most this often.
	UpdateInterval time.Duration `yaml:"update_interval"`
	// HostLabelLimit caps distinct host label values per instance; more hosts count as _other.
	HostLabelLimit int `yaml:"host_label_limit"`
	// TrustedRelayNetworks (CIDR): a relay grant to a client outside them raises
	// relay_unexpected; empty turns that rule off.
	TrustedRelayNetworks []string `yaml:"trusted_relay_networks"`
	// AuthBurst raises auth_failure_burst at Count sessions failing AUTH on one host within
	// one aligned Window.
	AuthBurst AuthBurst `yaml:"auth_burst"`
}

// AuthBurst is the threshold of auth_failure_burst.
type AuthBurst struct {
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
}

func defaultAlerts() Alerts {
	d := alert.Defaults()
	return Alerts{Enabled: true, Window: d.Window, UpdateInterval: d.UpdateInterval, HostLabelLimit: 1000,
		AuthBurst: AuthBurst{Count: d.AuthBurstCount, Window: d.AuthBurstWindow}}
}

func (a *Alerts) validate(ps *Problems, p string) {
	if a.Window <= 0 {
		ps.add(join(p, "window"), "%v must be positive", a.Window)
	}
	if a.UpdateInterval < 0 || (a.Window > 0 && a.UpdateInterval > a.Window) {
		ps.add(join(p, "update_interval"), "%v must be between 0 and window %v", a.UpdateInterval, a.Window)
	}
	if a.HostLabelLimit < 1 {
		ps.add(join(p, "host_label_limit"), "%d must be at least 1", a.HostLabelLimit)
	}
	for i, n := range a.TrustedRelayNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			ps.add(fmt.Sprintf("%s[%d]", join(p, "trusted_relay_networks"), i), "%q is not a CIDR network: %v", n, err)
		}
	}
	if a.AuthBurst.Count < 1 {
		ps.add(join(p, "auth_burst.count"), "%d must be at least 1", a.AuthBurst.Count)
	}
	if a.AuthBurst.Window <= 0 {
		ps.add(join(p, "auth_burst.window"), "%v must be positive", a.AuthBurst.Window)
	}
}

// AlertConfig converts the alerts section to the engine's configuration (nil when disabled),
// with the delay after which a session-derived window may close: a session is labelled only once it
// closes, idle_timeout + lateness after its last line, plus the stream's lateness.
func (e *Enrich) AlertConfig() *alert.Config {
	a := &e.Alerts
	if !a.Enabled {
		return nil
	}
	c := &alert.Config{Window: a.Window, UpdateInterval: a.UpdateInterval,
		AuthBurstCount: a.AuthBurst.Count, AuthBurstWindow: a.AuthBurst.Window,
		SessionDelay: e.Sessions.IdleTimeout + e.Sessions.Lateness + e.Stream.Lateness}
	for _, n := range a.TrustedRelayNetworks {
		if pfx, err := netip.ParsePrefix(n); err == nil {
			c.Trusted = append(c.Trusted, pfx.Masked())
		}
	}
	return c
}
