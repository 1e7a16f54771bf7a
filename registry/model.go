package registry

import (
	"encoding/json"
	"slices"
	"sort"
	"time"
)

// Status is a version's validation status, set through the tag
// "validation_status".
type Status string

// The validation statuses a version can have.
const (
	StatusPending Status = "PENDING"
	StatusPassed  Status = "PASSED"
	StatusFailed  Status = "FAILED"
)

// TagValidationStatus is the tag whose value is the version's Status.
const TagValidationStatus = "validation_status"

// AliasChampion is the alias served when a request names a model but no version.
const AliasChampion = "champion"

// TensorSpec describes one input or output of a model. Datatype uses the KServe
// V2 names (FP32, INT64, BYTES, ...); Shape has -1 for a dynamic dimension.
// Outputs that are not tensors (such as the sequence of maps that scikit-learn
// classifiers emit) have Datatype "JSON" and no shape.
type TensorSpec struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Signature is what a model takes and gives, read from the model itself.
type Signature struct {
	Inputs  []TensorSpec `json:"inputs"`
	Outputs []TensorSpec `json:"outputs"`
}

// Lineage says where a version came from.
type Lineage struct {
	Data  string `json:"data,omitempty"`
	Code  string `json:"code,omitempty"`
	RunID string `json:"run_id,omitempty"`
}

// Version is one immutable registered version of a model. Only its tags (and
// with them its Status) change after registration.
type Version struct {
	Name        string            `json:"name"`
	Version     int               `json:"version"`
	UUID        string            `json:"uuid"`
	SHA256      string            `json:"sha256"`
	Size        int64             `json:"size"`
	CreatedAt   time.Time         `json:"created_at"`
	CreatedBy   string            `json:"created_by"`
	Description string            `json:"description,omitempty"`
	Lineage     Lineage           `json:"lineage"`
	Tags        map[string]string `json:"tags"`
	Status      Status            `json:"status"`
	Signature   Signature         `json:"signature"`
	FeatureSpec json.RawMessage   `json:"feature_spec,omitempty"`
	Baseline    json.RawMessage   `json:"baseline,omitempty"`
	// Batching, when set, has the gateway fuse concurrent requests for the
	// version (dynamic batching).
	Batching *Batching `json:"batching,omitempty"`
	// Aliases lists the aliases pointing at this version. The registry derives
	// it from the model's alias map each time it hands a version out.
	Aliases []string `json:"aliases"`
}

// ArtifactKey is where the version's ONNX file is kept in the ArtifactStore.
func (v *Version) ArtifactKey() string { return v.Name + "/" + v.UUID + ".onnx" }

// Model is a registered model: its versions and the aliases that point at them.
type Model struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Versions in ascending order of number.
	Versions []*Version `json:"versions"`
	// Aliases maps alias name to version number.
	Aliases map[string]int `json:"aliases"`
	// LastVersion is the highest number ever given; numbers are never reused,
	// even after a version is deleted.
	LastVersion int `json:"last_version"`
	// MirroredFrom, when set, names the registry the model is mirrored
	// from ("MLflow at http://..."): its versions and aliases change only
	// through that mirror (see Registry.Mirror), and mlgate's API refuses to
	// change them.
	MirroredFrom string `json:"mirrored_from,omitempty"`
	// Skipped lists the versions of a mirrored model that were not mirrored,
	// each with the reason (no ONNX model among its files, say).
	Skipped []SkippedVersion `json:"skipped,omitempty"`
}

// SkippedVersion is a version of a mirrored model that mlgate does not
// serve, and why.
type SkippedVersion struct {
	Version int    `json:"version"`
	Reason  string `json:"reason"`
}

// Version returns version n, or nil.
func (m *Model) Version(n int) *Version {
	i, ok := slices.BinarySearchFunc(m.Versions, n, func(v *Version, n int) int { return v.Version - n })
	if !ok {
		return nil
	}
	return m.Versions[i]
}

// Latest returns the highest-numbered version, or nil when there is none.
func (m *Model) Latest() *Version {
	if len(m.Versions) == 0 {
		return nil
	}
	return m.Versions[len(m.Versions)-1]
}

// aliasesOf returns the sorted aliases pointing at version n.
func (m *Model) aliasesOf(n int) []string {
	out := []string{}
	for a, v := range m.Aliases {
		if v == n {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// withDerived fills every version's Aliases from the model's alias map.
func (m *Model) withDerived() *Model {
	for _, v := range m.Versions {
		v.Aliases = m.aliasesOf(v.Version)
	}
	return m
}

// AuditEvent records one change to the registry, or to another part of the
// gateway that keeps its trail here (endpoints).
type AuditEvent struct {
	// Seq orders events; the store assigns it.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Model   string    `json:"model,omitempty"`
	Version int       `json:"version,omitempty"`
	// Endpoint names the endpoint a traffic change concerns.
	Endpoint string `json:"endpoint,omitempty"`
	// View names the feature view a view change concerns.
	View   string          `json:"view,omitempty"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// Audit actions.
const (
	ActionRegisterVersion = "register_version"
	ActionDeleteVersion   = "delete_version"
	ActionSetAlias        = "set_alias"
	ActionDeleteAlias     = "delete_alias"
	ActionSetTag          = "set_tag"
	// ActionProtectedAliasInvalidated: a version's validation status changed
	// to one that a protected alias pointing at it does not accept. Before
	// and after hold the alias, the status and the status required.
	ActionProtectedAliasInvalidated = "protected_alias_invalidated"
	// ActionSkipVersion: a mirror did not mirror a version (see
	// Mirror.Skip); after holds the version and the reason.
	ActionSkipVersion = "skip_version"
)

// AuditQuery selects audit events: those after Seq After (and, when Before
// is set, before Seq Before), for Model, Endpoint and View when set, at most
// Limit of them, in ascending order of Seq, or descending when Newest is
// set: then the Limit newest are selected, and Before pages on toward the
// oldest.
type AuditQuery struct {
	Model    string
	Endpoint string
	View     string
	After    uint64
	Before   uint64
	Newest   bool
	Limit    int
}
