package produce

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
)

// smallZstd is kafka-go's zstd codec with a 1 MiB window and low-memory encoders. kafka-go
// compresses one record batch per call, and a batch never exceeds the producer request limit
// (max_message_bytes, 1 MiB by default), so the default 8 MiB window only costs memory: each
// pooled encoder kept ~16 MiB of history, one per partition compressed concurrently, which
// alone broke the shipper's 64 MiB RSS budget. Output is ordinary zstd; readers are unchanged.
type smallZstd struct {
	orig   compress.Codec
	window int
	pool   sync.Pool
}

var installZstd sync.Once

// useSmallZstd replaces the process-wide zstd codec of kafka-go (its codec table is global).
func useSmallZstd(window int) {
	installZstd.Do(func() {
		w := 1 << 20
		for w < window && w < zstd.MaxWindowSize {
			w <<= 1
		}
		compress.Codecs[compress.Zstd] = &smallZstd{orig: compress.Codecs[compress.Zstd], window: w}
	})
}

func (c *smallZstd) Code() int8                          { return c.orig.Code() }
func (c *smallZstd) Name() string                        { return c.orig.Name() }
func (c *smallZstd) NewReader(r io.Reader) io.ReadCloser { return c.orig.NewReader(r) }

func (c *smallZstd) NewWriter(w io.Writer) io.WriteCloser {
	enc, _ := c.pool.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true),
			zstd.WithWindowSize(c.window),
			zstd.WithLowerEncoderMem(true),
		)
		if err != nil {
			return &zstdWriter{err: err}
		}
	} else {
		enc.Reset(w)
	}
	return &zstdWriter{c: c, enc: enc}
}

type zstdWriter struct {
	c   *smallZstd
	enc *zstd.Encoder
	err error
}

func (w *zstdWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.enc == nil {
		return 0, io.ErrClosedPipe
	}
	return w.enc.Write(p)
}

func (w *zstdWriter) Close() error {
	if w.enc == nil {
		return w.err
	}
	err := w.enc.Close()
	w.enc.Reset(io.Discard) // do not retain the request buffer
	w.c.pool.Put(w.enc)
	w.enc = nil
	return err
}
