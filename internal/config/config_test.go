package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The example file in the repository root must always be valid and equal the defaults for
// everything it does not change.
func TestExampleConfigIsValid(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	example := filepath.Join(filepath.Dir(file), "..", "..", "mxtrail.yaml")
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	// Decode and Validate, not Load: the file alone is under test, not the environment
	// (make test exports MXTRAIL_* overrides).
	cfg := Default()
	if err := Decode(data, &cfg); err != nil {
		t.Fatalf("example config: %v", err)
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("example config: %v", ps)
	}
	want := Default()
	want.Kafka.Brokers = []string{"127.0.0.1:19092"}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("example differs from defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

// Every problem is reported at once, each with its YAML path.
func TestDecodeReportsEveryProblemWithPath(t *testing.T) {
	data, err := os.ReadFile("testdata/bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	err = Decode(data, &cfg)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	got := ps.Error()
	for _, want := range []string{
		`kafka.brokerz (line 7): unknown key "brokerz"`,
		`clickhouse.dial_timeout (line 10): cannot unmarshal`,
		`http.unknown_key (line 13): unknown key "unknown_key"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("decode problems lack %q:\n%s", want, got)
		}
	}

	// Semantic problems come from Validate, also all at once.
	cfg = Default()
	cfg.Kafka.Brokers = []string{"127.0.0.1:19092", "no-port"}
	cfg.Kafka.Topics.Raw = "bad topic!"
	cfg.Kafka.SASL.Mechanism = "GSSAPI"
	cfg.ClickHouse.Addrs = nil
	cfg.ClickHouse.Compression = "zstd"
	cfg.HTTP.LogFormat = "xml"
	vs := cfg.Validate().Error()
	for _, want := range []string{
		`kafka.brokers[1]: "no-port" is not host:port`,
		`kafka.topics.raw: "bad topic!" is not a valid Kafka topic name`,
		`kafka.sasl.mechanism: "GSSAPI" is not one of`,
		`clickhouse.addrs: at least one address is required`,
		`clickhouse.compression: "zstd" is not none or lz4`,
		`http.log_format: "xml" is not text or json`,
	} {
		if !strings.Contains(vs, want) {
			t.Errorf("validate problems lack %q:\n%s", want, vs)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg := Default()
	env := map[string]string{
		"MXTRAIL_KAFKA_BROKERS":       "k1:9092, k2:9092",
		"MXTRAIL_CLICKHOUSE_ADDR":     "c1:9000,c2:9000",
		"MXTRAIL_CLICKHOUSE_DATABASE": "mail",
		"MXTRAIL_KAFKA_SASL_USERNAME": "ship",
	}
	if err := ApplyEnv(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Kafka.Brokers, []string{"k1:9092", "k2:9092"}) ||
		!reflect.DeepEqual(cfg.ClickHouse.Addrs, []string{"c1:9000", "c2:9000"}) ||
		cfg.ClickHouse.Database != "mail" || cfg.Kafka.SASL.Username != "ship" {
		t.Fatalf("env not applied: %+v", cfg)
	}
}

func TestDurationsAndSizes(t *testing.T) {
	cfg := Default()
	if err := Decode([]byte("clickhouse:\n  dial_timeout: 250ms\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse.DialTimeout != 250*time.Millisecond {
		t.Fatalf("dial_timeout = %s", cfg.ClickHouse.DialTimeout)
	}
	for in, want := range map[string]ByteSize{"65536": 65536, "64KiB": 65536, "32MiB": 32 << 20, "1GB": 1e9, "2 MiB": 2 << 20} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseByteSize("lots"); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("want an error quoting the input, got %v", err)
	}
}
