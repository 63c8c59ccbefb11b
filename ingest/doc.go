// Package ingest is the home of the shipper: tailing files across rotation, receiving syslog,
// checkpoints that move only after Kafka acknowledged, and the Kafka producer.
package ingest
