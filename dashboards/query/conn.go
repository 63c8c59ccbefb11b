package query

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
)

// Open connects to ClickHouse with database as the default database, so the saved queries'
// unqualified table names (sessions, events, alerts, sessions_per_minute) resolve there, as
// they do in clickhouse-client --database and in the Grafana data source. It mirrors
// chsink.Open, which has no default database.
func Open(ctx context.Context, c chsink.ConnConfig, database string) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Addr:             c.Addrs,
		Auth:             clickhouse.Auth{Database: database, Username: c.Username, Password: c.Password},
		DialTimeout:      c.DialTimeout,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		MaxOpenConns:     2,
		ReadTimeout:      5 * time.Minute,
	}
	if c.TLS != nil {
		tc, err := tlsConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		opts.TLS = tc
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", c.Addrs, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %v: %w", c.Addrs, err)
	}
	return conn, nil
}

func tlsConfig(t *chsink.TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read clickhouse ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("clickhouse ca_file %q: no PEM certificates", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load clickhouse client certificate %q: %w", t.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
