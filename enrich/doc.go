// Package enrich is the home of the enricher: record/ (the session and event records and the
// outcome vocabulary), the grok parser, the pure session assembler, and the Kafka stream loop.
package enrich
