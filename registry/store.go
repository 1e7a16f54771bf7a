package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
)

// MetaStore keeps model records and the audit trail. Implementations must be
// safe for concurrent use.
type MetaStore interface {
	// Update applies fn to the named model and stores the result together with
	// the audit events fn returns, atomically: either the model and all events
	// are written, or nothing is. fn receives a copy it may change freely; for
	// a model that does not exist yet it receives a Model with only Name set
	// and a zero CreatedAt. If fn returns an error, nothing is written and
	// Update returns that error. The store assigns each event's Seq.
	Update(ctx context.Context, name string, fn func(m *Model) ([]AuditEvent, error)) error
	// Model returns the named model, or an error matching ErrNotFound.
	Model(ctx context.Context, name string) (*Model, error)
	// Models returns every model, ordered by name.
	Models(ctx context.Context) ([]*Model, error)
	// Audit returns the events q selects, in ascending Seq order.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// AppendAudit records events that belong to no model record (changes to
	// endpoints), assigning their Seq.
	AppendAudit(ctx context.Context, events []AuditEvent) error
	// Close releases the store.
	Close() error
}

// Artifact describes a stored model file.
type Artifact struct {
	SHA256 string
	Size   int64
}

// ArtifactStore keeps model files. Implementations must be safe for concurrent
// use.
type ArtifactStore interface {
	// Put stores what r yields under key, reading at most limit bytes. When r
	// yields more, Put stores nothing and returns an error matching
	// ErrTooLarge. Put either stores the whole file or nothing.
	Put(ctx context.Context, key string, r io.Reader, limit int64) (Artifact, error)
	// Path returns a local file path holding the artifact, for ONNX Runtime to
	// load. It returns an error matching ErrNotFound for an unknown key.
	Path(ctx context.Context, key string) (string, error)
	// Delete removes the artifact; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Inspector decides whether a file is a model the gateway can serve.
type Inspector interface {
	// Inspect loads the model at path, runs it once, and returns its
	// signature. A file that is not a servable model gives an error matching
	// ErrInvalid whose message says why.
	Inspect(ctx context.Context, path string) (Signature, error)
}

// SpecChecker judges the feature spec of a version being registered.
type SpecChecker interface {
	// CheckSpec reports whether spec can fill the inputs of a model with
	// signature sig; a spec that cannot gives an error that names what is
	// wrong (it is the caller's mistake).
	CheckSpec(ctx context.Context, spec []byte, sig Signature) error
}

// BaselineChecker judges the drift baseline of a version being registered.
type BaselineChecker interface {
	// CheckBaseline reports whether baseline is usable; its errors name what
	// is wrong (the caller's mistake).
	CheckBaseline(ctx context.Context, baseline []byte) error
}

// CopyArtifact copies what r yields to w, reading at most limit bytes, and
// describes what it copied; ArtifactStores write uploads through it. When r
// yields more than limit it fails with an error matching ErrTooLarge, and
// what w holds must be thrown away.
func CopyArtifact(w io.Writer, r io.Reader, limit int64) (Artifact, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, min(limit, math.MaxInt64-1)+1))
	if err != nil {
		return Artifact{}, fmt.Errorf("write artifact: %w", err)
	}
	if n > limit {
		return Artifact{}, TooLarge("model file is larger than the limit of %d bytes (registry.max_model_bytes)", limit)
	}
	return Artifact{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}
