package feast

import (
	"encoding/binary"
	"sort"
	"strconv"

	"github.com/mlgate/mlgate/featurestore"
)

// Feast's ValueType numbers of entity values (feast/value_type.py).
const (
	typeString = 2
	typeInt32  = 3
	typeInt64  = 4
)

// appendKey appends the Redis key of an entity to b: Feast's
// serialize_entity_key, version 3, then the project's bytes. values are the
// entity column values in the order of the view's entities, types their Feast
// types (nil for all strings). It fails when a value is not a number of its
// entity's integer type.
func appendKey(b []byte, v *featurestore.View, values, types []string, project string) ([]byte, error) {
	order := make([]int, len(v.Entities))
	for i := range order {
		order[i] = i
	}
	// Feast sorts the join keys (Python compares the str, which for the
	// names mlgate allows is a byte order).
	sort.Slice(order, func(a, b int) bool { return v.Entities[order[a]] < v.Entities[order[b]] })
	b = binary.LittleEndian.AppendUint32(b, uint32(len(order)))
	for _, i := range order {
		b = binary.LittleEndian.AppendUint32(b, typeString)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Entities[i])))
		b = append(b, v.Entities[i]...)
	}
	for _, i := range order {
		t := "string"
		if types != nil {
			t = types[i]
		}
		switch t {
		case "int64":
			n, err := strconv.ParseInt(values[i], 10, 64)
			if err != nil {
				return nil, featurestore.Invalid("view %s: entity %s: %q is not an int64, the type Feast keys it by", v.Name, v.Entities[i], values[i])
			}
			b = binary.LittleEndian.AppendUint32(b, typeInt64)
			b = binary.LittleEndian.AppendUint32(b, 8)
			b = binary.LittleEndian.AppendUint64(b, uint64(n))
		case "int32":
			n, err := strconv.ParseInt(values[i], 10, 32)
			if err != nil {
				return nil, featurestore.Invalid("view %s: entity %s: %q is not an int32, the type Feast keys it by", v.Name, v.Entities[i], values[i])
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
	return append(b, project...), nil
}
