-- purpose: One envelope sender (MAIL FROM) across the fleet, per host and outcome: sessions,
--   recipients, distinct client addresses, first and last seen. The match ignores case.
-- param: sender String required the sender address, e.g. promo@bulk-offers.example
-- param: from DateTime default=now-7d start of the window
-- param: to DateTime default=now end of the window
-- example: mxtrail query sender --param sender=promo@bulk-offers.example --format csv
SELECT
    host,
    outcome,
    count() AS sessions,
    sum(length(rcpt_address)) AS recipients,
    uniqExact(client_ip) AS client_ips,
    arrayStringConcat(arraySlice(groupUniqArray(replaceRegexpOne(toString(client_ip), '^::ffff:', '')), 1, 5), ' ') AS client_sample,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM sessions FINAL
WHERE lower(mail_from) = lower({sender:String})
  AND start_time >= {from:DateTime} AND start_time <= {to:DateTime}
GROUP BY host, outcome
ORDER BY sessions DESC, host, outcome
