package config

// Enrich configures `mxtrail enrich` and the parser (owned by the parser/enricher work).
type Enrich struct{}

func defaultEnrich() Enrich { return Enrich{} }

func (e *Enrich) validate(ps *Problems, path string) {}
