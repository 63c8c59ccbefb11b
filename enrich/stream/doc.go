// Package stream puts the parser and the session assembler on Kafka: it consumes mxtrail.raw
// with a consumer group and explicit commits, produces session records, notable events and
// dead letters, and commits per partition only what is safe to skip after a crash: the lowest
// of the first offset not fully acknowledged downstream and the first offset of any session
// still open.
package stream
