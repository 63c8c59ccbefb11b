// Package smoke holds the integration smoke tests that prove the local stack from Go: the real
// Apache Kafka broker through kafka-go, ClickHouse 18.16 through clickhouse-go, and the private
// servers fault tests start for themselves.
package smoke
