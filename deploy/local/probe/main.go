// Command probe answers the deploy/local scripts' readiness questions with the project's own
// client libraries, so "ready" means what the pipeline will see:
//
//	probe kafka ADDR       a metadata request succeeds; prints the brokers and API versions count
//	probe clickhouse ADDR  SELECT version() succeeds over the native protocol; prints the version
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe kafka|clickhouse ADDR")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "kafka":
		err = probeKafka(ctx, os.Args[2])
	case "clickhouse":
		err = probeClickHouse(ctx, os.Args[2])
	default:
		err = fmt.Errorf("unknown probe %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func probeKafka(ctx context.Context, addr string) error {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("kafka metadata from %s: %w", addr, err)
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("kafka metadata from %s: no brokers yet", addr)
	}
	av, err := client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err != nil {
		return fmt.Errorf("kafka api versions from %s: %w", addr, err)
	}
	fmt.Printf("kafka %s: %d broker(s), controller %d, %d API keys\n", addr, len(md.Brokers), md.Controller.ID, len(av.ApiKeys))
	return nil
}

func probeClickHouse(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 3 * time.Second})
	if err != nil {
		return fmt.Errorf("open clickhouse %s: %w", addr, err)
	}
	defer conn.Close()
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return fmt.Errorf("clickhouse %s: SELECT version(): %w", addr, err)
	}
	fmt.Printf("clickhouse %s: version %s\n", addr, v)
	return nil
}
