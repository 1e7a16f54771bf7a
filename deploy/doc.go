// Package deploy holds mlgate's deployment material: the Dockerfile of its
// image, the Kubernetes manifests of a fleet (kubernetes/), and the scripts
// that run the test servers on loopback. It has no code; its test decodes
// every manifest strictly against the Kubernetes API types and checks that
// they fit together and with mlgate's own configuration.
package deploy
