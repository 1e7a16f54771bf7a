package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllKeys(t *testing.T) {
	hash := strings.Repeat("a", 64)
	inline := []APIKey{{Name: "app", SHA256: hash, Roles: []string{"predict"}}}
	tests := []struct {
		name string
		file string // "" leaves auth.keys_file unset
		want []string
		err  string // "" for success
	}{
		{"no file", "", []string{"app"}, ""},
		{"merged", `
- name: ops
  sha256: ` + hash + `
  roles: [sre, data-scientist]
  rate: 5
  burst: 10
- name: ci
  sha256: ` + hash + `
  roles: [predict]
`, []string{"app", "ops", "ci"}, ""},
		{"empty file", "", []string{"app"}, ""},
		{"unknown key", `
- name: ops
  sha256: ` + hash + `
  roles: [sre]
  rols: [admin]
`, nil, `unknown key "[0].rols" (line 5)`},
		{"duplicate of auth.keys", `
- name: app
  sha256: ` + hash + `
  roles: [sre]
`, nil, `[0].name (line 2): duplicate name "app" (also auth.keys[0])`},
		{"duplicate in the file", `
- {name: a, sha256: ` + hash + `, roles: [sre]}
- {name: a, sha256: ` + hash + `, roles: [sre]}
`, nil, `[1].name (line 3): duplicate name "a" (also [0])`},
		{"bad entry", `
- name: ops
  sha256: abc
  roles: [root]
  rate: -1
`, nil, `[0].sha256 (line 2): must be 64 hex characters`},
		{"not a list", "name: ops\n", nil, "expected a list of keys, got a mapping (line 1)"},
		{"bad value", "- {name: a, sha256: " + hash + ", roles: [sre], rate: fast}\n", nil, `[0].rate (line 1): invalid number "fast"`},
		{"two documents", "- {name: a, sha256: " + hash + ", roles: [sre]}\n---\n- {name: b}\n", nil, "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Auth{Keys: inline}
			if tt.file != "" || tt.name == "empty file" {
				a.KeysFile = filepath.Join(t.TempDir(), "keys.yaml")
				if err := os.WriteFile(a.KeysFile, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			keys, err := a.AllKeys()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), a.KeysFile) {
					t.Fatalf("err = %v, want one naming %s and containing %q", err, a.KeysFile, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, k := range keys {
				names = append(names, k.Name)
			}
			if strings.Join(names, " ") != strings.Join(tt.want, " ") {
				t.Errorf("keys %v, want %v", names, tt.want)
			}
			if len(keys) == 3 && (keys[1].Rate != 5 || keys[1].Burst != 10 || keys[1].Roles[1] != "data-scientist") {
				t.Errorf("ops = %+v", keys[1])
			}
		})
	}
	if _, err := (&Auth{KeysFile: "/nonexistent/keys.yaml"}).AllKeys(); err == nil || !strings.Contains(err.Error(), "auth.keys_file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidateRateLimits(t *testing.T) {
	c := Defaults()
	c.Auth.Keys = []APIKey{{Name: "a", SHA256: strings.Repeat("a", 64), Roles: []string{"sre"}, Rate: -1, Burst: -2}}
	c.Auth.RoleLimits = []RoleLimit{{Role: "predict", Rate: 1}, {Role: "predict", Rate: 2}}
	err := c.Validate()
	for _, want := range []string{
		"auth.keys[0].rate: must not be negative",
		"auth.keys[0].burst: must not be negative",
		`auth.role_limits[1].role: duplicate role "predict" (also auth.role_limits[0])`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
}
