package clickhouse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ConnConfig is how to reach ClickHouse over the native protocol.
type ConnConfig struct {
	Addrs       []string // tried in order; the next is used when one is down (failover)
	Database    string   // default database for unqualified names; empty: the server's default
	Username    string
	Password    string
	DialTimeout time.Duration
	TLS         *TLSConfig // nil: plain TCP
	// Compression of the data blocks sent: "none" (or empty) or "lz4" (clickhouse-go's LZ4,
	// which the server understands on every version).
	Compression string
}

// TLSConfig is the client side of TLS.
type TLSConfig struct {
	CAFile, CertFile, KeyFile, ServerName string
	InsecureSkipVerify                    bool
}

// Open connects and pings. Addresses are used in order (ConnOpenInOrder), so the first is
// primary and the rest are failovers.
func Open(ctx context.Context, c ConnConfig) (driver.Conn, error) {
	opts := &ch.Options{
		Addr:             c.Addrs,
		Auth:             ch.Auth{Database: c.Database, Username: c.Username, Password: c.Password},
		DialTimeout:      c.DialTimeout,
		ConnOpenStrategy: ch.ConnOpenInOrder,
		MaxOpenConns:     4,
		MaxIdleConns:     2,
		ReadTimeout:      5 * time.Minute,
		// clickhouse-go encodes a block column by column into one buffer per connection and
		// writes it out once it holds this much: at its default of 10 MiB the buffer grew to
		// 10 MiB plus a whole column, copied at each doubling, on each of up to four connections
		// (123 MB of the sink's 568 MB allocated over 1M records). 1 MiB is also ClickHouse's
		// own max_compress_block_size.
		MaxCompressionBuffer: 1 << 20,
	}
	switch c.Compression {
	case "", "none":
	case "lz4":
		opts.Compression = &ch.Compression{Method: ch.CompressionLZ4}
	default:
		return nil, fmt.Errorf("clickhouse compression %q: want none or lz4", c.Compression)
	}
	if c.TLS != nil {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		opts.TLS = tc
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", c.Addrs, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %v: %w", c.Addrs, err)
	}
	return conn, nil
}

func (t *TLSConfig) build() (*tls.Config, error) {
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
