package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/serving"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestKeysFileAndRateLimits starts a gateway with a key in auth.keys and
// one in auth.keys_file, a role limit for predict and a key's own limit,
// and checks who is let in and who is told to wait.
func TestKeysFileAndRateLimits(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Auth.Keys = []config.APIKey{{Name: "app", SHA256: sha("k-app"), Roles: []string{"predict"}}}
	cfg.Auth.KeysFile = filepath.Join(dir, "keys.yaml")
	cfg.Auth.RoleLimits = []config.RoleLimit{{Role: "predict", Rate: 0.001, Burst: 2}}
	keysFile := "- name: ops\n  sha256: " + sha("k-ops") + "\n  roles: [admin]\n  rate: 0.001\n  burst: 1\n" +
		"- name: root\n  sha256: " + sha("k-root") + "\n  roles: [admin]\n"
	if err := os.WriteFile(cfg.Auth.KeysFile, []byte(keysFile), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	get := func(key string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
	}
	steps := []struct {
		key        string
		status     int
		retryAfter string
		body       string
	}{
		{"k-app", 200, "", ""},
		{"k-app", 200, "", ""},
		{"k-app", 429, "1000", `key \"app\" is over its limit of 0.001 requests per second (burst 2); retry in 1000 s`},
		{"k-ops", 200, "", ""},
		{"k-ops", 429, "1000", `key \"ops\" is over its limit of 0.001 requests per second (burst 1)`},
		{"k-root", 200, "", ""},
		{"k-root", 200, "", ""},
		{"k-root", 200, "", ""},
		{"k-nobody", 401, "", "unknown API key"},
	}
	for i, s := range steps {
		status, retry, body := get(s.key)
		if status != s.status || retry != s.retryAfter || !strings.Contains(body, s.body) {
			t.Errorf("step %d (%s): %d Retry-After %q %s; want %d %q containing %s", i, s.key, status, retry, body, s.status, s.retryAfter, s.body)
		}
	}
}

func TestStartRefusesKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.yaml")
	os.WriteFile(file, []byte("- name: app\n  sha256: "+sha("x")+"\n  roles: [predict]\n  nmae: typo\n"), 0o600)
	cfg := testConfig(dir)
	cfg.Auth.KeysFile = file
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err == nil {
		g.Shutdown(context.Background())
		t.Fatal("Start accepted a keys file with an unknown key")
	}
	if want := `unknown key "[0].nmae" (line 4)`; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), file) {
		t.Errorf("error %q does not name %s and %q", err, file, want)
	}
}

func TestDemoKey(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Auth.Keys = []config.APIKey{{Name: "mine", SHA256: sha("x"), Roles: []string{"admin"}}}
	if key, err := DemoKey(&cfg); key != "" || err != nil || len(cfg.Auth.Keys) != 1 {
		t.Errorf("with keys configured: %q %v %+v", key, err, cfg.Auth.Keys)
	}
	if _, err := os.Stat(filepath.Join(dir, DemoKeyFile)); err == nil {
		t.Error("made a demo key although keys are configured")
	}
	cfg = testConfig(dir)
	key, err := DemoKey(&cfg)
	if err != nil || len(cfg.Auth.Keys) != 1 || cfg.Auth.Keys[0].SHA256 != sha(key) || cfg.Auth.Keys[0].Roles[0] != "admin" {
		t.Fatalf("demo key %q %v: %+v", key, err, cfg.Auth.Keys)
	}
	if fi, err := os.Stat(filepath.Join(dir, DemoKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("demo key file: %v %v", fi, err)
	}
	os.WriteFile(filepath.Join(dir, DemoKeyFile), []byte("short\n"), 0o600)
	cfg = testConfig(dir)
	if _, err := DemoKey(&cfg); err == nil || !strings.Contains(err.Error(), DemoKeyFile) {
		t.Errorf("corrupt demo key: %v", err)
	}
}

// TestDefaultLimits keeps serving's defaults, used when Options leave a
// limit at 0, equal to the configuration's.
func TestDefaultLimits(t *testing.T) {
	l := config.Defaults().Limits
	if l.MaxRows != serving.DefaultMaxRows || l.MaxTensorElements != serving.DefaultMaxTensorElements || l.MaxStringBytes != serving.DefaultMaxStringBytes {
		t.Errorf("config.Defaults().Limits = %+v, serving's defaults are %d, %d, %d",
			l, serving.DefaultMaxRows, serving.DefaultMaxTensorElements, serving.DefaultMaxStringBytes)
	}
}
