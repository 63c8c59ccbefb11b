-- Alert records from the enricher's alert catalogue (enrich/alert): an alert is opened per
-- (rule, host, throttle window) and re-written with a higher version as repeats arrive, so the
-- row carries its first and last sighting, how many lines matched, the catalogue code and one
-- example line with its session. Open = toUInt32(resolved_at) = 0; read the latest version per
-- alert_id with FINAL or argMax(col, version).
--
-- One ALTER per column: 18.x lacks ADD COLUMN IF NOT EXISTS, so there the runner treats
-- "column already exists" (code 44) as done, which keeps a repeated or concurrent run safe.
-- Rows written before this migration read last_seen = fired_at and count = 1 (they stood for
-- one firing).
ALTER TABLE {{.DB}}.alerts {{addcol}} code {{lc "String"}} AFTER rule;

ALTER TABLE {{.DB}}.alerts {{addcol}} last_seen {{dt}} DEFAULT fired_at AFTER fired_at;

ALTER TABLE {{.DB}}.alerts {{addcol}} count UInt64 DEFAULT 1;

ALTER TABLE {{.DB}}.alerts {{addcol}} session_id String;

ALTER TABLE {{.DB}}.alerts {{addcol}} example String {{codec "ZSTD(3)"}};
