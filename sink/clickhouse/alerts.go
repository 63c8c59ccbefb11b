package clickhouse

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/mxtrail/mxtrail/enrich/alert"
)

// KindAlerts feeds the alerts table from the enricher's alert records (enrich/alert).
const KindAlerts Kind = KindDeadLetter + 1

// alertColumns is the alerts table's batch. Alert records are few (throttled per rule, host
// and window), so plain slices are enough.
type alertColumns struct {
	alertID                          []string
	firedAt, lastSeen, resolvedAt    []time.Time
	rule, code, severity, host, prod []string
	outcome                          []string
	value, threshold                 []float64
	summary, details                 []string
	count                            []uint64
	sessionID, example               []string
	version                          []uint64
}

var alertColumnNames = []string{"alert_id", "fired_at", "last_seen", "resolved_at", "rule", "code", "severity",
	"host", "product", "outcome", "value", "threshold", "summary", "details", "count", "session_id", "example", "version"}

func (c *alertColumns) len() int { return len(c.alertID) }

func (c *alertColumns) values() []any {
	return []any{c.alertID, c.firedAt, c.lastSeen, c.resolvedAt, c.rule, c.code, c.severity, c.host, c.prod,
		c.outcome, c.value, c.threshold, c.summary, c.details, c.count, c.sessionID, c.example, c.version}
}

func (c *alertColumns) reset() {
	clear(c.example)
	clear(c.summary)
	*c = alertColumns{alertID: c.alertID[:0], firedAt: c.firedAt[:0], lastSeen: c.lastSeen[:0],
		resolvedAt: c.resolvedAt[:0], rule: c.rule[:0], code: c.code[:0], severity: c.severity[:0],
		host: c.host[:0], prod: c.prod[:0], outcome: c.outcome[:0], value: c.value[:0], threshold: c.threshold[:0],
		summary: c.summary[:0], details: c.details[:0], count: c.count[:0], sessionID: c.sessionID[:0],
		example: c.example[:0], version: c.version[:0]}
}

// epoch stands for "not resolved": the table's contract is toUInt32(resolved_at) = 0 while open.
var epoch = time.Unix(0, 0).UTC()

// appendAlert appends r and returns its insert bytes but for the three time columns.
func (c *alertColumns) appendAlert(r *alert.Record) int {
	resolved := r.ResolvedAt
	if resolved.IsZero() {
		resolved = epoch
	}
	outcome := ""
	if r.Rule == alert.RuleAuthFailureBurst.String() {
		outcome = r.Code // the session outcome the burst counts (AUTH_FAILED)
	}
	c.alertID = append(c.alertID, r.AlertID)
	c.firedAt = append(c.firedAt, r.FiredAt)
	c.lastSeen = append(c.lastSeen, r.LastSeen)
	c.resolvedAt = append(c.resolvedAt, resolved)
	c.rule = append(c.rule, r.Rule)
	c.code = append(c.code, r.Code)
	c.severity = append(c.severity, r.Severity)
	c.host = append(c.host, r.Host)
	c.prod = append(c.prod, r.Product)
	c.outcome = append(c.outcome, outcome)
	c.value = append(c.value, r.Value)
	c.threshold = append(c.threshold, r.Threshold)
	c.summary = append(c.summary, r.Summary)
	c.details = append(c.details, "severity_raw="+r.SeverityRaw)
	c.count = append(c.count, r.Count)
	c.sessionID = append(c.sessionID, r.SessionID)
	c.example = append(c.example, r.Example)
	c.version = append(c.version, r.Version)
	return 8 + 8 + 8 + 8 + strWire(r.AlertID) + strWire(r.Rule) + strWire(r.Code) + strWire(r.Severity) +
		strWire(r.Host) + strWire(r.Product) + strWire(outcome) + strWire(r.Summary) + strWire(c.details[len(c.details)-1]) +
		strWire(r.SessionID) + strWire(r.Example)
}

// checkAlert refuses what the columns cannot hold or what would break the table's contract.
func checkAlert(r *alert.Record, modern bool) error {
	if r.AlertID == "" || r.Rule == "" {
		return fmt.Errorf("alert without alert_id or rule: %w", errRange)
	}
	if r.FiredAt.IsZero() {
		return fmt.Errorf("alert %q without fired_at: %w", r.AlertID, errRange)
	}
	if r.Version == 0 {
		return fmt.Errorf("alert %q: version 0 would lose to any other version: %w", r.AlertID, errRange)
	}
	if !modern {
		for _, t := range []time.Time{r.FiredAt, r.LastSeen, r.ResolvedAt} {
			if !t.IsZero() && (t.Unix() < 0 || t.Unix() > math.MaxUint32) {
				return fmt.Errorf("alert %q: time %s: %w", r.AlertID, t.Format(time.RFC3339), errRange)
			}
		}
	}
	if r.LastSeen.IsZero() {
		r.LastSeen = r.FiredAt
	}
	return nil
}

func (b *Batch) addAlert(m *Message) error {
	b.lex.reset(valueString(m.Value), b.maxField, nil)
	if err := decodeAlert(&b.lex, &b.alert); err != nil {
		return fmt.Errorf("decode alert record: %w", err)
	}
	if err := checkAlert(&b.alert, b.f.DateTime64); err != nil {
		return fmt.Errorf("convert alert: %w", err)
	}
	b.wire += b.alerts.appendAlert(&b.alert) + 3*b.timeW
	return nil
}

// float reads a JSON number.
func (l *lexer) float() (float64, error) {
	l.ws()
	start, j := l.i, l.i
	for j < len(l.s) {
		c := l.s[j]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			j++
			continue
		}
		break
	}
	if j == start {
		return 0, l.wrongType("number")
	}
	f, err := strconv.ParseFloat(l.s[start:j], 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, l.errorf("number %s: %w", l.s[start:j], errWrongType)
	}
	l.i = j
	return f, nil
}

func (l *lexer) uint() (uint64, error) {
	n, err := l.int()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, l.errorf("negative %d: %w", n, errWrongType)
	}
	return uint64(n), nil
}

// decodeAlert reads what alert.Record.AppendJSON writes (any equivalent JSON; unknown keys
// skipped).
func decodeAlert(l *lexer, r *alert.Record) error {
	*r = alert.Record{}
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		k, more, err := l.key(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch k {
		case "alert_id":
			r.AlertID, err = l.str()
		case "rule":
			r.Rule, err = l.str()
		case "code":
			r.Code, err = l.str()
		case "severity":
			r.Severity, err = l.str()
		case "severity_raw":
			r.SeverityRaw, err = l.str()
		case "host":
			r.Host, err = l.str()
		case "product":
			r.Product, err = l.str()
		case "fired_at":
			r.FiredAt, err = l.time()
		case "last_seen":
			r.LastSeen, err = l.time()
		case "resolved_at":
			if !l.null() {
				r.ResolvedAt, err = l.time()
			}
		case "count":
			r.Count, err = l.uint()
		case "value":
			r.Value, err = l.float()
		case "threshold":
			r.Threshold, err = l.float()
		case "session_id":
			r.SessionID, err = l.str()
		case "example":
			r.Example, err = l.str()
		case "summary":
			r.Summary, err = l.str()
		case "version":
			r.Version, err = l.uint()
		default:
			err = l.skip(1)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
	}
	if err := l.end(); err != nil {
		return err
	}
	if r.ResolvedAt.Equal(epoch) || r.ResolvedAt.Year() == 1 {
		r.ResolvedAt = time.Time{}
	}
	return nil
}
