package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlgate/mlgate/registry"
)

// ArtifactStore is a registry.ArtifactStore in PostgreSQL. Each distinct
// file is stored once, in chunks, under its sha256, and keys point at it.
// Path copies a file into a local cache directory, once per replica, where
// ONNX Runtime loads it.
type ArtifactStore struct {
	pool  *pgxpool.Pool
	cache string
}

var _ registry.ArtifactStore = (*ArtifactStore)(nil)

// chunkSize is the size of a stored file's rows: large enough that a 2 GB
// model is 2,000 rows, small enough to hold in memory.
const chunkSize = 1 << 20

// tempPrefix starts the names of files being written in the cache.
const tempPrefix = ".part-"

// NewArtifactStore returns an ArtifactStore in the database of pool, which
// pgdb.Migrate has brought to Schema, caching files in cacheDir (made when
// missing; files a crash left half-written there are removed).
func NewArtifactStore(pool *pgxpool.Pool, cacheDir string) (*ArtifactStore, error) {
	if err := os.MkdirAll(cacheDir, 0o750); err != nil {
		return nil, fmt.Errorf("create artifact cache: %w", err)
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("read artifact cache: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(cacheDir, e.Name())); err != nil {
				return nil, fmt.Errorf("clean artifact cache: %w", err)
			}
		}
	}
	return &ArtifactStore{pool: pool, cache: cacheDir}, nil
}

// lockArtifacts makes the changes to keys and files take turns until
// commit, across every gateway: uploads of new files are rare, and a file
// is then never deleted while another key starts to point at it.
func lockArtifacts(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mlgate registry_artifacts', 0))`); err != nil {
		return fmt.Errorf("lock artifacts: %w", err)
	}
	return nil
}

// Put implements registry.ArtifactStore. It reads the file into the cache
// first, to learn its sha256 and size, and sends it to PostgreSQL only when
// no other key holds the same bytes.
func (s *ArtifactStore) Put(ctx context.Context, key string, r io.Reader, limit int64) (registry.Artifact, error) {
	if key == "" {
		return registry.Artifact{}, registry.Invalid("artifact key is empty")
	}
	tmp, err := os.CreateTemp(s.cache, tempPrefix+"*")
	if err != nil {
		return registry.Artifact{}, fmt.Errorf("create artifact file: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // fails once renamed into place
	}()
	art, err := registry.CopyArtifact(tmp, r, limit)
	if err != nil {
		return registry.Artifact{}, err
	}
	if err := tmp.Sync(); err != nil {
		return registry.Artifact{}, fmt.Errorf("write artifact: %w", err)
	}
	var dropped string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockArtifacts(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO registry_blobs (sha256, size) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING`, art.SHA256, art.Size)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				return err
			}
			src := &chunks{sum: art.SHA256, r: tmp, buf: make([]byte, chunkSize)}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"registry_blob_chunks"}, []string{"sha256", "n", "data"}, src); err != nil {
				return err
			}
		}
		var old string
		err = tx.QueryRow(ctx, `SELECT sha256 FROM registry_artifacts WHERE key = $1`, key).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO registry_artifacts (key, sha256) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET sha256 = EXCLUDED.sha256`, key, art.SHA256)
		if err != nil || old == "" || old == art.SHA256 {
			return err
		}
		if gone, err := dropUnreferenced(ctx, tx, old); err != nil || !gone {
			return err
		}
		dropped = old
		return nil
	})
	if err != nil {
		return registry.Artifact{}, fmt.Errorf("store artifact %s: %w", key, err)
	}
	if dropped != "" {
		s.uncache(dropped)
	}
	if err := tmp.Close(); err != nil {
		return registry.Artifact{}, fmt.Errorf("write artifact: %w", err)
	}
	// Stored: the cache keeps the file for the Path that follows.
	if err := os.Rename(tmp.Name(), s.cachePath(art.SHA256)); err != nil {
		return registry.Artifact{}, fmt.Errorf("cache artifact %s: %w", key, err)
	}
	return art, nil
}

// chunks is a file as rows of registry_blob_chunks, for CopyFrom.
type chunks struct {
	sum string
	r   io.Reader
	buf []byte
	n   int
	row []any
	err error
}

func (c *chunks) Next() bool {
	k, err := io.ReadFull(c.r, c.buf)
	if k == 0 {
		if err != io.EOF {
			c.err = err
		}
		return false
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		c.err = err
		return false
	}
	// CopyFrom encodes the row before it asks for the next, so buf is reused.
	c.row = []any{c.sum, c.n, c.buf[:k]}
	c.n++
	return true
}

func (c *chunks) Values() ([]any, error) { return c.row, nil }

func (c *chunks) Err() error { return c.err }

// dropUnreferenced deletes the file whose sha256 is sum, and its chunks when no key points
// at it any more, and reports whether it did.
func dropUnreferenced(ctx context.Context, tx pgx.Tx, sum string) (bool, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM registry_blobs WHERE sha256 = $1
		AND NOT EXISTS (SELECT 1 FROM registry_artifacts WHERE sha256 = $1)`, sum)
	if err != nil {
		return false, fmt.Errorf("delete file %s: %w", sum, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Path implements registry.ArtifactStore. A cached file is checked against
// its sha256 each time (about a second per gigabyte), and fetched again
// when it does not match. The key is looked up again and its file read in
// one snapshot, so that a replace or delete of the key meanwhile gives the
// file as it was or not found, never a file cut short.
func (s *ArtifactStore) Path(ctx context.Context, key string) (string, error) {
	art, err := lookUp(ctx, s.pool, key)
	if err != nil {
		return "", err
	}
	path := s.cachePath(art.SHA256)
	ok, err := holds(path, art)
	if err != nil {
		return "", fmt.Errorf("check cached artifact %s: %w", key, err)
	}
	if ok {
		return path, nil
	}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if art, err = lookUp(ctx, tx, key); err != nil {
			return err
		}
		path = s.cachePath(art.SHA256)
		if err := s.fetch(ctx, tx, art, path); err != nil {
			return fmt.Errorf("fetch artifact %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// lookUp finds the file key points at.
func lookUp(ctx context.Context, q rowQuerier, key string) (registry.Artifact, error) {
	var art registry.Artifact
	err := q.QueryRow(ctx, `SELECT b.sha256, b.size FROM registry_artifacts a
		JOIN registry_blobs b USING (sha256) WHERE a.key = $1`, key).Scan(&art.SHA256, &art.Size)
	if errors.Is(err, pgx.ErrNoRows) {
		return art, registry.NotFound("artifact %s not found", key)
	}
	if err != nil {
		return art, fmt.Errorf("look up artifact %s: %w", key, err)
	}
	return art, nil
}

// holds reports whether the file at path is art; a missing file is not.
func holds(path string, art registry.Artifact) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != art.Size {
		return false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == art.SHA256, nil
}

// fetch writes the stored file art to path, through a temporary file renamed
// into place once its sha256 matches.
func (s *ArtifactStore) fetch(ctx context.Context, tx pgx.Tx, art registry.Artifact, path string) error {
	tmp, err := os.CreateTemp(s.cache, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // fails once renamed into place
	}()
	rows, err := tx.Query(ctx, `SELECT data FROM registry_blob_chunks WHERE sha256 = $1 ORDER BY n`, art.SHA256)
	if err != nil {
		return err
	}
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	var n int64
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		k, err := w.Write(data)
		n += int64(k)
		return err
	})
	if err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != art.Size || sum != art.SHA256 {
		return fmt.Errorf("the stored file has %d bytes and sha256 %s; want %d bytes and sha256 %s", n, sum, art.Size, art.SHA256)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Delete implements registry.ArtifactStore. The file goes, from PostgreSQL
// and this gateway's cache, with the last key pointing at it.
func (s *ArtifactStore) Delete(ctx context.Context, key string) error {
	var dropped string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockArtifacts(ctx, tx); err != nil {
			return err
		}
		var sha string
		err := tx.QueryRow(ctx, `DELETE FROM registry_artifacts WHERE key = $1 RETURNING sha256`, key).Scan(&sha)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		gone, err := dropUnreferenced(ctx, tx, sha)
		if gone {
			dropped = sha
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete artifact %s: %w", key, err)
	}
	if dropped != "" {
		s.uncache(dropped)
	}
	return nil
}

// cachePath is where the cache keeps the file whose sha256 is sum.
func (s *ArtifactStore) cachePath(sum string) string { return filepath.Join(s.cache, sum) }

// uncache removes a deleted file from the cache. A failure leaves a stray
// file that nothing points at, which is not worth failing a committed
// change for.
func (s *ArtifactStore) uncache(sum string) { os.Remove(s.cachePath(sum)) }
