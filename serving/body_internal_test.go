package serving

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"testing"
	"testing/iotest"
)

// FuzzDecodeBody: a compressed body decodes to at most the limit, or is
// refused with a client error; nothing panics.
func FuzzDecodeBody(f *testing.F) {
	var gz, fl bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"inputs": []}`))
	zw.Close()
	fw, _ := flate.NewWriter(&fl, flate.BestSpeed)
	fw.Write(bytes.Repeat([]byte("a"), 5000))
	fw.Close()
	f.Add("gzip", gz.Bytes())
	f.Add("deflate", fl.Bytes())
	f.Add("gzip", []byte("not gzip"))
	f.Add("br", []byte("x"))
	f.Fuzz(func(t *testing.T, enc string, raw []byte) {
		const limit = 4096
		out, err := decode(enc, raw, limit)
		if err != nil {
			if code := statusOf(err); code < 400 || code >= 500 {
				t.Fatalf("decode error %v is a %d", err, code)
			}
			return
		}
		if len(out) > limit {
			t.Fatalf("decoded %d bytes, over the limit of %d", len(out), limit)
		}
	})
}

// FuzzCopyLimited: a body is read whole when within the limit, and refused
// with a 413 when over it.
func FuzzCopyLimited(f *testing.F) {
	f.Add([]byte("{}"), int64(2))
	f.Add([]byte("{}"), int64(1))
	f.Add(bytes.Repeat([]byte("x"), 3000), int64(1000))
	f.Fuzz(func(t *testing.T, body []byte, limit int64) {
		if limit < 0 || limit > 1<<20 {
			return
		}
		var buf bytes.Buffer
		err := copyLimited(&buf, iotest.HalfReader(bytes.NewReader(body)), limit)
		switch {
		case int64(len(body)) > limit && statusOf(err) != 413:
			t.Fatalf("%d bytes over a limit of %d: %v", len(body), limit, err)
		case int64(len(body)) <= limit && (err != nil || !bytes.Equal(buf.Bytes(), body)):
			t.Fatalf("%d bytes within a limit of %d: %v, read %d", len(body), limit, err, buf.Len())
		}
	})
}
