package registry

import (
	"context"
	"io"
	"slices"
)

// Mirror writes the models mirrored from another registry, such as an
// MLflow Model Registry: it registers their versions under the numbers
// they have there, and moves their aliases as they move there. A model it
// creates is marked with the source it mirrors (Model.MirroredFrom), and
// mlgate's own API then refuses to register versions of it, delete them,
// or move its aliases, saying where to do it instead. Protected aliases
// (WithProtectedAliases) hold for mirrored models too: a move the
// protection refuses is refused to the mirror as well.
type Mirror struct {
	r      *Registry
	source string
}

// Mirror returns the writer of the models mirrored from source, a name
// that says where they come from ("MLflow at http://mlflow:5000"); it is
// the actor of the audit events of its changes.
func (r *Registry) Mirror(source string) *Mirror { return &Mirror{r: r, source: source} }

// Register stores the model file body as version number of the named
// model, with md. It is refused (ErrConflict) when the model is mlgate's
// own or another mirror's, or has had version number or a later one.
func (m *Mirror) Register(ctx context.Context, name string, number int, body io.Reader, md Metadata) (*Version, error) {
	if number < 1 {
		return nil, invalid("version %d of %q: a mirrored version's number is at least 1", number, name)
	}
	return m.r.register(ctx, m.source, name, body, md, number, m.source)
}

// SetAlias points alias of a mirrored model at version n.
func (m *Mirror) SetAlias(ctx context.Context, name, alias string, n int) error {
	return m.r.setAlias(ctx, m.source, name, alias, n, false, m.source)
}

// DeleteAlias removes an alias of a mirrored model.
func (m *Mirror) DeleteAlias(ctx context.Context, name, alias string) error {
	return m.r.deleteAlias(ctx, m.source, name, alias, m.source)
}

// Skip records that version n of a mirrored model is not mirrored, and
// why; a version skipped already keeps its first reason.
func (m *Mirror) Skip(ctx context.Context, name string, n int, reason string) error {
	if err := CheckModelName(name); err != nil {
		return err
	}
	return m.r.meta.Update(ctx, name, func(mod *Model) ([]AuditEvent, error) {
		if err := checkWriter(mod, name, m.source); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(mod.Skipped, func(s SkippedVersion) bool { return s.Version == n }) {
			return nil, nil
		}
		now := m.r.now()
		if mod.CreatedAt.IsZero() {
			mod.CreatedAt, mod.MirroredFrom = now, m.source
		}
		mod.UpdatedAt = now
		mod.Skipped = append(mod.Skipped, SkippedVersion{Version: n, Reason: reason})
		return []AuditEvent{m.r.event(m.source, ActionSkipVersion, name, n, nil, SkippedVersion{Version: n, Reason: reason})}, nil
	})
}

// checkWriter refuses a change to model m (named name) by the writer via
// ("" for mlgate's own API, else a mirror's source) that is not the
// model's: a mirrored model changes only through its mirror, and a mirror
// changes only the models it made.
func checkWriter(m *Model, name, via string) error {
	switch {
	case m.MirroredFrom == via:
		return nil
	case via == "":
		return conflict("model %q is mirrored from %s, which is where its versions are registered and its aliases moved; mlgate's copy is read-only", name, m.MirroredFrom)
	case m.CreatedAt.IsZero():
		return nil
	case m.MirroredFrom == "":
		return conflict("model %q is registered in mlgate itself, so %s cannot mirror a model of that name; rename one of them", name, via)
	}
	return conflict("model %q is mirrored from %s, not from %s", name, m.MirroredFrom, via)
}
