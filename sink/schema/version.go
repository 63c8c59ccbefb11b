package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// ServerVersion is a ClickHouse server version (major.minor; patch levels do not change DDL).
type ServerVersion struct {
	Major, Minor int
}

// ParseServerVersion parses "18.16.1", "26.1" or "24.3.2.23".
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("parse server version %q: want major.minor[.patch]", s)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || maj < 0 || min < 0 {
		return ServerVersion{}, fmt.Errorf("parse server version %q: major and minor must be numbers", s)
	}
	return ServerVersion{Major: maj, Minor: min}, nil
}

func (v ServerVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v >= major.minor.
func (v ServerVersion) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Features are the DDL and insert capabilities the schema adapts to. The thresholds are
// deliberately conservative (a release known to have the feature, not necessarily the first):
// a fall-back on a server that could have done better costs a little space, while a feature
// the server lacks fails the migration.
type Features struct {
	// LowCardinality is usable at all; LowCardinalityNeedsSetting means CREATE needs
	// allow_experimental_low_cardinality_type = 1 (18.x).
	LowCardinality             bool
	LowCardinalityNeedsSetting bool
	// LowCardinalityArrays: Array(LowCardinality(String)); experimental builds were buggy.
	LowCardinalityArrays bool
	DateTime64           bool // DateTime64(3, 'UTC'), else DateTime('UTC')
	IPv6                 bool // IPv6 type, else the address as text
	Codecs               bool // column CODEC(...)
	TTL                  bool // table TTL with ttl_only_drop_parts
	// DedupToken: insert_deduplication_token with non_replicated_deduplication_window.
	DedupToken bool
	// AlterIfNotExists: ALTER TABLE ... ADD COLUMN IF NOT EXISTS (18.16 rejects the syntax;
	// there the runner treats "column already exists" as done).
	AlterIfNotExists bool
}

// FeaturesFor returns what a server version supports.
func FeaturesFor(v ServerVersion) Features {
	return Features{
		LowCardinality:             v.AtLeast(18, 14),
		LowCardinalityNeedsSetting: v.AtLeast(18, 14) && !v.AtLeast(19, 1),
		LowCardinalityArrays:       v.AtLeast(19, 1),
		DateTime64:                 v.AtLeast(20, 1),
		IPv6:                       v.AtLeast(20, 1),
		Codecs:                     v.AtLeast(19, 10),
		TTL:                        v.AtLeast(20, 1),
		DedupToken:                 v.AtLeast(22, 2),
		AlterIfNotExists:           v.AtLeast(19, 10),
	}
}
