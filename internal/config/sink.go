package config

// Sink configures `mxtrail sink` (owned by the sink work).
type Sink struct{}

func defaultSink() Sink { return Sink{} }

func (s *Sink) validate(ps *Problems, path string) {}
