package modelzoo

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

var allFiles = []string{
	Linear, LinearV2, MultiInput, IrisFile, Strings, AllTypes, FixedShape, Dense10, Dense50, Fragile, Faulty,
	MLPHeavy, Garbage, Truncated,
}

func TestFilesExist(t *testing.T) {
	for _, name := range allFiles {
		p := Path(name)
		if !filepath.IsAbs(p) {
			t.Errorf("Path(%q) = %q, want an absolute path", name, p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Size() == 0 {
			t.Errorf("%s is empty", name)
		}
		if fi.Size() >= 50<<10 {
			t.Errorf("%s is %d bytes, want < 50 KiB", name, fi.Size())
		}
	}
}

func TestIrisEmbedded(t *testing.T) {
	want, err := os.ReadFile(Path(IrisFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(Iris) == 0 || !bytes.Equal(Iris, want) {
		t.Errorf("Iris (%d bytes) differs from %s (%d bytes)", len(Iris), IrisFile, len(want))
	}
}

func TestTruncated(t *testing.T) {
	lin, err := os.ReadFile(Path(Linear))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := os.ReadFile(Path(Truncated))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tr, lin[:len(lin)/2]) {
		t.Errorf("%s is not the first half of %s", Truncated, Linear)
	}
}

func TestGarbageSize(t *testing.T) {
	b, err := os.ReadFile(Path(Garbage))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 2048 {
		t.Errorf("%s is %d bytes, want 2048", Garbage, len(b))
	}
}
