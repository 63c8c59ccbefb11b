package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/internal/config"
)

// sinkTopics returns the topics the sink's consumer group reads. kafka-go's group leader
// assigns no partition at all, of any topic, while one of the group's topics does not exist
// (kafka-go issue #1090), and alert records are rare: the alerts topic often does not exist
// yet when the sink starts (the enricher creates it by producing the first alert, where the
// brokers auto-create topics; never where they do not). So a missing alerts topic is created
// here with the brokers' default partitions and replication (what auto-creation would do);
// if that is refused, it is left out with a warning, so sessions, events and dead letters
// still flow.
func sinkTopics(ctx context.Context, k config.Kafka, log *slog.Logger) []string {
	t := k.Topics
	topics := []string{t.Sessions, t.Events, t.DeadLetter}
	if t.Alerts == "" {
		return topics
	}
	tr, err := kafkaTransport(k)
	if err != nil {
		log.Warn("alerts topic not checked", "topic", t.Alerts, "err", err)
		return append(topics, t.Alerts)
	}
	c := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Transport: tr, Timeout: 15 * time.Second}
	if err := ensureTopic(ctx, c, t.Alerts); err != nil {
		log.Warn("alerts topic missing and not created: alert records are not written until the sink restarts after it exists",
			"topic", t.Alerts, "err", err)
		return topics
	}
	return append(topics, t.Alerts)
}

// ensureTopic creates topic with the brokers' defaults unless it exists, and waits until its
// partitions have leaders.
func ensureTopic(ctx context.Context, c *kafka.Client, topic string) error {
	exists := func() (bool, error) {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return false, err
		}
		if len(md.Topics) != 1 {
			return false, errors.New("no metadata for the topic")
		}
		if errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			return false, nil
		}
		if md.Topics[0].Error != nil {
			return false, md.Topics[0].Error
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false, nil
			}
		}
		return len(md.Topics[0].Partitions) > 0, nil
	}
	ok, err := exists()
	if err != nil || ok {
		return err
	}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: -1, ReplicationFactor: -1}}})
	if err != nil {
		return err
	}
	if e := resp.Errors[topic]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
		return e
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ok, err := exists(); ok {
			return nil
		} else if time.Now().After(deadline) {
			return errors.Join(errors.New("partitions without a leader after 30s"), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
