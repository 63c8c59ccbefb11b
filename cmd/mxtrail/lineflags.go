package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mxtrail/mxtrail/enrich/event"
)

// lineFlags checks the --format, --tz and --year flags that mxtrail parse and mxtrail sessions
// share, returning the dialect and the time zone.
func lineFlags(format, tz string, year int) (event.Dialect, *time.Location, error) {
	d, ok := event.ParseDialect(format)
	if !ok {
		return 0, nil, fmt.Errorf("unknown --format %q (want one of %s)", format, strings.Join(event.DialectNames(), ", "))
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return 0, nil, fmt.Errorf("--tz %q: %w", tz, err)
	}
	if year != 0 && (year < 1 || year > 9999) {
		return 0, nil, fmt.Errorf("--year %d out of range", year)
	}
	return d, loc, nil
}
