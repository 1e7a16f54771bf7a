package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

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
	// protected maps an alias to the validation status a version must have
	// for the alias to point at it.
	protected map[string]Status
	// invalidated counts protected aliases left pointing at a version
	// without the status they require; nil until RegisterMetrics.
	invalidated metric.Int64Counter
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

// WithProtectedAliases guards each alias of p: it may point only at a
// version whose Status is the one p names (see SetAlias). An empty or nil p
// guards none.
func WithProtectedAliases(p map[string]Status) Option {
	return func(r *Registry) { r.protected = maps.Clone(p) }
}

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
	return r.register(ctx, actor, name, body, md, 0, "")
}

// register is Register as number at (0: the next) by the writer via: ""
// for mlgate's own API, else the source of a mirror (see Mirror).
func (r *Registry) register(ctx context.Context, actor, name string, body io.Reader, md Metadata, at int, via string) (*Version, error) {
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
		if err := checkWriter(m, name, via); err != nil {
			return nil, err
		}
		now := r.now()
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
			m.MirroredFrom = via
		}
		m.UpdatedAt = now
		switch {
		case at == 0:
			m.LastVersion++
		case at <= m.LastVersion:
			return nil, conflict("version %d of %q: the model has had a version %d or later already", at, name, at)
		default:
			m.LastVersion = at
		}
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
		if err := checkWriter(m, name, ""); err != nil {
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
	// Forced, Status and Required record a move an admin forced past the
	// alias's protection: the version's status and the one required.
	Forced   bool   `json:"forced,omitempty"`
	Status   Status `json:"status,omitempty"`
	Required Status `json:"required,omitempty"`
}

// SetAlias points alias at version n, creating or moving it. A protected
// alias (WithProtectedAliases) may point only at a version whose Status is
// the one required; another move is refused with an error matching
// ErrConflict that names both statuses (see ForceAlias).
func (r *Registry) SetAlias(ctx context.Context, actor, name, alias string, n int) error {
	return r.setAlias(ctx, actor, name, alias, n, false, "")
}

// ForceAlias is SetAlias past the protection of the alias: it moves a
// protected alias to a version without the status required, and records in
// the audit event that the move was forced, with the version's status and
// the one required. A move the protection allows is recorded as SetAlias
// records it. Only an admin should be let to call it.
func (r *Registry) ForceAlias(ctx context.Context, actor, name, alias string, n int) error {
	return r.setAlias(ctx, actor, name, alias, n, true, "")
}

// setAlias is SetAlias (or ForceAlias) by the writer via (see register).
func (r *Registry) setAlias(ctx context.Context, actor, name, alias string, n int, force bool, via string) error {
	if err := CheckAlias(alias); err != nil {
		return err
	}
	var forced *aliasState
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		v, err := findVersion(m, name, n)
		if err != nil {
			return nil, err
		}
		if err := checkWriter(m, name, via); err != nil {
			return nil, err
		}
		after := aliasState{Alias: alias, Version: n}
		if err := r.checkProtected(name, alias, v); err != nil {
			if !force {
				return nil, err
			}
			after.Forced, after.Status, after.Required = true, statusOf(v), r.protected[alias]
			forced = &after
		}
		var before any
		if old, ok := m.Aliases[alias]; ok {
			before = aliasState{Alias: alias, Version: old}
		}
		if m.Aliases == nil {
			m.Aliases = map[string]int{}
		}
		m.Aliases[alias] = n
		m.UpdatedAt = r.now()
		return []AuditEvent{r.event(actor, ActionSetAlias, name, n, before, after)}, nil
	})
	if err != nil {
		return err
	}
	if forced != nil {
		r.countInvalid(ctx, name, alias, forced.Status, "forced")
	}
	return r.publish(ctx, name, fmt.Sprintf("alias %s of %s set to version %d", alias, name, n))
}

// statusOf is a version's validation status: PENDING when it has none.
func statusOf(v *Version) Status {
	if v.Status == "" {
		return StatusPending
	}
	return v.Status
}

// Required returns the status a version must have for alias to point at it,
// and whether alias is protected.
func (r *Registry) Required(alias string) (Status, bool) {
	s, ok := r.protected[alias]
	return s, ok
}

// checkProtected refuses, with an error matching ErrConflict, to let a
// protected alias point at v when v lacks the status the alias requires.
func (r *Registry) checkProtected(name, alias string, v *Version) error {
	want, ok := r.protected[alias]
	if !ok {
		return nil
	}
	if got := statusOf(v); got != want {
		return conflict("alias %q of model %q is protected: it may point only at a version whose %s is %s, and version %d is %s; "+
			"set the version's %s tag to %s first, or have an admin force the move (\"force\": true)",
			alias, name, TagValidationStatus, want, v.Version, got, TagValidationStatus, want)
	}
	return nil
}

// CheckProtected reports whether alias may point at version n of the named
// model: it may unless the alias is protected and the version lacks the
// status required, which gives an error matching ErrConflict that names
// both statuses. An unknown model or version gives one matching
// ErrNotFound.
func (r *Registry) CheckProtected(ctx context.Context, name, alias string, n int) error {
	if _, ok := r.protected[alias]; !ok {
		return nil
	}
	v, err := r.Version(ctx, name, n)
	if err != nil {
		return err
	}
	return r.checkProtected(name, alias, v)
}

// DeleteAlias removes an alias.
func (r *Registry) DeleteAlias(ctx context.Context, actor, name, alias string) error {
	return r.deleteAlias(ctx, actor, name, alias, "")
}

// deleteAlias is DeleteAlias by the writer via (see register).
func (r *Registry) deleteAlias(ctx context.Context, actor, name, alias, via string) error {
	if err := CheckAlias(alias); err != nil {
		return err
	}
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		if m.CreatedAt.IsZero() {
			return nil, notFound("model %q not found", name)
		}
		if err := checkWriter(m, name, via); err != nil {
			return nil, err
		}
		old, ok := m.Aliases[alias]
		if !ok {
			return nil, notFound("model %q has no alias %q", name, alias)
		}
		delete(m.Aliases, alias)
		m.UpdatedAt = r.now()
		return []AuditEvent{r.event(actor, ActionDeleteAlias, name, old, aliasState{Alias: alias, Version: old}, nil)}, nil
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

// invalidation is the audit record of a protected alias left pointing at
// a version whose status no longer is the one the alias requires.
type invalidation struct {
	Alias    string `json:"alias"`
	Status   Status `json:"status"`
	Required Status `json:"required"`
}

// SetTag sets a tag on version n. Setting "validation_status" sets the
// version's Status. A status that a protected alias pointing at the
// version does not accept is set all the same (it is a fact), but it is
// recorded with an ActionProtectedAliasInvalidated event per such alias and
// counted in mlgate_protected_alias_invalidated.
func (r *Registry) SetTag(ctx context.Context, actor, name string, n int, key, value string) (*Version, error) {
	if err := CheckTag(key, value); err != nil {
		return nil, err
	}
	var (
		out         *Version
		aliases     []string
		invalidated []invalidation
	)
	err := r.meta.Update(ctx, name, func(m *Model) ([]AuditEvent, error) {
		invalidated = nil
		v, err := findVersion(m, name, n)
		if err != nil {
			return nil, err
		}
		was := statusOf(v)
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
		events := []AuditEvent{r.event(actor, ActionSetTag, name, n, before, tagState{key, value})}
		if now := statusOf(v); now != was {
			for _, a := range aliases {
				if want, ok := r.protected[a]; ok && now != want {
					inv := invalidation{Alias: a, Status: now, Required: want}
					invalidated = append(invalidated, inv)
					events = append(events, r.event(actor, ActionProtectedAliasInvalidated, name, n, invalidation{a, was, want}, inv))
				}
			}
		}
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	for _, inv := range invalidated {
		r.countInvalid(ctx, name, inv.Alias, inv.Status, "status_changed")
	}
	out.Aliases = aliases
	return out, r.publish(ctx, name, fmt.Sprintf("tag %s of version %d of %s set", key, n, name))
}

// RegisterMetrics records with m, as mlgate_protected_alias_invalidated,
// each time a protected alias is left pointing at a version without the
// status it requires: by model, alias, the version's status, and cause
// ("status_changed" when the version's status changed under the alias,
// "forced" when an admin forced the alias onto it). Call it before the
// registry is used.
func (r *Registry) RegisterMetrics(m metric.Meter) error {
	c, err := m.Int64Counter("mlgate_protected_alias_invalidated",
		metric.WithDescription("Times a protected alias (registry.protected_aliases) was left pointing at a version without the validation status it requires, by model, alias, status and cause."))
	if err != nil {
		return err
	}
	r.invalidated = c
	return nil
}

func (r *Registry) countInvalid(ctx context.Context, model, alias string, status Status, cause string) {
	if r.invalidated == nil {
		return
	}
	r.invalidated.Add(ctx, 1, metric.WithAttributes(
		attribute.String("model", model), attribute.String("alias", alias),
		attribute.String("status", string(status)), attribute.String("cause", cause)))
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
