package config

// Ship configures `mxtrail ship` (owned by the shipper work; extend freely).
type Ship struct{}

func defaultShip() Ship { return Ship{} }

func (s *Ship) validate(ps *Problems, path string) {}
