package console

import (
	"io/fs"
	"path"
	"strings"
	"testing"
)

// TestConsoleNoInlineCode keeps the assets within their
// Content-Security-Policy and the page safe from what the gateway's data
// holds: no inline script, style or handler in the page, and scripts that
// write text (textContent), never markup, and evaluate no strings.
func TestConsoleNoInlineCode(t *testing.T) {
	banned := map[string][]string{
		".html": {"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"},
		".js":   {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on"},
	}
	n := 0
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		for _, bad := range banned[path.Ext(p)] {
			if strings.Contains(string(raw), bad) {
				t.Errorf("%s holds %q", p, bad)
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("read %d assets, want the page, its styles and scripts", n)
	}
}
