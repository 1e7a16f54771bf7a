// Package localfs keeps model artifacts as files under one directory on local
// disk, the default ArtifactStore of a single gateway.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlgate/mlgate/registry"
)

// Store is a registry.ArtifactStore rooted at a directory.
type Store struct {
	root string
}

var _ registry.ArtifactStore = (*Store)(nil)

// New returns a Store keeping files under root, creating it when missing.
// Files left half-written by a crash are removed.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("create artifact directory: %w", err)
	}
	s := &Store{root: filepath.Clean(root)}
	if err := s.removeTemporaries(); err != nil {
		return nil, err
	}
	return s, nil
}

const tempPrefix = ".upload-"

// Put implements registry.ArtifactStore. It writes to a temporary file in the
// final directory and renames it into place, so a reader never sees a partial
// file.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, limit int64) (registry.Artifact, error) {
	path, err := s.path(key)
	if err != nil {
		return registry.Artifact{}, err
	}
	tmp, err := createTemp(filepath.Dir(path))
	if err != nil {
		return registry.Artifact{}, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	art, err := registry.CopyArtifact(tmp, r, limit)
	if err != nil {
		return registry.Artifact{}, err
	}
	if err := ctx.Err(); err != nil {
		return registry.Artifact{}, err
	}
	if err := tmp.Sync(); err != nil {
		return registry.Artifact{}, fmt.Errorf("write artifact: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return registry.Artifact{}, fmt.Errorf("write artifact: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return registry.Artifact{}, fmt.Errorf("write artifact: %w", err)
	}
	done = true
	return art, nil
}

// createTemp creates an upload's temporary file in dir, making dir first.
func createTemp(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create artifact directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create artifact file: %w", err)
	}
	return tmp, nil
}

// Path implements registry.ArtifactStore.
func (s *Store) Path(ctx context.Context, key string) (string, error) {
	path, err := s.path(key)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", registry.NotFound("artifact %s not found", key)
	} else if err != nil {
		return "", err
	}
	return path, nil
}

// Delete implements registry.ArtifactStore. A model's directory stays when
// its last file goes: removing it would race with a concurrent Put.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete artifact %s: %w", key, err)
	}
	return nil
}

// path maps a key to a file under root, refusing keys that would escape it
// or name the root itself (such as "." or "a/..").
func (s *Store) path(key string) (string, error) {
	if !filepath.IsLocal(key) || strings.Contains(key, `\`) || filepath.Clean(key) == "." {
		return "", registry.Invalid("artifact key %q is not a plain relative path", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *Store) removeTemporaries() error {
	return filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), tempPrefix) {
			return os.Remove(path)
		}
		return nil
	})
}
