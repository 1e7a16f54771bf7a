// Package registry keeps registered models: immutable versions with their ONNX
// artifact, signature, tags, lineage and validation status; aliases such as
// "champion" that point at one version; and an audit trail of every change.
//
// The Registry type holds the rules. Where things are kept is behind two
// interfaces declared here: MetaStore for records and the audit trail
// (registry/bolt is the embedded one), ArtifactStore for model files
// (registry/localfs keeps them on local disk). Whether an upload is a loadable
// model is decided by an Inspector, which the serving layer provides with ONNX
// Runtime.
//
// An alias may be protected (WithProtectedAliases, from the configuration's
// registry.protected_aliases; by default champion requires PASSED): it then
// points only at a version whose validation status is the one required.
// SetAlias refuses another move with ErrConflict, ForceAlias makes it and
// records the force in the audit trail, and the check runs inside the
// MetaStore's Update, so it holds on every backend and replica. A status
// that changes under a protected alias is kept, and recorded as an
// ActionProtectedAliasInvalidated event.
package registry
