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
package registry
