package feast

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/mlgate/mlgate/featurestore"
)

// BenchmarkKeys_Entities100 encodes the Redis keys of 100 int64 entities,
// what a read of 100 entities does before it sends anything.
func BenchmarkKeys_Entities100(b *testing.B) {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprint(1000 + i)
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		enc := newKeyEncoder(driverStats, []string{"int64"}, "rides")
		buf = buf[:0]
		for _, k := range keys {
			buf, _ = enc.append(buf, k)
		}
	}
}

// BenchmarkDecode_Features6 decodes one row's six values as Feast wrote them.
func BenchmarkDecode_Features6(b *testing.B) {
	raw := []string{"202a", "350000803e", "2959f3f8c21f6ea501", "1202c3b8", "3801", "82010a0a080000c03f000000c0"}
	vals := make([][]byte, len(raw))
	for i, h := range raw {
		vals[i], _ = hex.DecodeString(h)
	}
	types := []featurestore.Type{featurestore.Int, featurestore.Float, featurestore.Double, featurestore.String, featurestore.Bool, featurestore.FloatList}
	b.ReportAllocs()
	for b.Loop() {
		for i, v := range vals {
			if _, err := decodeValue(types[i], v); err != nil {
				b.Fatal(err)
			}
		}
	}
}
