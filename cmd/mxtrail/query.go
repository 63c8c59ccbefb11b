package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/dashboards/query"
	"github.com/mxtrail/mxtrail/internal/config"
)

func init() {
	register("query", "run a saved investigation query (mxtrail query -list)", runQuery)
}

// paramFlags collects repeated --param k=v.
type paramFlags map[string]string

func (p paramFlags) String() string { return fmt.Sprint(map[string]string(p)) }

func (p paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want name=value", s)
	}
	if _, dup := p[k]; dup {
		return fmt.Errorf("parameter %q given twice", k)
	}
	p[k] = v
	return nil
}

func runQuery(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	params := paramFlags{}
	fs.Var(params, "param", "a query parameter as name=value (repeatable)")
	format := fs.String("format", "table", "output format: "+strings.Join(query.Formats, ", "))
	cfgPath := fs.String("config", "", "configuration file (default: defaults and MXTRAIL_* environment)")
	list := fs.Bool("list", false, "list the saved queries with their parameters")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on the query after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail query NAME [--param name=value]... [--format table|json|csv] [--config FILE]")
		fmt.Fprintln(stderr, "       mxtrail query -list")
		fs.PrintDefaults()
	}
	// The name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mxtrail query: unexpected arguments %q\n", fs.Args())
		return 2
	}
	all, err := query.All()
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 1
	}
	if *list || name == "" {
		w := stdout
		if name == "" && !*list {
			w = stderr
			fs.Usage()
			fmt.Fprintln(w)
		}
		for _, q := range all {
			fmt.Fprintf(w, "%s\n    %s\n", q.Name, q.Purpose)
			for _, p := range q.Params {
				req := "default " + p.Default
				if p.Required {
					req = "required"
				}
				fmt.Fprintf(w, "    --param %s=%s  (%s) %s\n", p.Name, p.Type, req, p.Doc)
			}
			fmt.Fprintf(w, "    example: %s\n", q.Example)
		}
		if name == "" && !*list {
			return 2
		}
		return 0
	}
	if !validFormat(*format) {
		fmt.Fprintf(stderr, "mxtrail query: --format %q: want one of %s\n", *format, strings.Join(query.Formats, ", "))
		return 2
	}
	q, err := query.Lookup(name)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 2
	}
	// Check the parameters before connecting: a typo should not wait for a dial timeout.
	now := time.Now()
	if _, err := q.Bind(params, now); err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := query.Open(ctx, connConfig(cfg), cfg.ClickHouse.Database)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 1
	}
	defer conn.Close()
	res, err := query.Run(ctx, conn, q, params, now)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 1
	}
	if err := res.Write(stdout, *format); err != nil {
		fmt.Fprintf(stderr, "mxtrail query: %v\n", err)
		return 1
	}
	return 0
}

func validFormat(f string) bool {
	for _, x := range query.Formats {
		if x == f {
			return true
		}
	}
	return false
}
