package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlgate/mlgate/internal/config"
)

// DemoKeyName is the name of the API key the demo makes.
const DemoKeyName = "demo"

// DemoKeyFile is where, in the data directory, the demo keeps its key.
const DemoKeyFile = "demo.key"

// DemoKey gives cfg an admin API key for the demo when it configures none
// (neither auth.keys nor keys in auth.keys_file), so that the demo runs with
// authentication like any other gateway. The key is 32 random bytes in hex,
// made on the first run and kept in <data_dir>/demo.key, which later runs
// reuse. DemoKey returns the key, or "" when cfg has keys of its own.
func DemoKey(cfg *config.Config) (string, error) {
	keys, err := cfg.Auth.AllKeys()
	if err != nil || len(keys) > 0 {
		return "", err
	}
	key, err := demoKey(cfg.DataDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(key))
	cfg.Auth.Keys = []config.APIKey{{Name: DemoKeyName, SHA256: hex.EncodeToString(sum[:]), Roles: []string{"admin"}}}
	return key, nil
}

// demoKey reads the demo key kept in dir, or makes and keeps one.
func demoKey(dir string) (string, error) {
	path := filepath.Join(dir, DemoKeyFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(raw))
		if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
			return "", fmt.Errorf("demo key %s: want 64 hex characters; delete the file to make a new key", path)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read the demo key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("data directory (data_dir): %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the demo key: %w", err)
	}
	return key, nil
}
