// Package dashboards owns the Grafana dashboards (grafana/*.json, with provisioning files) and
// the saved investigation queries (queries/*.sql) that mxtrail ships, embedded so that
// `mxtrail query` and the tests read exactly the files users import.
package dashboards

import "embed"

// Queries holds queries/*.sql: one saved query per file, each with a header comment.
//
//go:embed queries/*.sql
var Queries embed.FS

// Grafana holds grafana/*.json: one dashboard per file.
//
//go:embed grafana/*.json
var Grafana embed.FS
