-- purpose: One host's outcome mix from the per-minute rollup (cheap over long windows): sessions
--   per product and outcome and each outcome's share of the host's sessions. Replays cannot
--   inflate it (the rollup counts distinct session ids).
-- param: host String required the host name as shipped, e.g. mx1.fleet.example
-- param: from DateTime default=now-24h start of the window (rounded down to the minute)
-- param: to DateTime default=now end of the window
-- example: mxtrail query host-summary --param host=mx1.fleet.example --param from=now-7d
SELECT
    product,
    outcome,
    uniqExactMerge(sessions) AS sessions,
    round(sessions / (
        SELECT uniqExactMerge(sessions)
        FROM sessions_per_minute
        WHERE host = {host:String} AND minute >= toStartOfMinute({from:DateTime}) AND minute <= {to:DateTime}
    ), 4) AS share
FROM sessions_per_minute
WHERE host = {host:String}
  AND minute >= toStartOfMinute({from:DateTime}) AND minute <= {to:DateTime}
GROUP BY product, outcome
ORDER BY sessions DESC, product, outcome
