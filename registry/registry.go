package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/mlgate/mlgate/internal/changes"
)

// Registry applies the registry's rules over a MetaStore and an ArtifactStore.
// It is safe for concurrent use.
type Registry struct {
	meta          MetaStore
	artifacts     ArtifactStore
	inspector     Inspector
	specs         SpecChecker
	baselines     BaselineChecker
	changes       changes.Publisher
	maxModelBytes int64
	now           func() time.Time
}

// Option sets an optional part of a Registry.
type Option func(*Registry)

// WithSpecChecker makes Register judge feature specs with c. Without it, a
// registration that carries a feature spec is refused.
func WithSpecChecker(c SpecChecker) Option { return func(r *Registry) { r.specs = c } }

// WithBaselineChecker makes Register judge drift baselines with c. Without
// it, a registration that carries a baseline is refused.
func WithBaselineChecker(c BaselineChecker) Option { return func(r *Registry) { r.baselines = c } }

// WithChanges publishes every change of a model (its versions, aliases and
// tags) on p, once committed.
func WithChanges(p changes.Publisher) Option { return func(r *Registry) { r.changes = p } }

// New returns a Registry. maxModelBytes bounds the size of an uploaded model.
func New(meta MetaStore, artifacts ArtifactStore, inspector Inspector, maxModelBytes int64, opts ...Option) *Registry {
	r := &Registry{
		meta:          meta,
		artifacts:     artifacts,
		inspector:     inspector,
		maxModelBytes: maxModelBytes,
		now:           func() time.Time { return time.Now().UTC() },
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// publish announces a committed change of model name. A subscriber's
// failure says the change is made but not yet served.
func (r *Registry) publish(ctx context.Context, name, what string) error {
	if r.changes == nil {
		return nil
	}
	if err := r.changes.Publish(ctx, changes.Model, name); err != nil {
		return fmt.Errorf("%s, but not yet served: %w", what, err)
	}
	return nil
}

// MaxModelBytes is the largest model file Register accepts.
func (r *Registry) MaxModelBytes() int64 { return r.maxModelBytes }

// Register stores the model file that body yields as the next version of the
// named model. The file is checked by the Inspector first; a file that is too
// large or not a servable model is refused, and a refused registration leaves
// no version, no file and no audit event behind.
func (r *Registry) Register(ctx context.Context, actor, name string, body io.Reader, md Metadata) (*Version, error) {
	if err := CheckModelName(name); err != nil {
		return nil, err
	}
	if err := md.validate(); err != nil {
		return nil, err
	}
	v := &Version{
		Name:        name,
		UUID:        uuid.NewString(),
		CreatedBy:   actor,
		Description: md.Description,
		Lineage:     md.Lineage,
		Tags:        maps.Clone(md.Tags),
		Status:      StatusPending,
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	if s, ok := v.Tags[TagValidationStatus]; ok {
		v.Status = Status(s)
	}
	key := v.ArtifactKey()
	art, err := r.artifacts.Put(ctx, key, body, r.maxModelBytes)
	if err != nil {
		return nil, fmt.Errorf("store model file: %w", err)
	}
	v.SHA256, v.Size = art.SHA256, art.Size
	stored := false
	defer func() {
		if !stored {
			// The registration failed after the file was written: take it back.
			_ = r.artifacts.Delete(context.WithoutCancel(ctx), key)
		}
	}()

	path, err := r.artifacts.Path(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("locate model file: %w", err)
	}
	if v.Signature, err = r.inspector.Inspect(ctx, path); err != nil {
		return nil, err
	}
	if md.Batching != nil {
		if err := CheckBatchable(v.Signature); err != nil {
			return nil, err
		}
		b := *md.Batching
		v.Batching = &b
	}
	if len(md.FeatureSpec) > 0 {
		if r.specs == nil {
			return nil, invalid("metadata.feature_spec: this gateway has no feature store to check it against")
		}
		if err := r.specs.CheckSpec(ctx, md.FeatureSpec, v.Signature); err != nil {
			return nil, err
		}
		v.FeatureSpec = md.FeatureSpec
	}
	if len(md.Baseline) > 0 {
		if r.baselines == nil {
			return nil, invalid("metadata.baseline: this gateway has no drift monitoring to check it against")
		}
		if err := r.baselines.CheckBaseline(ctx, md.Baseline); err != nil {
			return nil, err
		}
		v.Baseline = md.Baseline
	}
	err = r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		now := r.now()
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		m.UpdatedAt = now
		m.LastVersion++
		v.Version = m.LastVersion
		v.CreatedAt = now
		m.Versions = append(m.Versions, v)
		return []AuditEvent{r.event(actor, ActionRegisterVersion, name, v.Version, nil, v)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("record version of %s: %w", name, err)
	}
	stored = true
	v.Aliases = []string{}
	return v, r.publish(ctx, name, fmt.Sprintf("version %d of %s registered", v.Version, name))
}

// Model returns the named model.
func (r *Registry) Model(ctx context.Context, name string) (*Model, error) {
	m, err := r.meta.Model(ctx, name)
	if err != nil {
		return nil, err
	}
	return m.withDerived(), nil
}

// Models returns every model, ordered by name.
func (r *Registry) Models(ctx context.Context) ([]*Model, error) {
	ms, err := r.meta.Models(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		m.withDerived()
	}
	return ms, nil
}

// Version returns version n of the named model.
func (r *Registry) Version(ctx context.Context, name string, n int) (*Version, error) {
	m, err := r.Model(ctx, name)
	if err != nil {
		return nil, err
	}
	v := m.Version(n)
	if v == nil {
		return nil, notFound("model %q has no version %d", name, n)
	}
	return v, nil
}

// ArtifactPath returns a local path to the version's ONNX file.
func (r *Registry) ArtifactPath(ctx context.Context, v *Version) (string, error) {
	return r.artifacts.Path(ctx, v.ArtifactKey())
}

// DeleteVersion removes version n and its file. It is refused while an alias
// points at the version.
func (r *Registry) DeleteVersion(ctx context.Context, actor, name string, n int) error {
	var deleted *Version
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		v, err := findVersion(m, name, n)
		if err != nil {
			return nil, err
		}
		if aliases := m.aliasesOf(n); len(aliases) > 0 {
			return nil, conflict("version %d of %q is still pointed at by alias %q; move or delete the alias first", n, name, aliases[0])
		}
		m.Versions = deleteVersion(m.Versions, n)
		m.UpdatedAt = r.now()
		deleted = v
		return []AuditEvent{r.event(actor, ActionDeleteVersion, name, n, v, nil)}, nil
	})
	if err != nil {
		return err
	}
	if err := r.publish(ctx, name, fmt.Sprintf("version %d of %s deleted", n, name)); err != nil {
		return err
	}
	// The record is gone, so nothing refers to the file any more. Failing to
	// remove it leaves an orphan file, not a broken registry.
	if err := r.artifacts.Delete(ctx, deleted.ArtifactKey()); err != nil {
		return fmt.Errorf("version %d of %s deleted, but removing its file failed: %w", n, name, err)
	}
	return nil
}

type aliasState struct {
	Alias   string `json:"alias"`
	Version int    `json:"version"`
}

// SetAlias points alias at version n, creating or moving it.
func (r *Registry) SetAlias(ctx context.Context, actor, name, alias string, n int) error {
	if err := CheckAlias(alias); err != nil {
		return err
	}
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		if _, err := findVersion(m, name, n); err != nil {
			return nil, err
		}
		var before any
		if old, ok := m.Aliases[alias]; ok {
			before = aliasState{alias, old}
		}
		if m.Aliases == nil {
			m.Aliases = map[string]int{}
		}
		m.Aliases[alias] = n
		m.UpdatedAt = r.now()
		return []AuditEvent{r.event(actor, ActionSetAlias, name, n, before, aliasState{alias, n})}, nil
	})
	if err != nil {
		return err
	}
	return r.publish(ctx, name, fmt.Sprintf("alias %s of %s set to version %d", alias, name, n))
}

// DeleteAlias removes an alias.
func (r *Registry) DeleteAlias(ctx context.Context, actor, name, alias string) error {
	if err := CheckAlias(alias); err != nil {
		return err
	}
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		if m.CreatedAt.IsZero() {
			return nil, notFound("model %q not found", name)
		}
		old, ok := m.Aliases[alias]
		if !ok {
			return nil, notFound("model %q has no alias %q", name, alias)
		}
		delete(m.Aliases, alias)
		m.UpdatedAt = r.now()
		return []AuditEvent{r.event(actor, ActionDeleteAlias, name, old, aliasState{alias, old}, nil)}, nil
	})
	if err != nil {
		return err
	}
	return r.publish(ctx, name, fmt.Sprintf("alias %s of %s deleted", alias, name))
}

type tagState struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SetTag sets a tag on version n. Setting "validation_status" sets the
// version's Status.
func (r *Registry) SetTag(ctx context.Context, actor, name string, n int, key, value string) (*Version, error) {
	if err := CheckTag(key, value); err != nil {
		return nil, err
	}
	var (
		out     *Version
		aliases []string
	)
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		v, err := findVersion(m, name, n)
		if err != nil {
			return nil, err
		}
		var before any
		if old, ok := v.Tags[key]; ok {
			before = tagState{key, old}
		}
		if v.Tags == nil {
			v.Tags = map[string]string{}
		}
		v.Tags[key] = value
		if key == TagValidationStatus {
			v.Status = Status(value)
		}
		m.UpdatedAt = r.now()
		out, aliases = v, m.aliasesOf(n)
		return []AuditEvent{r.event(actor, ActionSetTag, name, n, before, tagState{key, value})}, nil
	})
	if err != nil {
		return nil, err
	}
	out.Aliases = aliases
	return out, r.publish(ctx, name, fmt.Sprintf("tag %s of version %d of %s set", key, n, name))
}

// RecordAudit appends a change made elsewhere in the gateway (to an
// endpoint, say) to the audit trail, with before and after as JSON.
func (r *Registry) RecordAudit(ctx context.Context, actor, action, endpoint string, before, after any) error {
	ev := r.event(actor, action, "", 0, before, after)
	ev.Endpoint = endpoint
	return r.meta.AppendAudit(ctx, []AuditEvent{ev})
}

// RecordViewAudit appends a change of a feature view to the audit trail,
// with before and after as JSON.
func (r *Registry) RecordViewAudit(ctx context.Context, actor, action, view string, before, after any) error {
	ev := r.event(actor, action, "", 0, before, after)
	ev.View = view
	return r.meta.AppendAudit(ctx, []AuditEvent{ev})
}

// Audit returns the audit events q selects.
func (r *Registry) Audit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	return r.meta.Audit(ctx, q)
}

func (r *Registry) event(actor, action, model string, version int, before, after any) AuditEvent {
	return AuditEvent{
		Time:    r.now(),
		Actor:   actor,
		Action:  action,
		Model:   model,
		Version: version,
		Before:  mustJSON(before),
		After:   mustJSON(after),
	}
}

// mustJSON marshals registry records, which always marshal.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: marshal audit state: %v", err))
	}
	return b
}

func findVersion(m *Model, name string, n int) (*Version, error) {
	if m.CreatedAt.IsZero() {
		return nil, notFound("model %q not found", name)
	}
	v := m.Version(n)
	if v == nil {
		return nil, notFound("model %q has no version %d", name, n)
	}
	return v, nil
}

func deleteVersion(vs []*Version, n int) []*Version {
	out := vs[:0]
	for _, v := range vs {
		if v.Version != n {
			out = append(out, v)
		}
	}
	return out
}
