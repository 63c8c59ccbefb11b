// Package ingest is the shipper: it reads raw log lines from files (tail/), syslog (syslog/)
// and stdin, and produces them unchanged into Kafka (produce/), persisting file positions
// (checkpoint/) only after Kafka acknowledged every line before them. wire/ documents the
// record the enricher reads from the raw topic.
package ingest
