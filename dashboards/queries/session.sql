-- purpose: One session end to end: its record (outcome, client, sender, recipients, reply, and
--   the source file and byte range its lines came from), then every notable raw line the
--   events table holds for it, in order. Use the source range to read the full log by hand.
-- param: session_id String required the session id (32 hex digits, from any other query or panel)
-- example: mxtrail query session --param session_id=5f0c3a9e2b7d41c8a6e0f1d2c3b4a596
SELECT kind, time, host, source, offset, detail
FROM
(
    SELECT
        'session' AS kind,
        start_time AS time,
        host,
        first_source AS source,
        first_offset AS offset,
        concat(outcome, ' code=', toString(smtp_code), ' client=', replaceRegexpOne(toString(client_ip), '^::ffff:', ''),
               ' ptr=', client_ptr, ' helo=', helo, ' from=<', mail_from, '> to=', arrayStringConcat(rcpt_address, ','),
               ' reason=', reason, ' delivery=', delivery, ' lines=', first_source, ':', toString(first_offset), '-', toString(last_offset)) AS detail
    FROM sessions FINAL
    WHERE session_id = {session_id:String}
    UNION ALL
    SELECT
        'line' AS kind,
        time,
        host,
        pos_source AS source,
        pos_offset AS offset,
        raw AS detail
    FROM events FINAL
    WHERE session_id = {session_id:String}
)
ORDER BY kind = 'line', time, offset
