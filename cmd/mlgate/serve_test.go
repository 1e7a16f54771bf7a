package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/testservers"
)

func TestDemoMessage(t *testing.T) {
	key := strings.Repeat("ab", 32)
	got := demoMessage("http://127.0.0.1:8080", "127.0.0.1:8081", key, "mlgate-data/demo.key")
	for _, want := range []string{
		"made an admin key (kept in mlgate-data/demo.key):\n\n  " + key + "\n",
		`curl -s http://127.0.0.1:8080/v2/models/iris/infer -H "Authorization: Bearer ` + key + `" -H 'Content-Type: application/json' \` + "\n    -d '" + gateway.DemoRequest + "'",
		"served over gRPC too, on 127.0.0.1:8081",
		`curl -s http://127.0.0.1:8080/v1/endpoints/iris/predict -H "Authorization: Bearer ` + key + `" -H 'Content-Type: application/json' \` + "\n    -d '" + gateway.DemoEndpointRequest + "'",
		"Open the console at http://127.0.0.1:8080/ui/",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo message lacks %q:\n%s", want, got)
		}
	}
	got = demoMessage("https://gw:8443", "", "", "")
	if !strings.Contains(got, `curl -s https://gw:8443/v2/models/iris/infer -H "Authorization: Bearer $MLGATE_API_KEY"`) || strings.Contains(got, "made an admin key") || strings.Contains(got, "gRPC") {
		t.Errorf("demo message with keys configured:\n%s", got)
	}
}

// TestSIGHUPReloadsKeys runs `mlgate serve` with a keys file, replaces the
// file and sends SIGHUP: the revoked key is refused and the new one
// admitted, without a restart; a keys file that does not load then leaves
// the keys as they were.
func TestSIGHUPReloadsKeys(t *testing.T) {
	bin := buildBinary(t)
	dataDir, addr := t.TempDir(), freeAddr(t)
	keysFile := filepath.Join(t.TempDir(), "keys.yaml")
	writeKeys := func(body string) {
		if err := os.WriteFile(keysFile, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keyLine := func(name, key string) string {
		h := sha256.Sum256([]byte(key))
		return "- name: " + name + "\n  sha256: " + hex.EncodeToString(h[:]) + "\n  roles: [admin]\n"
	}
	writeKeys(keyLine("old", "old-key"))
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "MLGATE_DATA_DIR="+dataDir, "MLGATE_LISTEN="+addr, "MLGATE_LOG_LEVEL=warn", "MLGATE_AUTH_KEYS_FILE="+keysFile)
	var logs testservers.Log
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	status := func(key string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// until asks until key is answered want, for at most 30 s.
	until := func(key string, want int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); status(key) != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("key %q never answered %d (last %d); log:\n%s", key, want, status(key), logs.String())
			}
		}
	}
	until("old-key", 200)
	if got := status("new-key"); got != 401 {
		t.Fatalf("a key not yet configured: %d", got)
	}

	writeKeys(keyLine("new", "new-key"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until("new-key", 200)
	if got := status("old-key"); got != 401 {
		t.Errorf("the revoked key after SIGHUP: %d, want 401", got)
	}

	writeKeys("- name: broken\n  sha256: nothex\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "API keys not reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the refused reload:\n%s", logs.String())
		}
	}
	if got := status("new-key"); got != 200 {
		t.Errorf("a keys file that does not load changed the keys: new-key %d", got)
	}
}
