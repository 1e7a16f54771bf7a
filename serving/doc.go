// Package serving is mlgate's HTTP face. It composes the domain packages: the
// registry API under /v1, the KServe V2 (Open Inference Protocol) endpoints
// under /v2, the Catalog of loaded ONNX Runtime sessions that inference reads
// through an atomically swapped snapshot, and the one function (statusOf)
// that maps errors to status codes.
package serving
