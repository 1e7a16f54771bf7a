package feast

import (
	"encoding/binary"
	"math/bits"
)

// murmur3 is MurmurHash3's x86 32-bit hash with seed 0, which Feast takes
// (Python's mmh3.hash(key, signed=False)) to name a feature's hash field.
func murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
		data = data[4:]
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// fieldName is the hash field of a feature of a Feast view: the murmur3 hash
// of "view:feature", as four little-endian bytes.
func fieldName(view, feature string) string {
	return string(binary.LittleEndian.AppendUint32(nil, murmur3([]byte(view+":"+feature))))
}
