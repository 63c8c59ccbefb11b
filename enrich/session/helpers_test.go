package session

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/record"
)

func decodeAll(t *testing.T, b []byte) []record.Session {
	t.Helper()
	var rs []record.Session
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var r record.Session
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		rs = append(rs, r)
	}
	return rs
}
