package stream

import (
	"strings"
	"testing"

	"github.com/mxtrail/mxtrail/enrich/parse"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := Defaults()
	c.Topics = Topics{Raw: "r", Sessions: "r", Events: "e"}
	c.CommitInterval = 0
	c.MaxLine = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"no kafka brokers", "empty consumer group id", "empty deadletter topic name", `raw topic "r" is also an output topic`, "commit interval", "max line 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	c = Defaults()
	c.Brokers, c.GroupID = []string{"127.0.0.1:1"}, "g"
	c.Topics = Topics{Raw: "r", Sessions: "s", Events: "e", DeadLetter: "d"}
	c.Parser = parse.Options{DefaultYear: 2021}
	if _, err := New(c); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
