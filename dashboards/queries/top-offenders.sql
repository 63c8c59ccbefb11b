-- purpose: The client addresses refused most often across the fleet: refused and total
--   sessions, deny share, hosts touched, their most frequent outcome, first and last seen.
--   "Refused" is every DENIED_* label plus AUTH_FAILED and TEMPFAIL (record.Outcome.Denied).
-- param: from DateTime default=now-24h start of the window
-- param: to DateTime default=now end of the window
-- param: limit UInt32 default=20 how many addresses to list
-- example: mxtrail query top-offenders --param from=now-6h --param limit=10
SELECT
    replaceRegexpOne(toString(client_ip), '^::ffff:', '') AS client,
    countIf(outcome LIKE 'DENIED%' OR outcome IN ('AUTH_FAILED', 'TEMPFAIL')) AS refused,
    count() AS sessions,
    round(refused / sessions, 3) AS deny_share,
    uniqExact(host) AS hosts,
    topK(1)(outcome)[1] AS top_outcome,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM sessions FINAL
WHERE start_time >= {from:DateTime} AND start_time <= {to:DateTime}
GROUP BY client
ORDER BY refused DESC, sessions DESC, client
LIMIT {limit:UInt32}
