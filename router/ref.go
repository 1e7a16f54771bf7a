package router

import (
	"strconv"
	"strings"

	"github.com/mlgate/mlgate/registry"
)

// ModelRef names a model version as a variant does: "name" (the latest
// version), "name@alias" or "name/version". At most one of Alias and Version
// is set.
type ModelRef struct {
	Name    string
	Alias   string
	Version int
}

// ParseRef parses a model reference. It checks the syntax only, with the
// registry's name rules; whether the model exists is the resolver's business
// (see Policy.Check). Errors match ErrInvalid.
func ParseRef(s string) (ModelRef, error) {
	name, rest, sep := s, "", byte(0)
	if i := strings.IndexAny(s, "@/"); i >= 0 {
		name, rest, sep = s[:i], s[i+1:], s[i]
	}
	if err := registry.CheckModelName(name); err != nil {
		return ModelRef{}, invalid("model reference %q: %v", s, err)
	}
	ref := ModelRef{Name: name}
	switch sep {
	case '@':
		if err := registry.CheckAlias(rest); err != nil {
			return ModelRef{}, invalid("model reference %q: %v", s, err)
		}
		ref.Alias = rest
	case '/':
		v, err := registry.ParseVersion(rest)
		if err != nil {
			return ModelRef{}, invalid("model reference %q: %v", s, err)
		}
		ref.Version = v
	}
	return ref, nil
}

// String returns the reference as ParseRef reads it.
func (r ModelRef) String() string {
	switch {
	case r.Alias != "":
		return r.Name + "@" + r.Alias
	case r.Version > 0:
		return r.Name + "/" + strconv.Itoa(r.Version)
	}
	return r.Name
}
