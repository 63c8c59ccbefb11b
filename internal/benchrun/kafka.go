package benchrun

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/mxtrail/mxtrail/ingest/wire"
)

// kafkaAdmin wraps the few admin and offset requests the bench needs.
type kafkaAdmin struct {
	brokers []string
	c       *kafka.Client
	tr      *kafka.Transport
}

func newKafkaAdmin(brokers []string, tr *kafka.Transport) *kafkaAdmin {
	if tr == nil {
		tr = &kafka.Transport{ClientID: "mxtrail-bench", DialTimeout: 5 * time.Second}
	}
	return &kafkaAdmin{brokers: brokers, tr: tr, c: &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 15 * time.Second}}
}

// createTopics creates fresh topics and waits until every partition has a leader.
func (k *kafkaAdmin) createTopics(ctx context.Context, parts map[string]int) error {
	req := &kafka.CreateTopicsRequest{}
	for t, n := range parts {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: n, ReplicationFactor: 1})
	}
	resp, err := k.c.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for t, e := range resp.Errors {
		if e != nil {
			return fmt.Errorf("create topic %q: %w", t, e)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for t, n := range parts {
		for {
			md, err := k.c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{t}})
			if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == n {
				ready := true
				for _, p := range md.Topics[0].Partitions {
					ready = ready && p.Error == nil && p.Leader.Host != ""
				}
				if ready {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("topic %q: %d partitions not ready after 30s (metadata error %v)", t, n, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func (k *kafkaAdmin) deleteTopics(ctx context.Context, topics []string) error {
	resp, err := k.c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics %q: %w", topics, err)
	}
	var errs []error
	for t, e := range resp.Errors {
		if e != nil {
			errs = append(errs, fmt.Errorf("delete topic %q: %w", t, e))
		}
	}
	return errors.Join(errs...)
}

// endOffsets returns the log-end offset of every partition of topic (index = partition).
func (k *kafkaAdmin) endOffsets(ctx context.Context, topic string, parts int) ([]int64, error) {
	req := make([]kafka.OffsetRequest, parts)
	for p := range req {
		req[p] = kafka.LastOffsetOf(p)
	}
	resp, err := k.c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %q: %w", topic, err)
	}
	out := make([]int64, parts)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %q partition %d: %w", topic, po.Partition, po.Error)
		}
		if po.Partition >= 0 && po.Partition < parts {
			out[po.Partition] = po.LastOffset
		}
	}
	return out, nil
}

// committed returns the group's committed offset per partition (0 when none yet).
func (k *kafkaAdmin) committed(ctx context.Context, group, topic string, parts int) ([]int64, error) {
	ps := make([]int, parts)
	for i := range ps {
		ps[i] = i
	}
	resp, err := k.c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q on %q: %w", group, topic, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("fetch offsets of group %q on %q: %w", group, topic, resp.Error)
	}
	out := make([]int64, parts)
	for _, p := range resp.Topics[topic] {
		if p.Partition >= 0 && p.Partition < parts && p.CommittedOffset > 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// lag is the group's total lag on topic: end offsets minus committed offsets.
func (k *kafkaAdmin) lag(ctx context.Context, group, topic string, parts int) (end, lag int64, err error) {
	e, err := k.endOffsets(ctx, topic, parts)
	if err != nil {
		return 0, 0, err
	}
	c, err := k.committed(ctx, group, topic, parts)
	if err != nil {
		return 0, 0, err
	}
	for p := range e {
		end += e[p]
		if d := e[p] - c[p]; d > 0 {
			lag += d
		}
	}
	return end, lag, nil
}

// ingestTimes reads the ingest_time header of the raw records at the given offsets of each
// partition (offset 0 is always read: the first line shipped). It reads each partition from
// offset 0 up to the highest offset asked for, after the measured run.
func (k *kafkaAdmin) ingestTimes(ctx context.Context, topic string, parts int, want map[int][]int64) (map[int]map[int64]time.Time, error) {
	ends, err := k.endOffsets(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	out := map[int]map[int64]time.Time{}
	for p := 0; p < parts; p++ {
		if ends[p] == 0 {
			continue // no host hashed to this partition
		}
		offs := want[p]
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		need := map[int64]bool{0: true}
		last := int64(0)
		for _, o := range offs {
			if o < ends[p] {
				need[o] = true
				last = max(last, o)
			}
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 8 << 20,
			MaxWait: time.Second, Dialer: &kafka.Dialer{ClientID: "mxtrail-bench", Timeout: 10 * time.Second, TLS: k.tr.TLS, SASLMechanism: k.tr.SASL}})
		got := map[int64]time.Time{}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		var err error
		for {
			var m kafka.Message
			m, err = r.ReadMessage(rctx)
			if err != nil {
				err = fmt.Errorf("read %s/%d for ingest times: %w", topic, p, err)
				break
			}
			if need[m.Offset] {
				for _, h := range m.Headers {
					if h.Key == wire.HeaderIngestTime {
						t, perr := time.Parse(wire.IngestTimeLayout, string(h.Value))
						if perr != nil {
							err = fmt.Errorf("raw record %s/%d@%d: ingest_time %q: %w", topic, p, m.Offset, h.Value, perr)
						}
						got[m.Offset] = t
					}
				}
				if err != nil {
					break
				}
			}
			if m.Offset >= last {
				break
			}
		}
		cancel()
		r.Close()
		if err != nil {
			return nil, err
		}
		out[p] = got
	}
	return out, nil
}

// parseSource splits a position source "topic/partition" as the enricher writes it.
func parseSource(s string) (topic string, part int, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p < 0 {
		return "", 0, false
	}
	return s[:i], p, true
}
