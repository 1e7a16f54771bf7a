package mlflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/registry"
)

// The MLflow tags of a version that give what mlgate keeps beside the
// model file: a feature spec and a drift baseline, each the JSON of the
// metadata field of that name (see registry.Metadata).
const (
	TagFeatureSpec = "mlgate.feature_spec"
	TagBaseline    = "mlgate.baseline"
)

// Models is how a Mirror reads mlgate's registry (*registry.Registry).
type Models interface {
	Model(ctx context.Context, name string) (*registry.Model, error)
}

// Writer is how a Mirror writes to it: as the mirror of one MLflow server
// (*registry.Mirror).
type Writer interface {
	Register(ctx context.Context, name string, number int, body io.Reader, md registry.Metadata) (*registry.Version, error)
	SetAlias(ctx context.Context, name, alias string, n int) error
	DeleteAlias(ctx context.Context, name, alias string) error
	Skip(ctx context.Context, name string, n int, reason string) error
}

// Mirror keeps mlgate's copy of registered models in step with MLflow:
// each READY version with an ONNX model becomes an mlgate version of the
// same number (its description, MLflow tags, source and run id kept), the
// others are recorded as skipped with the reason, and the aliases follow
// MLflow's. A version already mirrored is never fetched again.
type Mirror struct {
	client   *Client
	models   Models
	target   Writer
	names    []string // the models to mirror; empty: every registered model
	maxBytes int64
	tmpDir   string
	log      *slog.Logger
	// Leading, when set, says whether this replica leads its fleet: only
	// the leader mirrors, the others see its changes through the control
	// plane.
	Leading func() bool
}

// NewMirror returns a mirror of the models named (all when none) from c
// into mlgate's registry, read through models and written through w;
// maxBytes bounds a model file, which is fetched into a temporary file in
// tmpDir.
func NewMirror(c *Client, models Models, w Writer, names []string, maxBytes int64, tmpDir string, log *slog.Logger) *Mirror {
	return &Mirror{client: c, models: models, target: w, names: names, maxBytes: maxBytes, tmpDir: tmpDir, log: log}
}

// Run syncs at once, then every poll until ctx ends. A sync that fails
// (MLflow unreachable, say) is logged and tried again at the next tick;
// what is mirrored already goes on serving.
func (m *Mirror) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if m.Leading != nil && !m.Leading() {
			// Not this replica's to do.
		} else if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("MLflow mirror: sync failed; the models mirrored so far go on serving", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync mirrors every model once: new versions, then aliases.
func (m *Mirror) Sync(ctx context.Context) error {
	names := m.names
	if len(names) == 0 {
		var err error
		if names, err = m.client.Models(ctx); err != nil {
			return err
		}
	}
	var errs []error
	for _, name := range names {
		if err := m.syncModel(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("model %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Mirror) syncModel(ctx context.Context, name string) error {
	remote, err := m.client.Model(ctx, name)
	if err != nil {
		return err
	}
	versions, err := m.client.Versions(ctx, name)
	if err != nil {
		return err
	}
	local, err := m.models.Model(ctx, name)
	if errkind.Of(err) == errkind.NotFound {
		local, err = &registry.Model{}, nil
	}
	if err != nil {
		return err
	}
	mirrored := map[int]bool{}
	for _, v := range local.Versions {
		mirrored[v.Version] = true
	}
	for _, s := range local.Skipped {
		mirrored[s.Version] = true
	}
	for _, v := range versions {
		if mirrored[v.Number] || v.Number <= local.LastVersion || v.Status != "READY" {
			continue // done, or gone, or not ready yet (tried again next sync)
		}
		if err := m.mirrorVersion(ctx, v); err != nil {
			return err
		}
		mirrored[v.Number] = true
	}
	return m.syncAliases(ctx, name, remote.Aliases, local.Aliases)
}

// mirrorVersion fetches version v's ONNX model and registers it, or
// records why it cannot be mirrored. It returns an error only for what may
// pass (MLflow unreachable): a version the next sync should try again.
func (m *Mirror) mirrorVersion(ctx context.Context, v Version) error {
	f, err := os.CreateTemp(m.tmpDir, "mlflow-*.onnx")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fetched, err := m.client.FetchONNX(ctx, v.Model, v.Number, f, m.maxBytes)
	if errors.Is(err, ErrNoONNX) || errkind.Of(err) == errkind.TooLarge {
		return m.skip(ctx, v, err.Error())
	}
	if err != nil {
		return err
	}
	md, err := metadataOf(v, fetched)
	if err != nil {
		return m.skip(ctx, v, err.Error())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = m.target.Register(ctx, v.Model, v.Number, f, md)
	switch errkind.Of(err) {
	case "":
		m.log.Info("MLflow mirror: version mirrored", "model", v.Model, "version", v.Number, "from", fetched.From)
		return nil
	case errkind.Invalid, errkind.TooLarge:
		// Not a model mlgate can serve, or metadata it refuses: as good as
		// no ONNX model.
		return m.skip(ctx, v, err.Error())
	}
	return err
}

func (m *Mirror) skip(ctx context.Context, v Version, reason string) error {
	m.log.Info("MLflow mirror: version skipped", "model", v.Model, "version", v.Number, "reason", reason)
	return m.target.Skip(ctx, v.Model, v.Number, reason)
}

// metadataOf is what mlgate keeps of MLflow version v beside its file:
// description, tags (those mlgate can hold), lineage (source, run id), and
// the feature spec and baseline of its MetadataFile, or of its mlgate.*
// tags, which win.
func metadataOf(v Version, fetched Fetched) (registry.Metadata, error) {
	md := registry.Metadata{
		Description: v.Description,
		Tags:        map[string]string{},
		Lineage:     registry.Lineage{RunID: v.RunID, Code: v.Source},
	}
	if fetched.Metadata != nil {
		var file struct {
			FeatureSpec json.RawMessage `json:"feature_spec"`
			Baseline    json.RawMessage `json:"baseline"`
		}
		if err := json.Unmarshal(fetched.Metadata, &file); err != nil {
			return registry.Metadata{}, fmt.Errorf("its %s is not a JSON object of feature_spec and baseline: %v", MetadataFile, err)
		}
		md.FeatureSpec, md.Baseline = file.FeatureSpec, file.Baseline
	}
	for k, val := range v.Tags {
		switch k {
		case TagFeatureSpec:
			md.FeatureSpec = json.RawMessage(val)
		case TagBaseline:
			md.Baseline = json.RawMessage(val)
		default:
			if registry.CheckTag(k, val) == nil {
				md.Tags[k] = val
			}
		}
	}
	md.Tags["mlflow.artifact"] = fetched.From
	for field, raw := range map[string]json.RawMessage{TagFeatureSpec: md.FeatureSpec, TagBaseline: md.Baseline} {
		if len(raw) > 0 && !json.Valid(raw) {
			return registry.Metadata{}, fmt.Errorf("its mlgate.* tags: %s is not valid JSON", field)
		}
	}
	data, err := json.Marshal(md)
	if err != nil {
		return registry.Metadata{}, err
	}
	// Checked as a registration's metadata is, so that a bad spec in a tag
	// names the tag's field.
	if _, err := registry.DecodeMetadata(data); err != nil {
		return registry.Metadata{}, fmt.Errorf("its mlgate.* tags: %w", err)
	}
	return md, nil
}

// syncAliases moves mlgate's aliases of a model to where MLflow's point,
// and removes those MLflow no longer has. An alias pointing at a version
// mlgate skipped, or that a protected alias refuses, stays where it was,
// with a warning.
func (m *Mirror) syncAliases(ctx context.Context, name string, remote, local map[string]int) error {
	aliases := make([]string, 0, len(remote))
	for a := range remote {
		aliases = append(aliases, a)
	}
	slices.Sort(aliases)
	for _, alias := range aliases {
		n := remote[alias]
		if cur, ok := local[alias]; ok && cur == n {
			continue
		}
		err := m.target.SetAlias(ctx, name, alias, n)
		switch errkind.Of(err) {
		case "":
			m.log.Info("MLflow mirror: alias moved", "model", name, "alias", alias, "version", n)
			continue
		case errkind.NotFound, errkind.Conflict:
			m.log.Warn("MLflow mirror: alias not moved", "model", name, "alias", alias, "version", n, "reason", err)
			continue
		}
		return err
	}
	for alias := range local {
		if _, ok := remote[alias]; ok {
			continue
		}
		if err := m.target.DeleteAlias(ctx, name, alias); err != nil && errkind.Of(err) != errkind.NotFound {
			return err
		}
	}
	return nil
}

// Source is how a mirror of the server at trackingURI names itself: the
// actor of its audit events and the source a mirrored model names.
func Source(trackingURI string) string {
	return "MLflow at " + strings.TrimSuffix(trackingURI, "/")
}
