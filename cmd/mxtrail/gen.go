package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/enrich/gen"
)

func init() {
	register("gen", "generate a realistic fleet of logs with ground truth", runGen)
}

// runGen is `mxtrail gen`: flags to gen.Options, one run, counts to stderr.
func runGen(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	o := gen.Defaults()
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed; the same seed and flags give byte-identical output")
	fs.IntVar(&o.Hosts, "hosts", o.Hosts, "number of hosts (products assigned round-robin: "+strings.Join(gen.Products(), ", ")+")")
	fs.IntVar(&o.Sessions, "sessions", 0, "total sessions over the fleet (overrides -lines)")
	fs.IntVar(&o.Lines, "lines", o.Lines, "approximate total log lines over the fleet")
	start := fs.String("start", o.Start.Format(time.RFC3339), "wall-clock time of the first session (RFC 3339)")
	fs.Float64Var(&o.Concurrency, "concurrency", o.Concurrency, "mean number of concurrently open sessions per host")
	fs.Float64Var(&o.GarbageRate, "garbage", o.GarbageRate, "probability of a garbage line before each log line (0..0.5)")
	fs.Float64Var(&o.Reorder, "reorder", o.Reorder, "probability that a line is written after the next line of its file (late lines, 0..0.5)")
	fs.DurationVar(&o.MaxSkew, "skew", o.MaxSkew, "maximum clock skew of a host, either way")
	products := fs.String("products", "", "comma-separated products to simulate (default: all)")
	fs.StringVar(&o.OutDir, "out", "", "output directory (required: a default run writes ~150 MB)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail gen [flags]")
		fmt.Fprintln(stderr, "writes <host>.<dialect>.log per host and dialect, "+gen.TruthFile+" and "+gen.SummaryFile)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mxtrail gen: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.OutDir == "" {
		fmt.Fprintln(stderr, "mxtrail gen: -out DIR is required")
		fs.Usage()
		return 2
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail gen: -start %q: %v\n", *start, err)
		return 2
	}
	o.Start = t
	if *products != "" {
		o.ProductList = strings.Split(*products, ",")
	}
	began := time.Now()
	sum, err := gen.Generate(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail gen: %v\n", err)
		return 1
	}
	took := time.Since(began)
	fmt.Fprintf(stderr, "mxtrail gen: %d hosts, %d files, %d sessions, %d lines (%d garbage), %d bytes in %v (%.0f lines/s) -> %s\n",
		len(sum.Hosts), len(sum.Files), sum.Total.Sessions, sum.Total.Lines, sum.Total.Garbage, sum.Total.Bytes,
		took.Round(time.Millisecond), float64(sum.Total.Lines)/took.Seconds(), o.OutDir)
	_ = stdout
	return 0
}
