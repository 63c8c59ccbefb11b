package config

import (
	"strings"
	"testing"
)

func TestEnrichParserValidate(t *testing.T) {
	c := Default()
	c.Enrich.Parser = Parser{
		PatternDir:  "/nonexistent/mxtrail-patterns",
		DefaultYear: 12,
		TimeZone:    "Mars/Olympus",
		Sources: []ParserSource{
			{},
			{Host: "mx1", Format: "postfix", TimeZone: "Nowhere/City", Year: 99999},
			{Path: "[", Format: "spamdyke"},
			{Host: "mx2", Path: "/var/log/*.log", Format: "icdsoft-smtp", TimeZone: "Europe/Sofia"},
		},
	}
	var got []string
	for _, p := range c.Validate() {
		if strings.HasPrefix(p.Path, "enrich.") {
			got = append(got, p.Path)
		}
	}
	want := []string{
		"enrich.parser.pattern_dir", "enrich.parser.default_year", "enrich.parser.time_zone",
		"enrich.parser.sources[0]", "enrich.parser.sources[1].format", "enrich.parser.sources[1].time_zone",
		"enrich.parser.sources[1].year", "enrich.parser.sources[2].path",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := c.Enrich.Parser.Match("mx2", "/var/log/smtp.log"); s == nil || s.Format != "icdsoft-smtp" {
		t.Fatalf("match: %+v", s)
	}
	if s := c.Enrich.Parser.Match("mx3", "/var/log/smtp.log"); s != nil {
		t.Fatalf("match for another host: %+v", s)
	}
}

func TestEnrichDefaultsValid(t *testing.T) {
	c := Default()
	for _, p := range c.Validate() {
		if strings.HasPrefix(p.Path, "enrich") {
			t.Errorf("default config problem: %s", p)
		}
	}
}
