package onnx

import (
	"context"

	"github.com/mlgate/mlgate/registry"
)

// Inspector checks uploads for the registry: the file must load, and its test
// inference must succeed.
type Inspector struct {
	Options Options
}

var _ registry.Inspector = Inspector{}

// Inspect implements registry.Inspector.
func (i Inspector) Inspect(ctx context.Context, path string) (registry.Signature, error) {
	s, err := Load(path, i.Options)
	if err != nil {
		return registry.Signature{}, err
	}
	defer s.Close()
	if err := s.Warm(); err != nil {
		return registry.Signature{}, registry.Invalid("model loads but cannot run: %v", err)
	}
	return s.Signature(), nil
}
