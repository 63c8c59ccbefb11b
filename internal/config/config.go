// Package config owns mxtrail's one YAML configuration file: its structure, defaults,
// environment overrides for connection settings, strict decoding, and validation that
// reports every problem at once with its YAML path.
//
// Each stage's section lives in a file of its own (ship.go, enrich.go, sink.go) so the stages
// can grow their settings independently.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole mxtrail.yaml.
type Config struct {
	Kafka      Kafka      `yaml:"kafka"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	Ship       Ship       `yaml:"ship"`
	Enrich     Enrich     `yaml:"enrich"`
	Sink       Sink       `yaml:"sink"`
	HTTP       HTTP       `yaml:"http"`
}

// Kafka is how every stage reaches the brokers.
type Kafka struct {
	// Brokers are host:port seed addresses. Empty means "use the embedded broker" where a
	// command supports it (mxtrail run); other commands require brokers.
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	TLS      TLS      `yaml:"tls"`
	SASL     SASL     `yaml:"sasl"`
	Topics   Topics   `yaml:"topics"`
	// EmbeddedDataDir is where the embedded broker keeps its log when no brokers are set.
	EmbeddedDataDir string `yaml:"embedded_data_dir"`
}

// Topics names the pipeline's topics.
type Topics struct {
	Raw        string `yaml:"raw"`
	Sessions   string `yaml:"sessions"`
	Events     string `yaml:"events"`
	DeadLetter string `yaml:"deadletter"`
	Alerts     string `yaml:"alerts"` // alert records (enricher → sink)
}

// SASL authentication for Kafka. Mechanism is empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
type SASL struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// TLS client settings shared by Kafka and ClickHouse.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// ClickHouse is how the sink and the query tools reach ClickHouse (native protocol).
type ClickHouse struct {
	// Addrs are host:port native-protocol addresses, tried in order for failover.
	Addrs       []string      `yaml:"addrs"`
	Database    string        `yaml:"database"`
	Username    string        `yaml:"username"`
	Password    string        `yaml:"password"`
	TLS         TLS           `yaml:"tls"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Compression of the blocks the sink sends: none or lz4. LZ4 costs the sink ~0.7-0.9 µs
	// of CPU per session row (measured, BenchmarkInsertIntegration: its whole insert is ~1 µs
	// without), which the sink's 2 µs per row budget cannot carry; it pays only where the
	// link, not the CPU, is the limit (~250 MB/s of rows at 250k rows/s).
	Compression string `yaml:"compression"`
}

// HTTP is the observability listener every long-running command serves, and logging.
type HTTP struct {
	// Listen is host:port for /metrics, /healthz and /readyz; empty disables the listener.
	Listen    string `yaml:"listen"`
	LogFormat string `yaml:"log_format"` // text or json
	LogLevel  string `yaml:"log_level"`  // debug, info, warn, error
}

// Default returns the configuration used when a key is absent.
func Default() Config {
	return Config{
		Kafka: Kafka{
			ClientID: "mxtrail",
			Topics: Topics{
				Raw:        "mxtrail.raw",
				Sessions:   "mxtrail.sessions",
				Events:     "mxtrail.events",
				DeadLetter: "mxtrail.deadletter",
				Alerts:     "mxtrail.alerts",
			},
			EmbeddedDataDir: "data/kafka",
		},
		ClickHouse: ClickHouse{
			Addrs:       []string{"127.0.0.1:19000"},
			Database:    "mxtrail",
			Username:    "default",
			DialTimeout: 5 * time.Second,
			Compression: "none",
		},
		Ship:   defaultShip(),
		Enrich: defaultEnrich(),
		Sink:   defaultSink(),
		HTTP:   HTTP{Listen: "127.0.0.1:9464", LogFormat: "text", LogLevel: "info"},
	}
}

// Problem is one thing wrong with a configuration, located by its YAML path.
type Problem struct {
	Path string // e.g. "ship.inputs[0].start"
	Line int    // 0 when unknown
	Msg  string
}

func (p Problem) String() string {
	loc := p.Path
	if loc == "" {
		loc = "(document)"
	}
	if p.Line > 0 {
		loc = fmt.Sprintf("%s (line %d)", loc, p.Line)
	}
	return loc + ": " + p.Msg
}

// Problems is every problem found; it is an error when non-empty.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// add records a problem at path.
func (ps *Problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Load reads, strictly decodes, applies environment overrides to and validates the file at
// path. An empty path means defaults plus environment. The error is Problems when the file
// decoded but is wrong, so callers can print every problem.
func Load(path string) (Config, error) {
	cfg := Default()
	var ps Problems
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		// A key that failed to decode keeps its default, so validating what did decode
		// reports the remaining problems without false alarms: every problem at once.
		if err := Decode(data, &cfg); err != nil {
			if !errors.As(err, &ps) {
				return cfg, err
			}
		}
	}
	if err := ApplyEnv(&cfg, os.LookupEnv); err != nil {
		return cfg, err
	}
	ps = append(ps, cfg.Validate()...)
	if len(ps) > 0 {
		return cfg, ps
	}
	return cfg, nil
}

// Decode strictly decodes YAML into cfg, which should hold defaults. Unknown keys and type
// mismatches are all reported together as Problems with their YAML paths.
func Decode(data []byte, cfg *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Problems{{Msg: "invalid YAML: " + err.Error()}}
	}
	if len(root.Content) == 0 {
		return nil // empty file: all defaults
	}
	var ps Problems
	lines := map[int]string{}
	walkKeys(root.Content[0], reflect.TypeOf(*cfg), "", lines, &ps)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return append(ps, Problem{Msg: err.Error()})
		}
		for _, msg := range te.Errors {
			if strings.Contains(msg, "not found in type") {
				continue // already reported by walkKeys with its path
			}
			line, rest := splitLine(msg)
			ps = append(ps, Problem{Path: lines[line], Line: line, Msg: rest})
		}
	}
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
		return ps
	}
	return nil
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

func splitLine(msg string) (int, string) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	unmarshaler  = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// walkKeys checks every mapping key against the struct's yaml tags, reporting unknown keys
// with their path, and records the path of every value's line for type errors.
func walkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	lines[n.Line] = path
	if t == durationType || reflect.PointerTo(t).Implements(unmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			lines[k.Line] = p
			ft, ok := fields[k.Value]
			if !ok {
				*ps = append(*ps, Problem{Path: p, Line: k.Line, Msg: fmt.Sprintf("unknown key %q", k.Value)})
				continue
			}
			walkKeys(v, ft, p, lines, ps)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			walkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, ps)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), lines, ps)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// ApplyEnv overrides connection settings from MXTRAIL_* variables. lookup is os.LookupEnv in
// production and a map in tests.
func ApplyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	list := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	if v, ok := lookup("MXTRAIL_KAFKA_BROKERS"); ok {
		cfg.Kafka.Brokers = list(v)
	}
	if v, ok := lookup("MXTRAIL_KAFKA_SASL_MECHANISM"); ok {
		cfg.Kafka.SASL.Mechanism = v
	}
	if v, ok := lookup("MXTRAIL_KAFKA_SASL_USERNAME"); ok {
		cfg.Kafka.SASL.Username = v
	}
	if v, ok := lookup("MXTRAIL_KAFKA_SASL_PASSWORD"); ok {
		cfg.Kafka.SASL.Password = v
	}
	if v, ok := lookup("MXTRAIL_CLICKHOUSE_ADDR"); ok {
		cfg.ClickHouse.Addrs = list(v)
	}
	if v, ok := lookup("MXTRAIL_CLICKHOUSE_DATABASE"); ok {
		cfg.ClickHouse.Database = v
	}
	if v, ok := lookup("MXTRAIL_CLICKHOUSE_USERNAME"); ok {
		cfg.ClickHouse.Username = v
	}
	if v, ok := lookup("MXTRAIL_CLICKHOUSE_PASSWORD"); ok {
		cfg.ClickHouse.Password = v
	}
	if v, ok := lookup("MXTRAIL_HTTP_LISTEN"); ok {
		cfg.HTTP.Listen = v
	}
	return nil
}

// Validate returns every semantic problem in cfg.
func (c *Config) Validate() Problems {
	var ps Problems
	for i, b := range c.Kafka.Brokers {
		if !isHostPort(b) {
			ps.add(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if c.Kafka.ClientID == "" {
		ps.add("kafka.client_id", "must not be empty")
	}
	for _, t := range []struct{ path, v string }{
		{"kafka.topics.raw", c.Kafka.Topics.Raw},
		{"kafka.topics.sessions", c.Kafka.Topics.Sessions},
		{"kafka.topics.events", c.Kafka.Topics.Events},
		{"kafka.topics.deadletter", c.Kafka.Topics.DeadLetter},
		{"kafka.topics.alerts", c.Kafka.Topics.Alerts},
	} {
		if !validTopic(t.v) {
			ps.add(t.path, "%q is not a valid Kafka topic name (1-249 of [a-zA-Z0-9._-])", t.v)
		}
	}
	switch c.Kafka.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Kafka.SASL.Username == "" {
			ps.add("kafka.sasl.username", "required with mechanism %s", c.Kafka.SASL.Mechanism)
		}
	default:
		ps.add("kafka.sasl.mechanism", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.Kafka.SASL.Mechanism)
	}
	validateTLS(&ps, "kafka.tls", c.Kafka.TLS)

	if len(c.ClickHouse.Addrs) == 0 {
		ps.add("clickhouse.addrs", "at least one address is required")
	}
	for i, a := range c.ClickHouse.Addrs {
		if !isHostPort(a) {
			ps.add(fmt.Sprintf("clickhouse.addrs[%d]", i), "%q is not host:port", a)
		}
	}
	if !identRE.MatchString(c.ClickHouse.Database) {
		ps.add("clickhouse.database", "%q is not a plain identifier", c.ClickHouse.Database)
	}
	if c.ClickHouse.DialTimeout <= 0 {
		ps.add("clickhouse.dial_timeout", "must be positive, got %s", c.ClickHouse.DialTimeout)
	}
	if c.ClickHouse.Compression != "none" && c.ClickHouse.Compression != "lz4" {
		ps.add("clickhouse.compression", "%q is not none or lz4", c.ClickHouse.Compression)
	}
	validateTLS(&ps, "clickhouse.tls", c.ClickHouse.TLS)

	if c.HTTP.Listen != "" && !isHostPort(c.HTTP.Listen) {
		ps.add("http.listen", "%q is not host:port", c.HTTP.Listen)
	}
	switch c.HTTP.LogFormat {
	case "text", "json":
	default:
		ps.add("http.log_format", "%q is not text or json", c.HTTP.LogFormat)
	}
	switch c.HTTP.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		ps.add("http.log_level", "%q is not debug, info, warn or error", c.HTTP.LogLevel)
	}
	c.Ship.validate(&ps, "ship")
	c.Enrich.validate(&ps, "enrich")
	c.Sink.validate(&ps, "sink")
	return ps
}

func validateTLS(ps *Problems, path string, t TLS) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		ps.add(path, "cert_file and key_file go together")
	}
	for _, f := range []struct{ k, v string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.v == "" {
			continue
		}
		if _, err := os.Stat(f.v); err != nil {
			ps.add(path+"."+f.k, "%v", err)
		}
	}
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
)

func validTopic(s string) bool { return topicRE.MatchString(s) && s != "." && s != ".." }

func isHostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return false
	}
	p, err := strconv.Atoi(s[i+1:])
	return err == nil && p > 0 && p < 65536
}
