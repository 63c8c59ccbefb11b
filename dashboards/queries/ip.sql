-- purpose: Everything one client address did across the fleet, per host and outcome: sessions,
--   recipients, sender domains, HELO names, first and last seen. Replays are collapsed (FINAL).
-- param: ip String required the client address as logged, e.g. 203.0.113.66 or 2001:db8::1
-- param: from DateTime default=now-7d start of the window (RFC 3339, 'YYYY-MM-DD hh:mm:ss', now-24h ...)
-- param: to DateTime default=now end of the window
-- example: mxtrail query ip --param ip=203.0.113.66 --param from=now-24h
SELECT
    host,
    product,
    outcome,
    count() AS sessions,
    sum(length(rcpt_address)) AS recipients,
    uniqExact(sender_domain) AS sender_domains,
    arrayStringConcat(arraySlice(groupUniqArray(helo), 1, 3), ' ') AS helo_sample,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM sessions FINAL
WHERE client_ip = {ip:String}
  AND start_time >= {from:DateTime} AND start_time <= {to:DateTime}
GROUP BY host, product, outcome
ORDER BY sessions DESC, host, outcome
