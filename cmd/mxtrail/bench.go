package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mxtrail/mxtrail/internal/benchrun"
	"github.com/mxtrail/mxtrail/internal/config"
)

func init() {
	register("bench", "measure the pipeline end to end", runBench)
}

// runBench is `mxtrail bench`: flags and config to benchrun.Options, one run, the table on
// stdout, the JSON and Markdown under --results, the README block with --update-readme.
func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	o := benchrun.Defaults()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (brokers, ClickHouse, stage tuning)")
	fs.IntVar(&o.Lines, "lines", o.Lines, "generated log lines pushed through the pipeline")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "generator seed")
	fs.IntVar(&o.Hosts, "hosts", o.Hosts, "generated hosts")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions of the run's raw topic; 0: the fewest (from 12) that give each generated host its own")
	fs.IntVar(&o.GrokSample, "grok-sample", o.GrokSample, "lines timed through the default-pattern grok baseline")
	stateDir := os.Getenv("MXTRAIL_STATE_DIR")
	if stateDir == "" {
		stateDir = ".cache"
	}
	fs.StringVar(&o.DataDir, "data", filepath.Join(stateDir, "bench"), "where generated fleets are cached (reused for the same seed and size)")
	fs.StringVar(&o.WorkDir, "work", "", "per-run directory parent (configs, stage logs); default a temporary directory")
	fs.StringVar(&o.ResultsDir, "results", filepath.Join("bench", "results"), "where <date>-<commit>.json and latest.md are written; empty: not written")
	updateReadme := fs.Bool("update-readme", false, "rewrite the bench block of --readme with the new table")
	fs.StringVar(&o.Readme, "readme", "README.md", "README with the <!-- bench:begin --> ... <!-- bench:end --> block")
	fs.BoolVar(&o.Keep, "keep", false, "keep the run's topics, database and directory (to inspect the stages' logs)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on the pipeline run")
	fs.DurationVar(&o.Quiet, "quiet", o.Quiet, "stop waiting for missing sessions after this long without a new row")
	fs.DurationVar(&o.IdleAdvance, "idle-advance", o.IdleAdvance, "enricher idle advance on its 200x idle clock (10m = 3 s quiet closes the last sessions)")
	fs.DurationVar(&o.Background, "background", o.Background, "window measuring the servers' CPU before the run, subtracted as others' load (0: none)")
	fs.StringVar(&o.ProfileDir, "profile", "", "directory where each stage writes a CPU profile of its run (<stage>.cpu.prof), for performance work")
	fs.DurationVar(&o.Poll, "poll", o.Poll, "poll interval of ClickHouse and Kafka (the latency's resolution)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mxtrail bench [--lines N] [--config FILE] [--update-readme] [flags]")
		fmt.Fprintln(stderr, "Generates N lines with ground truth and pushes them through mxtrail ship, enrich and sink,")
		fmt.Fprintln(stderr, "each its own process, on the real Kafka broker and ClickHouse of the config (make up starts")
		fmt.Fprintln(stderr, "the local ones); prints lines/s end to end, CPU and peak RSS per stage, the servers' CPU,")
		fmt.Fprintln(stderr, "latency, correctness and two baselines, and writes them under --results. Exits 1 when the")
		fmt.Fprintln(stderr, "sessions in ClickHouse do not match the truth. Method: bench/README.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mxtrail bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail bench: %v\n", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail bench: cannot find the mxtrail binary to run the stages: %v\n", err)
		return 1
	}
	tr, err := kafkaTransport(cfg.Kafka)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail bench: %v\n", err)
		return 2
	}
	o.Exe, o.Config, o.ClickHouse, o.Transport = exe, cfg, connConfig(cfg), tr
	o.StateDir, o.RepoDir, o.Progress = stateDir, ".", stderr
	if !*updateReadme {
		o.Readme = ""
	} else if o.ResultsDir == "" {
		fmt.Fprintln(stderr, "mxtrail bench: --update-readme needs --results (the table is written there first)")
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "mxtrail bench: %v\n", err)
		return 2
	}
	res, err := benchrun.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "mxtrail bench: %v\n", err)
		return 1
	}
	benchrun.Text(stdout, res)
	if o.ResultsDir != "" {
		jp, mp, err := benchrun.Write(o.ResultsDir, res)
		if err != nil {
			fmt.Fprintf(stderr, "mxtrail bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "mxtrail bench: wrote %s and %s\n", jp, mp)
		if o.Readme != "" {
			if err := benchrun.UpdateReadme(o.Readme, benchrun.Markdown(res)); err != nil {
				fmt.Fprintf(stderr, "mxtrail bench: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "mxtrail bench: updated the bench block of %s\n", o.Readme)
		}
	}
	if !res.Correctness.OK {
		fmt.Fprintln(stderr, "mxtrail bench: the sessions in ClickHouse do not match the ground truth (see correctness)")
		return 1
	}
	return 0
}
