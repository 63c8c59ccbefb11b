package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mxtrail/mxtrail/internal/config"
)

func init() {
	register("config check", "validate a config file and print every problem", configCheck)
}

// configCheck prints every problem of FILE at once, each with its YAML path, and exits 1 when
// there is any. Environment overrides (MXTRAIL_*) are applied first, as the services do.
func configCheck(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: mxtrail config check FILE")
		return 2
	}
	_, err := config.Load(args[0])
	var ps config.Problems
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "%s: ok\n", args[0])
		return 0
	case errors.As(err, &ps):
		for _, p := range ps {
			fmt.Fprintf(stderr, "%s: %s\n", args[0], p)
		}
		fmt.Fprintf(stderr, "%s: %d problem(s)\n", args[0], len(ps))
		return 1
	default:
		fmt.Fprintf(stderr, "%s: %v\n", args[0], err)
		return 1
	}
}
