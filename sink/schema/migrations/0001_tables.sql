-- The sessions, events, alerts and dead-letter tables and the per-minute rollup.
-- Every statement is idempotent (IF NOT EXISTS) so concurrent or repeated runs are safe.

CREATE TABLE IF NOT EXISTS {{.DB}}.sessions (
    session_id      String,
    host            {{lc "String"}},
    product         {{lc "String"}},
    session_key     String {{codec "ZSTD(1)"}},
    start_time      {{dt}} {{codec "Delta, ZSTD(1)"}},
    end_time        {{dt}} {{codec "Delta, ZSTD(1)"}},
    client_ip       {{ip}},
    client_ptr      String {{codec "ZSTD(1)"}},
    helo            String {{codec "ZSTD(1)"}},
    auth_user       String {{codec "ZSTD(1)"}},
    tls             UInt8,
    mail_from       String {{codec "ZSTD(1)"}},
    rcpt_address    Array(String) {{codec "ZSTD(1)"}},
    rcpt_outcome    Array({{lcarr "String"}}),
    rcpt_smtp_code  Array(UInt16),
    rcpt_reply      Array(String) {{codec "ZSTD(1)"}},
    outcome         {{lc "String"}},
    reason          {{lc "String"}},
    smtp_code       UInt16,
    smtp_reply      String {{codec "ZSTD(1)"}},
    message_id      String {{codec "ZSTD(1)"}},
    size            UInt64,
    delivery        {{lc "String"}},
    closed_by       {{lc "String"}},
    permanent       UInt8,
    flags           Array({{lcarr "String"}}),
    event_count     UInt32,
    max_severity    {{lc "String"}},
    outcome_version UInt16,
    first_source    {{lc "String"}},
    first_offset    Int64,
    last_source     {{lc "String"}},
    last_offset     Int64,
    -- Grouping helpers, computed by the server from the stored columns.
    sender_domain   {{lc "String"}} MATERIALIZED lower(if(position(mail_from, '@') > 0, substring(mail_from, position(mail_from, '@') + 1), '')),
{{- if .F.IPv6}}
    client_net      IPv6 MATERIALIZED IPv6CIDRToRange(client_ip, if(startsWith(IPv6NumToString(client_ip), '::ffff:'), 120, 48)).1
{{- else}}
    client_net      String MATERIALIZED if(client_ip = '', '', if(position(client_ip, ':') > 0, cutIPv6(IPv6StringToNum(client_ip), 10, 0), IPv4NumToString(bitAnd(IPv4StringToNum(client_ip), toUInt32(4294967040)))))
{{- end}}
)
ENGINE = ReplacingMergeTree(outcome_version)
PARTITION BY toDate(start_time)
ORDER BY (host, product, start_time, session_id)
{{ttl "sessions" "start_time"}}
{{settings}};

CREATE TABLE IF NOT EXISTS {{.DB}}.events (
    time            {{dt}} {{codec "Delta, ZSTD(1)"}},
    host            {{lc "String"}},
    product         {{lc "String"}},
    dialect         {{lc "String"}},
    code            {{lc "String"}},
    name            {{lc "String"}},
    severity        {{lc "String"}},
    raw_severity    {{lc "String"}},
    session_id      String,
    client_ip       String,
    raw             String {{codec "ZSTD(3)"}},
    pos_source      {{lc "String"}},
    pos_offset      Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(time)
ORDER BY (host, product, time, pos_source, pos_offset)
{{ttl "events" "time"}}
{{settings}};

CREATE TABLE IF NOT EXISTS {{.DB}}.alerts (
    alert_id        String,
    fired_at        {{dt}},
    resolved_at     {{dt}},
    rule            {{lc "String"}},
    severity        {{lc "String"}},
    host            {{lc "String"}},
    product         {{lc "String"}},
    outcome         {{lc "String"}},
    value           Float64,
    threshold       Float64,
    summary         String {{codec "ZSTD(1)"}},
    details         String {{codec "ZSTD(3)"}},
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(fired_at)
ORDER BY (rule, host, fired_at, alert_id)
{{ttl "alerts" "fired_at"}}
{{settings}};

CREATE TABLE IF NOT EXISTS {{.DB}}.deadletter (
    time            {{dt}},
    reason          {{lc "String"}},
    error           String {{codec "ZSTD(1)"}},
    topic           {{lc "String"}},
    partition       Int32,
    offset          Int64,
    key             String,
    raw             String {{codec "ZSTD(3)"}}
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(time)
ORDER BY (topic, partition, offset)
{{ttl "deadletter" "time"}}
{{settings}};

CREATE TABLE IF NOT EXISTS {{.DB}}.sessions_per_minute (
    minute          DateTime('UTC'),
    host            {{lc "String"}},
    product         {{lc "String"}},
    outcome         {{lc "String"}},
    sessions        AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (host, product, outcome, minute)
{{ttl "rollup" "minute"}}
{{settings}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.sessions_per_minute_mv TO {{.DB}}.sessions_per_minute AS
SELECT
    toStartOfMinute(start_time) AS minute,
    host,
    product,
    outcome,
    uniqExactState(session_id) AS sessions
FROM {{.DB}}.sessions
GROUP BY minute, host, product, outcome;
