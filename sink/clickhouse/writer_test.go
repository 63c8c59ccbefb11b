package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

func TestRetryable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&proto.Exception{Code: 252, Message: "Too many parts (300)"}, true},
		{fmt.Errorf("send: %w", &proto.Exception{Code: 209, Message: "Timeout"}), true},
		{&proto.Exception{Code: 60, Message: "Table mx.sessions doesn't exist"}, false},
		{&proto.Exception{Code: 53, Message: "Type mismatch"}, false},
		{fmt.Errorf("prepare: %w", syscall.ECONNREFUSED), true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{&net.OpError{Op: "dial", Err: errors.New("no route")}, true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{errors.New("clickhouse [Append]: converting string to IPv6 is unsupported"), false},
		{context.Canceled, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
