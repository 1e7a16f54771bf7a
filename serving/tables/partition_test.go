package tables

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkEscaped fails the test unless e, escapePart's encoding of v, is a
// safe, bounded path component that decodes back to v (or, when cut, ends
// in the hash).
func checkEscaped(t *testing.T, v, e string) {
	t.Helper()
	if len(e) > maxPartValue {
		t.Errorf("escapePart(%q) is %d bytes, more than %d", v, len(e), maxPartValue)
	}
	if strings.HasPrefix(e, ".") {
		t.Errorf("escapePart(%q) = %q starts with a dot", v, e)
	}
	for i := range len(e) {
		if c := e[i]; c < 0x21 || c > 0x7e || c == '/' || c == '\\' {
			t.Fatalf("escapePart(%q) = %q holds byte %#x", v, e, c)
		}
	}
	back, err := url.PathUnescape(e)
	if err != nil {
		t.Fatalf("escapePart(%q) = %q does not unescape: %v", v, e, err)
	}
	if back != v && (len(e) < maxPartValue-hashSuffix || e[len(e)-hashSuffix] != '~') {
		t.Errorf("escapePart(%q) = %q unescapes to %q", v, e, back)
	}
}

func TestEscapePart(t *testing.T) {
	long := strings.Repeat("x", 300)
	sum := sha256.Sum256([]byte(long))
	tests := []struct {
		name, v, want string
	}{
		{"plain", "churn-xgb.v2", "churn-xgb.v2"},
		{"empty", "", ""},
		{"slash and space", "a b/c", "a%20b%2Fc"},
		{"dot", ".", "%2E"},
		{"dot dot", "..", "%2E."},
		{"parent path", "../../etc", "%2E.%2F..%2Fetc"},
		{"hidden", ".tmp", "%2Etmp"},
		{"NUL", "a\x00b", "a%00b"},
		{"control and percent", "a\n%b", "a%0A%25b"},
		{"unicode", "modèle-🚀", "mod%C3%A8le-%F0%9F%9A%80"},
		{"invalid UTF-8", "a\xff", "a%FF"},
		{"300 letters", long, long[:maxPartValue-hashSuffix] + "~" + hex.EncodeToString(sum[:8])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := escapePart(tt.v)
			checkEscaped(t, tt.v, got)
			if got != tt.want {
				t.Errorf("escapePart(%q) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

// TestEscapePartLong checks the names that are cut: never in the middle of
// an escape (checkEscaped unescapes them), at most maxPartValue bytes,
// different names apart, and each a directory the file system takes.
func TestEscapePartLong(t *testing.T) {
	dir := t.TempDir()
	names := []string{
		strings.Repeat("x", 300),
		strings.Repeat("x", 301),
		strings.Repeat("é", 300),
		strings.Repeat("x", 182) + strings.Repeat("/", 40),
		strings.Repeat("x", 183) + strings.Repeat("/", 40),
		strings.Repeat("\x00", 1000),
		strings.Repeat(".", 255),
	}
	seen := map[string]string{}
	for _, v := range names {
		e := escapePart(v)
		checkEscaped(t, v, e)
		if other, ok := seen[e]; ok {
			t.Errorf("%q and %q both encode as %q", v, other, e)
		}
		seen[e] = v
		for _, key := range []string{endpointKey, modelKey} {
			if err := os.Mkdir(filepath.Join(dir, key+e), 0o755); err != nil {
				t.Errorf("partition of %d bytes: %v", len(v), err)
			}
		}
	}
}

// TestPartitionOf checks that rows neither an endpoint nor a model version
// served share the UnknownModel partition, whatever model they asked for.
func TestPartitionOf(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want string
	}{
		{"endpoint", Row{Endpoint: "churn", ModelName: "churn-xgb", ModelVersion: 2}, "endpoint=churn/date=2025-03-14"},
		{"endpoint, failed", Row{Endpoint: "churn", ModelName: "churn-xgb"}, "endpoint=churn/date=2025-03-14"},
		{"model", Row{ModelName: "fraud", ModelVersion: 1}, "model=fraud/date=2025-03-14"},
		{"unknown model", Row{ModelName: strings.Repeat("x", 250), StatusCode: 404}, "model=_unknown/date=2025-03-14"},
		{"unknown path", Row{ModelName: "../../etc", StatusCode: 404}, "model=_unknown/date=2025-03-14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.row.Timestamp = t0
			if got := filepath.ToSlash(partitionOf(&tt.row).dir()); got != tt.want {
				t.Errorf("partition %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckRow(t *testing.T) {
	tests := []struct {
		ts     time.Time
		poison bool
	}{
		{t0, false},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		r := Row{Timestamp: tt.ts}
		if err := checkRow(&r); poisoned(err) != tt.poison {
			t.Errorf("checkRow(%s) = %v, want poisoned %v", tt.ts, err, tt.poison)
		}
	}
}

// FuzzEscapePart checks that any name encodes as a safe, bounded path
// component that decodes back to it.
func FuzzEscapePart(f *testing.F) {
	for _, s := range []string{"", "churn", "..", ".", "a/b", "a\x00b", "é", strings.Repeat("x", 300), strings.Repeat("%", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		checkEscaped(t, v, escapePart(v))
	})
}
