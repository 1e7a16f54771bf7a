package feast

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mlgate/mlgate/featurestore"
)

// Field numbers of Feast's registry (feast/protos/feast/core/Registry.proto,
// Entity.proto, FeatureView.proto, Feature.proto), of the parts read here.
const (
	registryEntities     = 1  // Registry.entities: Entity
	registryFeatureViews = 6  // Registry.feature_views: FeatureView
	specField            = 1  // Entity.spec, FeatureView.spec
	entityName           = 1  // EntitySpecV2.name
	entityValueType      = 2  // EntitySpecV2.value_type
	entityJoinKey        = 4  // EntitySpecV2.join_key
	entityProject        = 9  // EntitySpecV2.project
	viewName             = 1  // FeatureViewSpec.name
	viewProject          = 2  // FeatureViewSpec.project
	viewEntities         = 3  // FeatureViewSpec.entities: entity names
	viewFeatures         = 4  // FeatureViewSpec.features: FeatureSpecV2
	viewTTL              = 6  // FeatureViewSpec.ttl: google.protobuf.Duration
	viewEntityColumns    = 12 // FeatureViewSpec.entity_columns: FeatureSpecV2
	featureName          = 1  // FeatureSpecV2.name
	featureValueType     = 2  // FeatureSpecV2.value_type: feast.types.ValueType.Enum
)

// dummyEntity is the entity Feast gives a feature view without entities.
const dummyEntity = "__dummy"

// featureTypes maps Feast's ValueType.Enum to the feature types that hold
// it; Feast types missing here have no mlgate feature type.
var featureTypes = map[uint64]featurestore.Type{
	2: featurestore.String, 3: featurestore.Int, 4: featurestore.Int, 5: featurestore.Double,
	6: featurestore.Float, 7: featurestore.Bool, 16: featurestore.FloatList,
}

// entityTypes maps Feast's ValueType.Enum of a join key to FeastSource's
// entity types.
var entityTypes = map[uint64]string{2: "string", 3: "int32", 4: "int64"}

// Imported is a view read from a Feast registry, with what could not be
// taken from Feast's definition.
type Imported struct {
	View *featurestore.View
	// Skipped lists the features left out, each with why.
	Skipped []string
}

// ImportRegistry reads a Feast registry file (registry.db of a file
// registry: a serialized feast.core.Registry) and returns, for each feature
// view of the project, the view of store feast-redis that reads it: Feast's
// view name, its join keys as entities (with their types), its features of
// the types mlgate has, and its TTL. A feature of another type is left out
// (Imported.Skipped). A view mlgate cannot read is left out, and leftOut
// says which and why: one without entities (Feast keys it by a dummy
// entity), a join key that is not a string, int32 or int64, a name mlgate
// does not allow (Feast's names are the hash fields, so they cannot be
// renamed), no feature left. It fails when the file is not a registry, or
// has no such project. The views are not checked against a gateway's
// stores.
func ImportRegistry(data []byte, project string) (imported []Imported, leftOut []string, err error) {
	type entity struct {
		joinKey   string
		valueType uint64
	}
	entities := map[string]entity{}
	var specs [][]byte
	projects := map[string]bool{}
	err = eachField(data, func(num protowire.Number, b []byte, _ uint64) error {
		switch num {
		case registryEntities:
			spec := message(b, specField)
			var name, joinKey, proj string
			var vt uint64
			err := eachField(spec, func(num protowire.Number, b []byte, v uint64) error {
				switch num {
				case entityName:
					name = string(b)
				case entityJoinKey:
					joinKey = string(b)
				case entityProject:
					proj = string(b)
				case entityValueType:
					vt = v
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("entity: %w", err)
			}
			projects[proj] = true
			if proj == project {
				entities[name] = entity{joinKey, vt}
			}
		case registryFeatureViews:
			specs = append(specs, message(b, specField))
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("feast registry: %w", err)
	}
	for _, spec := range specs {
		var (
			name, proj        string
			entityNames       []string
			features, columns []field
			ttl               time.Duration
		)
		feature := func(b []byte) (field, error) {
			var f field
			err := eachField(b, func(num protowire.Number, b []byte, v uint64) error {
				switch num {
				case featureName:
					f.name = string(b)
				case featureValueType:
					f.valueType = v
				}
				return nil
			})
			return f, err
		}
		err := eachField(spec, func(num protowire.Number, b []byte, v uint64) error {
			switch num {
			case viewName:
				name = string(b)
			case viewProject:
				proj = string(b)
			case viewEntities:
				entityNames = append(entityNames, string(b))
			case viewFeatures, viewEntityColumns:
				f, err := feature(b)
				if err != nil {
					return err
				}
				if num == viewFeatures {
					features = append(features, f)
				} else {
					columns = append(columns, f)
				}
			case viewTTL:
				var d time.Duration
				err := eachField(b, func(num protowire.Number, _ []byte, v uint64) error {
					switch num {
					case 1:
						d += time.Duration(int64(v)) * time.Second
					case 2:
						d += time.Duration(int32(v))
					}
					return nil
				})
				ttl = d
				return err
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("feast registry: feature view: %w", err)
		}
		projects[proj] = true
		if proj != project {
			continue
		}
		imp, err := importView(name, project, entityNames, features, columns, ttl, func(n string) (string, uint64, bool) {
			e, ok := entities[n]
			return e.joinKey, e.valueType, ok
		})
		if err != nil {
			leftOut = append(leftOut, err.Error())
			continue
		}
		imported = append(imported, imp)
	}
	if !projects[project] {
		var names []string
		for p := range projects {
			names = append(names, p)
		}
		slices.Sort(names)
		return nil, nil, featurestore.Invalid("feast registry: no project %q (it holds %q)", project, names)
	}
	return imported, leftOut, nil
}

// field is a FeatureSpecV2: a feature or join key and its Feast value type.
type field struct {
	name      string
	valueType uint64
}

func importView(name, project string, entityNames []string, features, columns []field, ttl time.Duration, entity func(string) (string, uint64, bool)) (Imported, error) {
	v := &featurestore.View{Name: name, Store: StoreName, TTL: featurestore.Duration(ttl),
		Feast: &featurestore.FeastSource{Project: project}}
	imp := Imported{View: v}
	// The join keys: entity_columns when Feast wrote them (it does since
	// 0.3x), else the entities' own.
	if len(columns) == 0 {
		for _, n := range entityNames {
			jk, vt, ok := entity(n)
			if !ok {
				return imp, featurestore.Invalid("feast view %s: entity %q is not in the registry", name, n)
			}
			columns = append(columns, field{jk, vt})
		}
	}
	for _, c := range columns {
		t, ok := entityTypes[c.valueType]
		if !ok {
			return imp, featurestore.Invalid("feast view %s: join key %s has Feast value type %d; mlgate reads string, int32 and int64 join keys", name, c.name, c.valueType)
		}
		v.Entities = append(v.Entities, c.name)
		v.Feast.EntityTypes = append(v.Feast.EntityTypes, t)
	}
	for _, f := range features {
		t, ok := featureTypes[f.valueType]
		if !ok {
			imp.Skipped = append(imp.Skipped, fmt.Sprintf("%s (Feast value type %d has no mlgate feature type)", f.name, f.valueType))
			continue
		}
		v.Features = append(v.Features, featurestore.Feature{Name: f.name, Type: t})
	}
	if len(entityNames) == 1 && entityNames[0] == dummyEntity {
		return imp, fmt.Errorf("feast view %s: it has no entities, and an mlgate view needs at least one", name)
	}
	if err := v.Check(); err != nil {
		return imp, fmt.Errorf("feast view %s: %w", name, err)
	}
	return imp, nil
}

// eachField calls fn for each field of a message: b is the payload of a
// length-delimited field, v the value of a varint or fixed one.
func eachField(data []byte, fn func(num protowire.Number, b []byte, v uint64) error) error {
	for len(data) > 0 {
		num, wt, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		var (
			b []byte
			v uint64
		)
		switch wt {
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(data)
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(data)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(data)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(data)
		default:
			n = protowire.ConsumeFieldValue(num, wt, data)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		data = data[n:]
		if err := fn(num, b, v); err != nil {
			return err
		}
	}
	return nil
}

// message returns the payload of the last field num of a message (nil when
// it has none or is malformed; the caller's parse of nil finds nothing).
func message(data []byte, num protowire.Number) []byte {
	var out []byte
	eachField(data, func(n protowire.Number, b []byte, _ uint64) error {
		if n == num {
			out = b
		}
		return nil
	})
	return out
}
