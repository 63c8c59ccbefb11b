-- purpose: Client addresses refused on many hosts of the fleet, with the hosts that refused
--   each, refused sessions, the most frequent refusal, a few of the hosts, first and last
--   refusal. This is the ip_denied_many_hosts alert of the README catalogue, a query and not a
--   Prometheus rule because the address would be an unbounded label. "Refused" is every
--   DENIED_* label plus AUTH_FAILED and TEMPFAIL, as in top-offenders.
-- param: from DateTime default=now-1h start of the window
-- param: to DateTime default=now end of the window
-- param: min_hosts UInt32 default=5 list an address once this many distinct hosts refused it
-- example: mxtrail query ip-denied-many-hosts --param from=now-1h --param min_hosts=5
SELECT
    replaceRegexpOne(toString(client_ip), '^::ffff:', '') AS client,
    uniqExact(host) AS hosts,
    count() AS refused,
    topK(1)(outcome)[1] AS top_outcome,
    arrayStringConcat(arraySlice(arraySort(groupUniqArray(host)), 1, 5), ' ') AS hosts_sample,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM sessions FINAL
WHERE start_time >= {from:DateTime} AND start_time <= {to:DateTime}
  AND (outcome LIKE 'DENIED%' OR outcome IN ('AUTH_FAILED', 'TEMPFAIL'))
GROUP BY client
HAVING hosts >= {min_hosts:UInt32}
ORDER BY hosts DESC, refused DESC, client
LIMIT 100
