package query

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats are the output formats Write knows.
var Formats = []string{"table", "json", "csv"}

// Write prints r in format: "table" (aligned columns for a terminal; control characters in
// values are escaped so one row stays one line), "json" (one object per row, typed values,
// one per line) or "csv" (a header row, then RFC 4180 rows).
func (r *Result) Write(w io.Writer, format string) error {
	switch format {
	case "table":
		return r.writeTable(w)
	case "json":
		return r.writeJSON(w)
	case "csv":
		return r.writeCSV(w)
	}
	return fmt.Errorf("output format %q: want one of %s", format, strings.Join(Formats, ", "))
}

var cellEscaper = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`)

func (r *Result) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.Columns, "\t"))
	seps := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		seps[i] = strings.Repeat("-", len(c))
	}
	fmt.Fprintln(tw, strings.Join(seps, "\t"))
	cells := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, v := range row {
			cells[i] = cellEscaper.Replace(Text(v))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	_, err := fmt.Fprintf(w, "(%d rows)\n", len(r.Rows))
	return err
}

func (r *Result) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, row := range r.Rows {
		obj := make(map[string]any, len(row))
		for i, v := range row {
			switch x := v.(type) {
			case time.Time:
				obj[r.Columns[i]] = x.UTC().Format(time.RFC3339Nano)
			case net.IP:
				obj[r.Columns[i]] = Text(x)
			default:
				obj[r.Columns[i]] = v
			}
		}
		if err := enc.Encode(obj); err != nil {
			return fmt.Errorf("write json row: %w", err)
		}
	}
	return nil
}

func (r *Result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	cells := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, v := range row {
			cells[i] = Text(v)
		}
		if err := cw.Write(cells); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	return cw.Error()
}
