package testfleet

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/mxtrail/mxtrail/enrich/record"
	chsink "github.com/mxtrail/mxtrail/sink/clickhouse"
	"github.com/mxtrail/mxtrail/sink/schema"
)

// Load migrates database db on conn and writes the fleet through the sink's own batch and
// writer (sessions, their replays and events, as JSON messages off the stream would arrive),
// then the alerts with a plain batch insert, since the alerting stage has no writer yet.
func Load(ctx context.Context, conn driver.Conn, db string, f *Fleet) error {
	res, err := schema.Migrate(ctx, conn, schema.Options{Database: db})
	if err != nil {
		return fmt.Errorf("migrate test database %q: %w", db, err)
	}
	feat := schema.FeaturesFor(res.Server)
	w := chsink.NewWriter(conn, db, feat, chsink.NewMetrics(nil), 50*time.Millisecond, time.Second)
	b := chsink.NewBatch(feat, 1<<20)
	var off int64
	add := func(kind chsink.Kind, topic string, v []byte) {
		off++
		b.Add(kind, &chsink.Message{Topic: topic, Partition: 0, Offset: off, Value: v}, T0.Add(time.Hour)) // dead letters time-stamped inside the window
	}
	// Two batches: the replays land in a later insert, as they would after a restart.
	for i := range f.Sessions {
		add(chsink.KindSessions, "mxtrail.sessions", f.Sessions[i].AppendJSON(nil))
	}
	for i := range f.Events {
		add(chsink.KindEvents, "mxtrail.events", f.Events[i].AppendJSON(nil))
	}
	for _, p := range f.Poison {
		add(chsink.KindSessions, "mxtrail.sessions", []byte(p))
	}
	if err := writeBatch(ctx, w, b, len(f.Poison)); err != nil {
		return err
	}
	b.Reset()
	for i := range f.Replays {
		add(chsink.KindSessions, "mxtrail.sessions", f.Replays[i].AppendJSON(nil))
	}
	if err := writeBatch(ctx, w, b, 0); err != nil {
		return err
	}
	q := "INSERT INTO " + db + ".alerts (alert_id, fired_at, last_seen, resolved_at, rule, code, severity, host, product, outcome, count, value, threshold, session_id, example, summary, details, version)"
	ab, err := conn.PrepareBatch(ctx, q)
	if err != nil {
		return fmt.Errorf("prepare alerts insert: %w", err)
	}
	for _, a := range f.Alerts {
		if err := ab.Append(a.ID, a.FiredAt, a.LastSeen, resolved(a.ResolvedAt), a.Rule, a.Code, a.Severity, a.Host, a.Product, a.Outcome,
			a.Count, a.Value, a.Threshold, a.SessionID, a.Example, a.Summary, a.Details, a.Version); err != nil {
			return fmt.Errorf("append alert %q: %w", a.ID, err)
		}
	}
	if err := ab.Send(); err != nil {
		return fmt.Errorf("insert alerts: %w", err)
	}
	return nil
}

func writeBatch(ctx context.Context, w *chsink.Writer, b *chsink.Batch, wantDead int) error {
	if _, _, dead := b.Rows(); dead != wantDead {
		return fmt.Errorf("generated fleet: %d records dead-lettered by the sink decoder, want %d", dead, wantDead)
	}
	if err := w.Write(ctx, b); err != nil {
		return fmt.Errorf("write generated fleet: %w", err)
	}
	return nil
}

// resolved maps an open alert to the epoch, which is what an unset DateTime holds.
func resolved(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

// ChdbScript returns the statements that create database db with the modern schema (as
// rendered for ClickHouse 26.9) and insert the fleet, replays included, into it.
func ChdbScript(db string, f *Fleet) (string, error) {
	plan, err := schema.Render(schema.Options{Database: db, Server: schema.ServerVersion{Major: 26, Minor: 9}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(plan.Script(db, true))
	writeSessions := func(ss []record.Session) {
		const chunk = 500
		for i := 0; i < len(ss); i += chunk {
			b.WriteString("INSERT INTO " + db + ".sessions (session_id, host, product, session_key, start_time, end_time, client_ip, client_ptr, helo, auth_user, tls, mail_from, rcpt_address, rcpt_outcome, rcpt_smtp_code, rcpt_reply, outcome, reason, smtp_code, smtp_reply, message_id, size, delivery, closed_by, permanent, flags, event_count, max_severity, outcome_version, first_source, first_offset, last_source, last_offset) VALUES\n")
			for j := i; j < min(i+chunk, len(ss)); j++ {
				s := &ss[j]
				if j > i {
					b.WriteString(",\n")
				}
				var addr, outc, reply []string
				var codes []string
				for _, r := range s.Recipients {
					addr = append(addr, lit(r.Address))
					outc = append(outc, lit(string(r.Outcome)))
					reply = append(reply, lit(r.Reply))
					codes = append(codes, strconv.Itoa(r.SMTPCode))
				}
				var flags []string
				for _, fl := range s.Flags {
					flags = append(flags, lit(fl))
				}
				fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d, %s, [%s], [%s], [%s], [%s], %s, %s, %d, %s, %s, %d, %s, %s, %d, [%s], %d, %s, %d, %s, %d, %s, %d)",
					lit(s.SessionID), lit(s.Host), lit(s.Product), lit(s.SessionKey), ts(s.StartTime), ts(s.EndTime),
					ip6(s.ClientIP), lit(s.ClientPTR), lit(s.HELO), lit(s.AuthUser), b2i(s.TLS), lit(s.MailFrom),
					strings.Join(addr, ","), strings.Join(outc, ","), strings.Join(codes, ","), strings.Join(reply, ","),
					lit(string(s.Outcome)), lit(s.Reason), s.SMTPCode, lit(s.SMTPReply), lit(s.MessageID), s.Size,
					lit(string(s.Delivery)), lit(string(s.ClosedBy)), b2i(s.Permanent), strings.Join(flags, ","),
					s.EventCount, lit(s.MaxSeverity), s.OutcomeVersion, lit(s.FirstPos.Source), s.FirstPos.Offset,
					lit(s.LastPos.Source), s.LastPos.Offset)
			}
			b.WriteString(";\n")
		}
	}
	writeSessions(f.Sessions)
	writeSessions(f.Replays)
	for i := 0; i < len(f.Events); i += 500 {
		b.WriteString("INSERT INTO " + db + ".events (time, host, product, dialect, code, name, severity, raw_severity, session_id, client_ip, raw, pos_source, pos_offset) VALUES\n")
		for j := i; j < min(i+500, len(f.Events)); j++ {
			e := &f.Events[j]
			if j > i {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d)", ts(e.Time), lit(e.Host), lit(e.Product),
				lit(e.Dialect), lit(e.Code), lit(e.Name), lit(e.Severity), lit(e.RawSeverity), lit(e.SessionID),
				lit(e.ClientIP), lit(e.Raw), lit(e.Pos.Source), e.Pos.Offset)
		}
		b.WriteString(";\n")
	}
	b.WriteString("INSERT INTO " + db + ".alerts (alert_id, fired_at, last_seen, resolved_at, rule, code, severity, host, product, outcome, count, value, threshold, session_id, example, summary, details, version) VALUES\n")
	for i, a := range f.Alerts {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d, %g, %g, %s, %s, %s, %s, %d)", lit(a.ID), ts(a.FiredAt), ts(a.LastSeen),
			ts(resolved(a.ResolvedAt)), lit(a.Rule), lit(a.Code), lit(a.Severity), lit(a.Host), lit(a.Product), lit(a.Outcome),
			a.Count, a.Value, a.Threshold, lit(a.SessionID), lit(a.Example), lit(a.Summary), lit(a.Details), a.Version)
	}
	b.WriteString(";\n")
	b.WriteString("INSERT INTO " + db + ".deadletter (time, reason, error, topic, partition, offset, key, raw) VALUES\n")
	for i, p := range f.Poison {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "(%s, 'decode', %s, 'mxtrail.sessions', 0, %d, '', %s)", ts(T0.Add(time.Duration(i)*time.Minute)),
			lit("decode session record: bad input"), 900000+i, lit(p))
	}
	b.WriteString(";\n")
	return b.String(), nil
}

// lit quotes s as a ClickHouse string literal (generated test data only).
func lit(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\t", `\t`)
	return "'" + r.Replace(s) + "'"
}

func ts(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05.000") + "'" }

// ip6 writes the address as the sink stores it in an IPv6 column (IPv4 mapped).
func ip6(s string) string {
	if s == "" {
		return "'::'"
	}
	a := netip.MustParseAddr(s)
	return "'" + netip.AddrFrom16(a.As16()).String() + "'"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
