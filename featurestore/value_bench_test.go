package featurestore

import (
	"testing"
)

// BenchmarkDecodeValue_Float is one stored float feature decoded, as a
// read does for every value.
func BenchmarkDecodeValue_Float(b *testing.B) {
	raw := AppendValue(nil, Value{Type: Float, Num: 2.5})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeValue(Float, raw); err != nil {
			b.Fatal(err)
		}
	}
}
