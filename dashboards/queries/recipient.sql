-- purpose: One recipient (RCPT TO) across the fleet, per host and per-recipient outcome:
--   sessions, distinct senders and client addresses, first and last seen. The match ignores case.
-- param: recipient String required the recipient address, e.g. alice@customer1.example
-- param: from DateTime default=now-7d start of the window
-- param: to DateTime default=now end of the window
-- example: mxtrail query recipient --param recipient=alice@customer1.example --param from=2026-11-20
SELECT
    host,
    rcpt_result AS outcome,
    count() AS sessions,
    uniqExact(mail_from) AS senders,
    uniqExact(client_ip) AS client_ips,
    arrayStringConcat(arraySlice(groupUniqArray(mail_from), 1, 3), ' ') AS sender_sample,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM sessions FINAL
ARRAY JOIN rcpt_address AS rcpt, rcpt_outcome AS rcpt_result
WHERE lower(rcpt) = lower({recipient:String})
  AND start_time >= {from:DateTime} AND start_time <= {to:DateTime}
GROUP BY host, outcome
ORDER BY sessions DESC, host, outcome
