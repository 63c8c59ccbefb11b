// Package sink is the home of the ClickHouse side of mxtrail: schema/ (embedded, versioned,
// server-version-aware DDL) and clickhouse/ (batching writer, retries, idempotent inserts).
package sink
