package feast

import (
	"encoding/binary"
	"sort"
	"strconv"
	"strings"

	"github.com/mlgate/mlgate/featurestore"
)

// Feast's ValueType numbers of entity values (feast/value_type.py).
const (
	typeString = 2
	typeInt32  = 3
	typeInt64  = 4
)

// keyEncoder writes the Redis keys of the entities of one view: Feast's
// serialize_entity_key, version 3, then the project's bytes.
type keyEncoder struct {
	view    *featurestore.View
	types   []string // Feast type of each entity, nil for all strings
	order   []int    // of the entities, by join key name
	head    []byte   // the join keys' part, the same for every key
	project string
}

func newKeyEncoder(v *featurestore.View, types []string, project string) *keyEncoder {
	e := &keyEncoder{view: v, types: types, project: project, order: make([]int, len(v.Entities))}
	for i := range e.order {
		e.order[i] = i
	}
	// Feast sorts the join keys (Python compares the str, which for the
	// names mlgate allows is a byte order).
	sort.Slice(e.order, func(a, b int) bool { return v.Entities[e.order[a]] < v.Entities[e.order[b]] })
	e.head = binary.LittleEndian.AppendUint32(nil, uint32(len(e.order)))
	for _, i := range e.order {
		e.head = binary.LittleEndian.AppendUint32(e.head, typeString)
		e.head = binary.LittleEndian.AppendUint32(e.head, uint32(len(v.Entities[i])))
		e.head = append(e.head, v.Entities[i]...)
	}
	return e
}

// append appends the Redis key of an entity to b; key is its featurestore.Key.
// It fails with ErrInvalid when a value is not a number of its entity's
// integer type.
func (e *keyEncoder) append(b []byte, key string) ([]byte, error) {
	b = append(b, e.head...)
	rest := key
	values := make([]string, 0, 8) // at most 8 entities, so on the stack
	for len(values) < len(e.view.Entities)-1 {
		i := strings.Index(rest, keySep)
		if i < 0 {
			break
		}
		values, rest = append(values, rest[:i]), rest[i+len(keySep):]
	}
	values = append(values, rest)
	if len(values) != len(e.view.Entities) {
		return nil, featurestore.Invalid("view %s: entity key has %d values for %d entities", e.view.Name, len(values), len(e.view.Entities))
	}
	for _, i := range e.order {
		t := "string"
		if e.types != nil {
			t = e.types[i]
		}
		switch t {
		case "int64":
			n, err := strconv.ParseInt(values[i], 10, 64)
			if err != nil {
				return nil, featurestore.Invalid("view %s: entity %s: %q is not an int64, the type Feast keys it by", e.view.Name, e.view.Entities[i], values[i])
			}
			b = binary.LittleEndian.AppendUint32(b, typeInt64)
			b = binary.LittleEndian.AppendUint32(b, 8)
			b = binary.LittleEndian.AppendUint64(b, uint64(n))
		case "int32":
			n, err := strconv.ParseInt(values[i], 10, 32)
			if err != nil {
				return nil, featurestore.Invalid("view %s: entity %s: %q is not an int32, the type Feast keys it by", e.view.Name, e.view.Entities[i], values[i])
			}
			b = binary.LittleEndian.AppendUint32(b, typeInt32)
			b = binary.LittleEndian.AppendUint32(b, 4)
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(n)))
		default:
			b = binary.LittleEndian.AppendUint32(b, typeString)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(values[i])))
			b = append(b, values[i]...)
		}
	}
	return append(b, e.project...), nil
}

// keySep is featurestore.Key's separator of composite keys.
var keySep = featurestore.Key([]string{"", ""})
