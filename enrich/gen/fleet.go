package gen

import "math/rand/v2"

// Shared vocabulary of the simulated fleet: addresses, IPs, PTR names, id pools and garbage.

var (
	users       = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "info", "sales", "support", "admin", "billing", "office", "jobs", "newsletter"}
	localZones  = []string{"example.com", "example.net", "example.org", "shop.example", "school.example", "clinic.example", "agency.example", "studio.example"}
	hamDomains  = []string{"partner.example", "elsewhere.example.net", "university.example.edu", "bank.example", "supplier.example.org", "news.example.com", "friends.example", "cloudmail.example"}
	spamWords   = []string{"cheap", "pills", "winner", "casino", "crypto", "loan", "deal", "promo", "bonus", "offer", "secure", "verify", "lucky", "prize"}
	spamTLDs    = []string{"top", "xyz", "ru", "cn", "biz", "info", "click", "work"}
	heloWords   = []string{"mail", "mx", "smtp", "out", "relay", "mta"}
	rbls        = []string{"zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org", "dnsbl.sorbs.net"}
	rhsbls      = []string{"dbl.spamhaus.org", "multi.surbl.org", "black.uribl.com"}
	viruses     = []string{"Eicar-Test-Signature", "Win.Trojan.Agent-123456", "Doc.Dropper.Emotet-7071", "Html.Phishing.Bank-112"}
	ispSuffixes = []string{"dyn.broadband.example", "pool.isp.example.net", "dsl.telco.example", "cable.provider.example"}
)

// pick returns a random element.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// weighted picks an index by weight.
type weighted []float64

func (w weighted) pick(r *rand.Rand) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	v := r.Float64() * total
	for i, x := range w {
		if v < x {
			return i
		}
		v -= x
	}
	return len(w) - 1
}

// client is the remote side of a session.
type client struct {
	ip     uint32
	ipStr  string
	ptr    string // "" when the IP has no PTR
	helo   string
	sender string
	spam   bool
}

// remoteIP draws a public-looking IPv4 address (no 0/8, 10/8, 127/8, multicast).
func remoteIP(r *rand.Rand) uint32 {
	for {
		ip := r.Uint32()
		a := ip >> 24
		if a == 0 || a == 10 || a == 127 || a >= 224 || a == 192 && ip>>16&0xff == 168 {
			continue
		}
		return ip
	}
}

func spamDomain(r *rand.Rand) string {
	return pick(r, spamWords) + pick(r, spamWords) + string(appendInt(nil, r.IntN(100))) + "." + pick(r, spamTLDs)
}

// newClient draws a remote client: spammers mostly come from dynamic or PTR-less addresses.
func newClient(r *rand.Rand, spam bool) client {
	c := client{ip: remoteIP(r), spam: spam}
	c.ipStr = ipString(c.ip)
	if spam {
		dom := spamDomain(r)
		switch r.IntN(3) {
		case 0:
			c.ptr = ""
		case 1:
			c.ptr = "host-" + string(appendDashedIP(nil, c.ipStr)) + "." + pick(r, ispSuffixes)
		default:
			c.ptr = pick(r, heloWords) + "." + dom
		}
		if chance(r, 0.3) {
			c.helo = "[" + c.ipStr + "]"
		} else {
			c.helo = pick(r, heloWords) + "." + dom
		}
		c.sender = pick(r, spamWords) + string(appendInt(nil, r.IntN(1000))) + "@" + dom
		return c
	}
	dom := pick(r, hamDomains)
	c.ptr = pick(r, heloWords) + string(appendInt(nil, 1+r.IntN(9))) + "." + dom
	c.helo = c.ptr
	c.sender = pick(r, users) + "@" + dom
	return c
}

// local returns a local recipient on one of the host's domains.
func (h *host) local() string { return pick(h.rng, users) + "@" + pick(h.rng, h.zones()) }

// unknownLocal returns an address on a local domain that has no mailbox (dictionary attacks).
func (h *host) unknownLocal() string {
	return pick(h.rng, spamWords) + string(appendInt(nil, h.rng.IntN(100))) + "." + pick(h.rng, users) + "@" + pick(h.rng, h.zones())
}

// remote returns a recipient elsewhere (relay attempts, outbound mail).
func (h *host) remote() string { return pick(h.rng, users) + "@" + pick(h.rng, hamDomains) }

func (h *host) zones() []string {
	if h.zoneList == nil {
		// Each host serves three of the local zones, chosen by its name so it is stable.
		i := int(h.name[len(h.name)-1]) % len(localZones)
		h.zoneList = []string{localZones[i], localZones[(i+3)%len(localZones)], localZones[(i+5)%len(localZones)]}
	}
	return h.zoneList
}

// pidPool hands out process ids the way a Unix kernel does: increasing, wrapping at max,
// never one that is still in use. Wrapping is what makes pid reuse happen in long runs.
// step bounds how many other processes the host forks between two connections.
type pidPool struct {
	next, min, max, step int
	inUse                map[int]bool
}

func newPidPool(r *rand.Rand, min, max, step int) *pidPool {
	return &pidPool{next: min + r.IntN(max-min), min: min, max: max, step: step, inUse: map[int]bool{}}
}

func (p *pidPool) alloc(r *rand.Rand) int {
	for {
		p.next += 1 + r.IntN(p.step)
		if p.next >= p.max {
			p.next = p.min + p.next - p.max
		}
		if !p.inUse[p.next] {
			p.inUse[p.next] = true
			return p.next
		}
	}
}

func (p *pidPool) free(pid int) { delete(p.inUse, pid) }

// socketPool hands out Windows socket handles: multiples of 4, the most recently freed first,
// so a handle is reused by the very next connection (MailEnable keys sessions by socket + IP).
type socketPool struct {
	free []int
	next int
}

func (p *socketPool) alloc() int {
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		return s
	}
	p.next += 4
	return p.next
}

func (p *socketPool) release(s int) { p.free = append(p.free, s) }

// appendGarbage appends one line that no dialect can parse: noise, binary bytes or a
// syslog header cut short. It never contains a newline except the final one.
func appendGarbage(b []byte, r *rand.Rand, at int64) []byte {
	switch r.IntN(3) {
	case 0:
		b = append(b, '~')
		n := 10 + r.IntN(100)
		for i := 0; i < n; i++ {
			if r.IntN(6) == 0 {
				b = append(b, ' ')
			} else {
				b = append(b, byte('!'+r.IntN(94)))
			}
		}
	case 1:
		n := 4 + r.IntN(60)
		for i := 0; i < n; i++ {
			c := byte(0x80 + r.IntN(128))
			if r.IntN(8) == 0 {
				c = byte(r.IntN(10)) // NUL..TAB, never '\n'
			}
			b = append(b, c)
		}
	default:
		var c clock
		c.set(at)
		ts := appendSyslogTS(nil, &c)
		b = append(b, ts[:4+r.IntN(len(ts)-4)]...)
	}
	return append(b, '\n')
}

// appendDashedIP appends the dotted IP with dashes, as dynamic PTR names spell it.
func appendDashedIP(b []byte, ip string) []byte {
	for i := 0; i < len(ip); i++ {
		if ip[i] == '.' {
			b = append(b, '-')
		} else {
			b = append(b, ip[i])
		}
	}
	return b
}
