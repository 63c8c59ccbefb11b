package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/mxtrail/mxtrail/internal/config"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

func init() {
	register("migrate", "create or upgrade the ClickHouse schema", runMigrate)
}

func runMigrate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: defaults and MXTRAIL_* environment)")
	print := fs.Bool("print", false, "print the DDL for --server-version instead of running it")
	server := fs.String("server-version", "", "ClickHouse version to render for with --print, e.g. 18.16 or 26.1")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail migrate: %v\n", err)
		return 2
	}
	opts := schemaOptions(cfg)
	if *print {
		if *server == "" {
			fmt.Fprintln(stderr, "mxtrail migrate: --print needs --server-version")
			return 2
		}
		v, err := schema.ParseServerVersion(*server)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail migrate: %v\n", err)
			return 2
		}
		opts.Server = v
		plan, err := schema.Render(opts)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail migrate: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, plan.Script(opts.Database, true))
		return 0
	}
	conn, err := chsink.Open(ctx, connConfig(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail migrate: %v\n", err)
		return 1
	}
	defer conn.Close()
	res, err := schema.Migrate(ctx, conn, opts)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail migrate: %v\n", err)
		return 1
	}
	if len(res.Applied) == 0 {
		fmt.Fprintf(stdout, "database %s is up to date at version %d (server %s)\n", opts.Database, res.Before, res.Server)
	} else {
		fmt.Fprintf(stdout, "database %s migrated from version %d to %d (server %s)\n", opts.Database, res.Before, res.Applied[len(res.Applied)-1], res.Server)
	}
	return 0
}

func schemaOptions(cfg config.Config) schema.Options {
	r := cfg.Sink.Retention
	return schema.Options{Database: cfg.ClickHouse.Database, Retention: schema.Retention{
		Sessions: r.Sessions, Events: r.Events, Alerts: r.Alerts, DeadLetter: r.DeadLetter, Rollup: r.Rollup}}
}

func connConfig(cfg config.Config) chsink.ConnConfig {
	c := chsink.ConnConfig{Addrs: cfg.ClickHouse.Addrs, Username: cfg.ClickHouse.Username,
		Password: cfg.ClickHouse.Password, DialTimeout: cfg.ClickHouse.DialTimeout, Compression: cfg.ClickHouse.Compression}
	if t := cfg.ClickHouse.TLS; t.Enabled {
		c.TLS = &chsink.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
			ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	return c
}
