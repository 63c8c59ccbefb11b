// Package embedkafka runs the embedded Kafka-protocol broker (franz-go's kfake) that
// `mxtrail run` uses on a fresh machine and fast unit tests use instead of a real broker.
// It persists to a data directory, so a restart keeps topics, records and committed offsets.
// It is not a substitute for the real-broker integration tests.
package embedkafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configures the embedded broker.
type Options struct {
	// DataDir persists the log and group state; empty keeps everything in memory.
	DataDir string
	// Addr is the host:port to listen on; port 0 (or empty) picks a free port on 127.0.0.1.
	Addr string
	// Partitions is the default partition count of auto-created topics (default 6).
	Partitions int
	// Topics are created at start with Partitions partitions.
	Topics []string
}

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

// Start starts a single-broker embedded cluster.
func Start(o Options) (*Broker, error) {
	if o.Partitions <= 0 {
		o.Partitions = 6
	}
	host, port := "127.0.0.1", 0
	if o.Addr != "" {
		h, p, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return nil, fmt.Errorf("embedded broker address %q: %w", o.Addr, err)
		}
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("embedded broker port %q: %w", p, err)
		}
		if h != "" {
			host = h
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.Partitions),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(o.Partitions), o.Topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s:%d (data dir %q): %w", host, port, o.DataDir, err)
	}
	return &Broker{c: c}, nil
}

// Addrs returns the broker's listen addresses.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Close shuts the broker down, flushing its data directory.
func (b *Broker) Close() { b.c.Close() }
