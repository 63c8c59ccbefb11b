package gen

import (
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/record"
)

// asRecord is what a perfect assembler would emit for t.
func asRecord(t *Truth) record.Session {
	r := record.Session{
		Host: t.Host, Product: t.Product, SessionKey: t.SessionKey, StartTime: t.StartTime, EndTime: t.EndTime,
		Outcome: t.Outcome, Permanent: t.Permanent, Delivery: t.Delivery,
		FirstPos: record.Position{Source: "/var/log/fleet/" + t.First.File, Offset: t.First.Offset},
	}
	for _, x := range t.Recipients {
		r.Recipients = append(r.Recipients, record.Recipient{Address: x.Address, Outcome: x.Outcome, SMTPCode: x.SMTPCode})
	}
	return r
}

func TestCompare(t *testing.T) {
	fs, _ := generate(t, small(31, 2000))
	truth := readTruth(t, fs)
	recs := make([]record.Session, len(truth))
	for i := range truth {
		recs[i] = asRecord(&truth[i])
	}
	if c := Compare(truth, recs); !c.OK() || c.Agree != len(truth) {
		t.Fatalf("perfect records: %v", c)
	}

	// Find a multi-recipient session and an ICDSoft one to play with.
	multi, icd := -1, -1
	for i := range truth {
		if len(truth[i].Recipients) > 1 && truth[i].Recipients[0].Outcome != truth[i].Recipients[1].Outcome && multi < 0 {
			multi = i
		}
		if truth[i].Product == ProductICDSoft && icd < 0 {
			icd = i
		}
	}
	if multi < 0 || icd < 0 {
		t.Fatal("no partial multi-recipient or ICDSoft session in 2000")
	}
	// Recipient order does not matter; an ICDSoft record may start at its spamdyke line.
	recs[multi].Recipients[0], recs[multi].Recipients[1] = recs[multi].Recipients[1], recs[multi].Recipients[0]
	recs[icd].FirstPos = record.Position{Source: "srv.spamdyke.log", Offset: 12345}
	if c := Compare(truth, recs); !c.OK() {
		t.Fatalf("reordered recipients / other first file: %v", c)
	}

	// Three other sessions: one gets a wrong outcome, one a wrong delivery, one goes missing.
	var other []int
	for i := range truth {
		if i != multi && i != icd && truth[i].Outcome != record.DeniedOther {
			other = append(other, i)
		}
	}
	wrongOutcome, wrongDelivery, gone := other[0], other[1], other[2]
	bad := append([]record.Session(nil), recs...)
	bad[wrongOutcome].Outcome = record.DeniedOther
	bad[multi].Recipients[0].Outcome = record.TempFail
	if bad[wrongDelivery].Delivery == "" {
		bad[wrongDelivery].Delivery = record.DeliveryBounced
	} else {
		bad[wrongDelivery].Delivery = ""
	}
	bad = append(bad[:gone], bad[gone+1:]...)
	bad = append(bad, record.Session{Host: "nowhere", Product: "smtpf", SessionKey: "x"})
	c := Compare(truth, bad)
	if c.OK() {
		t.Fatal("broken records passed")
	}
	fields := map[string]bool{}
	for _, m := range c.Mismatches {
		fields[m.Field] = true
	}
	if len(c.Mismatches) != 3 || !fields["outcome"] || !fields["recipients"] || !fields["delivery"] {
		t.Errorf("mismatches: %+v", c.Mismatches)
	}
	if len(c.Missing) != 1 || c.Missing[0].First != truth[gone].First || len(c.Extra) != 1 || c.Extra[0] != len(bad)-1 {
		t.Errorf("missing %d, extra %v", len(c.Missing), c.Extra)
	}
	if !strings.Contains(c.String(), "1 missing, 1 extra, 3 disagree") {
		t.Errorf("summary: %s", c)
	}
}
