package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/config"
	"github.com/mxtrail/mxtrail/internal/testenv"
)

// TestSinkTopicsCreatesAlertsIntegration: the alerts topic does not exist yet when the sink
// starts (no alert produced so far); left in the group's topics, kafka-go would assign the
// sink nothing at all. sinkTopics creates it with the brokers' defaults and keeps all four;
// a second start finds it and changes nothing.
func TestSinkTopicsCreatesAlertsIntegration(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx := context.Background()
	k := config.Default().Kafka
	k.Brokers = brokers
	sfx := fmt.Sprintf("sinktopics-%d", rand.Uint32())
	k.Topics.Sessions, k.Topics.Events, k.Topics.DeadLetter, k.Topics.Alerts = "s-"+sfx, "e-"+sfx, "d-"+sfx, "a-"+sfx
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	t.Cleanup(func() {
		c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{k.Topics.Alerts}})
	})
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.Topics.Alerts}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error == nil {
		t.Fatalf("the alerts topic exists before the test: %+v %v", md, err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for run := 0; run < 2; run++ {
		got := sinkTopics(ctx, k, log)
		want := []string{k.Topics.Sessions, k.Topics.Events, k.Topics.DeadLetter, k.Topics.Alerts}
		if !slices.Equal(got, want) {
			t.Fatalf("run %d: topics %v, want %v", run, got, want)
		}
		fresh := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second, Transport: &kafka.Transport{}} // no cached metadata
		md, err := fresh.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.Topics.Alerts}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
			t.Fatalf("run %d: alerts topic not usable: %+v %v", run, md, err)
		}
	}
	// a topic that cannot be created (invalid name) is left out, the others stay
	k.Topics.Alerts = "bad name " + sfx
	if got := sinkTopics(ctx, k, log); !slices.Equal(got, []string{k.Topics.Sessions, k.Topics.Events, k.Topics.DeadLetter}) {
		t.Fatalf("uncreatable alerts topic: topics %v", got)
	}
}
