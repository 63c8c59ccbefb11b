// Package session owns the pure session assembler and the outcome labels: it joins parsed
// lines (event.Event) of every product into one record.Session per SMTP session, labels each
// recipient and the session in the unified vocabulary (record.OutcomeVersion), and returns
// notable events. It does no I/O, starts no goroutine and reads no clock: Add, Expire and
// Flush work in event time. README.md documents the keys, close rules, mapping tables and
// every deviation from FORMATS.md.
package session
