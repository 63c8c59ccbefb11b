package wire

import "fmt"

func errBadHeader(h Header, err error) error {
	return fmt.Errorf("raw record header %s=%q: %w", h.Key, h.Value, err)
}
