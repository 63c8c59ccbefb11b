package gen

// Files, keys and layouts written by `mxtrail gen`
//
// Hosts are named <prefix><NN> (gw smtpf, srv ICDSoft, mx spamdyke, qm qmail, mswitch Isode,
// me MailEnable, imail IMail) and products are assigned round-robin, so the default 10 hosts
// cover every product (smtpf, ICDSoft and spamdyke twice). Files are <host>.<dialect>.log,
// the dialect being the `--format` name the parser uses:
//
//	product     dialect file(s)                                   session_key in truth.jsonl
//	smtpf       smtpf                                             the 18-char SID
//	spamdyke    spamdyke                                          spamdyke pid (decimal)
//	icdsoft     icdsoft-smtp, icdsoft-delivery, spamdyke          spamdyke pid of the joined line(s)
//	qmail       qmail (qmail-smtpd/CHKUSER, rblsmtpd, qmail-send) qmail-smtpd or rblsmtpd pid
//	isode       isode                                             "conn=N" (first token of the text)
//	mailenable  mailenable-activity, mailenable-debug             "<socket>/<remote ip>"
//	imail       imail, imail-antispam (both --format imail)       SMTPD connection id (8 hex)
//
// Layouts follow /work/shared/FORMATS.md and the real lines of corpus/real; each model file
// (spamdyke.go, qmail.go, smtpf.go, isode.go, mailenable.go, imail.go) shows its lines. Three
// layouts are not public and are SYNTHETIC choices, to be kept in step with the parser:
//
//   - Isode event log: "YYYY-MM-DD HH:MM:SS.mmm <severity> MTA_SMTP <Name> <ID> smtpserver[<pid>]: conn=<N> <text>",
//     the parser's documented default header (enrich/parse/patterns/isode.grok), with the
//     seed-000 names, ids and severities (plus Close 212 notice); pdu text is "C: <command>"
//     (ReadPDU) or "S: <reply>" (WritePDU).
//   - MailEnable debug log: "MM/DD/YY HH:MM:SS SMTP-IN <message file> <socket> <remote ip> ME-Ixxxx: <text>"
//     (space-separated, so the parser's "timestamp, anything, code" pattern reads it).
//   - IMail antispam log: "MM:DD HH:MM SMTPD(<connid>) <seed-002 message>".
//
// Other choices the session assembler should know about:
//
//   - Times are written on the host's clock (skewed by up to MaxSkew, see summary.json) and
//     truth start_time/end_time are those written times read as UTC, truncated to what the
//     dialect shows (seconds; minutes for IMail; milliseconds for Isode). ICDSoft's qmail stamp
//     in "250 ok <unix> qp <pid>" is UTC and the log is UTC+2 local time, as in seed 004.
//   - ICDSoft writes each SMTP group and each delivery group contiguously, within one second,
//     and the spamdyke lines of the same connection in that second (seed 004). Other dialects
//     interleave the lines of concurrent sessions.
//   - spamdyke DENIED_OTHER carries qmail's or chkuser's reply, underscored, as reason; its label
//     is what that reply means: "no_mailbox" -> DENIED_UNKNOWN_RECIPIENT, "virus" ->
//     DENIED_VIRUS, "spam" -> DENIED_SPAM_SCORE, a 4xx -> TEMPFAIL, else DENIED_OTHER.
//   - A DATA-time refusal (smtpf #720, MailEnable DATA row, spamdyke after DATA) gives every
//     recipient accepted at RCPT the refusal's label and code.
//   - spamdyke-only hosts show no reply codes; truth codes there are spamdyke's defaults
//     (FORMATS.md §1.3). qmail/chkuser lines show none either; truth uses chkuser's usual
//     replies (511 no mailbox, 553 relay/sender MX, 530 must auth, 571 max recipients, 451
//     DNS), rblsmtpd's is in its line (451).
//   - IMail deletes refused messages without a reply: smtp_code 0, permanent false.
//   - Delivery (DELIVERED/DEFERRED/BOUNCED) exists where a delivery log joins: ICDSoft
//     (result lines), qmail (qmail-send), IMail (SMTP- worker). It is BOUNCED if any
//     recipient failed, else DEFERRED if any was deferred.
//   - Sessions without a recipient (rblsmtpd, AUTH failures, TLS passthrough, timeouts before
//     RCPT, sender refusals at MAIL) have an empty recipients array and their own label.
//   - Garbage lines (noise starting with '~', binary bytes, a cut-off syslog timestamp) belong
//     to no session; summary.json counts them per file.
