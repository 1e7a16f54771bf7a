package featurestore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mlgate/mlgate/internal/jsondur"
)

// Type is the type of a feature's values.
type Type string

// The feature types.
const (
	Float     Type = "float"      // 32-bit float
	Double    Type = "double"     // 64-bit float
	Int       Type = "int"        // 64-bit integer
	String    Type = "string"     // UTF-8 text
	Bool      Type = "bool"       // true or false
	FloatList Type = "float_list" // list of 32-bit floats
)

// Types lists every feature type.
var Types = []Type{Float, Double, Int, String, Bool, FloatList}

// Feature is one typed feature of a view.
type Feature struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Duration is a time.Duration written in JSON as a string such as "24h".
type Duration = jsondur.Duration

// View is a feature view: features keyed by entity columns, held in one store.
type View struct {
	Name     string    `json:"name"`
	Entities []string  `json:"entities"`
	Features []Feature `json:"features"`
	// TTL is how old a value may be before it is stale; 0 means never.
	TTL Duration `json:"ttl"`
	// Store names the online store holding the view ("embedded", "redis",
	// "cassandra", or "feast-redis" for a view that Feast writes).
	Store string `json:"store"`
	// Feast says where Feast keeps the view, for a view held in a Feast
	// online store (a store named "feast-..."); nil for any other.
	Feast *FeastSource `json:"feast,omitempty"`
	// CacheTTL is how long the gateway's cache may serve a value read from
	// the store; 0 disables the cache for the view.
	CacheTTL  Duration  `json:"cache_ttl"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// FeastSource names a feature view of a Feast project, which Feast
// materializes into its online store and mlgate only reads.
type FeastSource struct {
	// Project is the Feast project, which Feast's keys end with.
	Project string `json:"project"`
	// View is Feast's name of the feature view; the mlgate view's name when
	// empty. Feature names are Feast's, as they are.
	View string `json:"view,omitempty"`
	// EntityTypes are the Feast value types of the join keys, in the order
	// of the view's entities: "string", "int64" or "int32"; all "string"
	// when empty. Feast's keys encode the type, so it must be Feast's.
	EntityTypes []string `json:"entity_types,omitempty"`
}

// FeastEntityTypes lists the Feast value types an entity column may have.
var FeastEntityTypes = []string{"string", "int64", "int32"}

// IsFeastStore reports whether the named store is a Feast online store.
func IsFeastStore(store string) bool { return strings.HasPrefix(store, "feast-") }

// Feature returns the index of the named feature, or -1.
func (v *View) Feature(name string) int {
	return slices.IndexFunc(v.Features, func(f Feature) bool { return f.Name == name })
}

// Stale reports whether a value written at ts is stale at now.
func (v *View) Stale(ts, now time.Time) bool {
	return v.TTL > 0 && now.Sub(ts) > time.Duration(v.TTL)
}

// Limits on views. View names stay short enough to name a Cassandra table
// with a prefix (Cassandra allows 48 characters).
const (
	maxName     = 64
	maxViewName = 40
	maxFeatures = 1024
	maxEntities = 8
)

// reserved names cannot be entity columns or features: event_ts is the event
// time column of written rows, entity_key the key column of stores.
var reserved = []string{EventTSColumn, "entity_key"}

// Check reports whether the view is well formed; its errors name the field.
// Store names are checked by the caller, which knows which stores exist.
func (v *View) Check() error {
	if err := checkName("view name", v.Name); err != nil {
		return err
	}
	if len(v.Name) > maxViewName {
		return invalid("view name %q: at most %d characters", v.Name, maxViewName)
	}
	if len(v.Entities) == 0 || len(v.Entities) > maxEntities {
		return invalid("view %s: entities: want 1 to %d entity columns, got %d", v.Name, maxEntities, len(v.Entities))
	}
	if v.TTL < 0 {
		return invalid("view %s: ttl: must not be negative, got %v", v.Name, time.Duration(v.TTL))
	}
	if v.CacheTTL < 0 {
		return invalid("view %s: cache_ttl: must not be negative, got %v", v.Name, time.Duration(v.CacheTTL))
	}
	if err := v.checkFeast(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, e := range v.Entities {
		if err := checkName(fmt.Sprintf("view %s: entities[%d]", v.Name, i), e); err != nil {
			return err
		}
		if seen[e] {
			return invalid("view %s: entities: %q given twice", v.Name, e)
		}
		if slices.Contains(reserved, e) {
			return invalid("view %s: entities[%d]: %q is reserved", v.Name, i, e)
		}
		seen[e] = true
	}
	if len(v.Features) == 0 || len(v.Features) > maxFeatures {
		return invalid("view %s: features: want 1 to %d features, got %d", v.Name, maxFeatures, len(v.Features))
	}
	for i, f := range v.Features {
		if err := checkName(fmt.Sprintf("view %s: features[%d].name", v.Name, i), f.Name); err != nil {
			return err
		}
		if seen[f.Name] {
			return invalid("view %s: features[%d].name: %q is already an entity or feature of the view", v.Name, i, f.Name)
		}
		if slices.Contains(reserved, f.Name) {
			return invalid("view %s: features[%d].name: %q is reserved", v.Name, i, f.Name)
		}
		seen[f.Name] = true
		if !slices.Contains(Types, f.Type) {
			return invalid("view %s: features[%d].type: %q is not one of float, double, int, string, bool, float_list", v.Name, i, f.Type)
		}
	}
	return nil
}

func (v *View) checkFeast() error {
	f := v.Feast
	switch {
	case f == nil && IsFeastStore(v.Store):
		return invalid("view %s: feast: store %q is a Feast online store: give feast.project (and feast.entity_types unless every join key is a string)", v.Name, v.Store)
	case f == nil:
		return nil
	case !IsFeastStore(v.Store):
		return invalid("view %s: feast: only a view held in a Feast online store (store feast-redis) takes it, not one in store %q", v.Name, v.Store)
	case f.Project == "":
		return invalid("view %s: feast.project: give the Feast project the view is materialized in", v.Name)
	case len(f.EntityTypes) > 0 && len(f.EntityTypes) != len(v.Entities):
		return invalid("view %s: feast.entity_types: want one type for each of the %d entities, got %d", v.Name, len(v.Entities), len(f.EntityTypes))
	}
	for i, t := range f.EntityTypes {
		if !slices.Contains(FeastEntityTypes, t) {
			return invalid("view %s: feast.entity_types[%d]: %q is not one of string, int64, int32", v.Name, i, t)
		}
	}
	return nil
}

// checkName accepts 1 to 64 lower-case letters, digits and '_', starting with
// a letter: names that need no escaping in Redis keys, in the "view:feature"
// references of feature specs, or (quoted, as the Cassandra store does) as
// Cassandra tables and columns.
func checkName(what, s string) error {
	if s == "" || len(s) > maxName {
		return invalid("%s: want 1 to %d characters, got %d", what, maxName, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return invalid("%s %q: use lower-case letters, digits and '_', starting with a letter", what, s)
		}
	}
	if strings.HasPrefix(s, "_") {
		return invalid("%s %q: must start with a letter", what, s)
	}
	return nil
}
