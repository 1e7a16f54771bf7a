package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/mlgate/mlgate/internal/config"
)

// newObject returns an empty object of the Kubernetes API type that
// apiVersion and kind name, or an error for a kind the manifests may not use.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q of apiVersion %q", kind, apiVersion)
}

// splitDocuments splits a multi-document YAML file at its "---" lines and
// drops the documents that hold only comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	content := false
	flush := func() {
		if content {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
		content = false
	}
	for line := range bytes.Lines(data) {
		trimmed := bytes.TrimSpace(line)
		if bytes.Equal(trimmed, []byte("---")) && line[0] == '-' {
			flush()
			continue
		}
		if len(trimmed) > 0 && trimmed[0] != '#' {
			content = true
		}
		cur.Write(line)
	}
	flush()
	return docs
}

// decodeStrict decodes one manifest into the API type its kind names,
// failing on an unknown or duplicate field.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	// As the API server decodes: YAML to JSON refusing a repeated key, then
	// JSON matched case-sensitively (encoding/json would take "readinessprobe"
	// for readinessProbe), refusing an unknown or duplicate field.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	return obj, nil
}

// fleet is every object of kubernetes/*.yaml, by kind and name.
type fleet struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	claims      map[string]*corev1.PersistentVolumeClaim
	budgets     map[string]*policyv1.PodDisruptionBudget
	autoscalers map[string]*autoscalingv2.HorizontalPodAutoscaler
}

func loadFleet(t *testing.T) *fleet {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/ (%v)", err)
	}
	f := &fleet{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, budgets: map[string]*policyv1.PodDisruptionBudget{},
		autoscalers: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs := splitDocuments(data)
		if len(docs) == 0 {
			t.Errorf("%s holds no manifest", file)
		}
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", file, i+1, err)
				continue
			}
			name := obj.(metav1.Object).GetName()
			if name == "" {
				t.Errorf("%s, document %d: no metadata.name", file, i+1)
			}
			if ns := obj.(metav1.Object).GetNamespace(); ns != "" {
				t.Errorf("%s: %s names namespace %q; the manifests take the namespace of kubectl apply -n", file, name, ns)
			}
			dup := false
			switch o := obj.(type) {
			case *appsv1.Deployment:
				dup = add(f.deployments, name, o)
			case *corev1.Service:
				dup = add(f.services, name, o)
			case *corev1.ConfigMap:
				dup = add(f.configMaps, name, o)
			case *corev1.Secret:
				dup = add(f.secrets, name, o)
			case *corev1.PersistentVolumeClaim:
				dup = add(f.claims, name, o)
			case *policyv1.PodDisruptionBudget:
				dup = add(f.budgets, name, o)
			case *autoscalingv2.HorizontalPodAutoscaler:
				dup = add(f.autoscalers, name, o)
			}
			if dup {
				t.Errorf("%s: %T %q is defined twice", file, obj, name)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return f
}

// add puts v in m under name and reports whether name was there already.
func add[T any](m map[string]T, name string, v T) bool {
	_, dup := m[name]
	m[name] = v
	return dup
}

func TestDecodeStrict(t *testing.T) {
	for _, tc := range []struct {
		name, doc, wantErr string
	}{
		{"known", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n", ""},
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatas: {k: v}\n", `unknown field "datas"`},
		{"unknown nested field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: a, readinessprobe: {}}]}}}\n", `unknown field "spec.template.spec.containers[0].readinessprobe"`},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\ndata: {k: w}\n", `key "data" already set`},
		{"field in the wrong case", "apiVersion: v1\nkind: ConfigMap\nmetadata: {Name: a}\n", `unknown field "metadata.Name"`},
		{"unknown kind", "apiVersion: v1\nkind: ConfigMapp\nmetadata: {name: a}\n", `unknown kind "ConfigMapp"`},
		{"old apiVersion", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\n", "unknown kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tc.doc))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("decode: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("decode: got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "# a comment only\n---\na: 1\n---\n# note\nb: |\n  ---\n  x\n---\n"
	got := splitDocuments([]byte(in))
	want := []string{"a: 1\n", "# note\nb: |\n  ---\n  x\n"}
	if len(got) != len(want) {
		t.Fatalf("got %d documents %q, want %q", len(got), got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("document %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// one returns the only object of m, failing unless there is exactly one.
func one[T any](t *testing.T, what string, m map[string]T) T {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("want exactly one %s, got %d", what, len(m))
	}
	for _, v := range m {
		return v
	}
	panic("unreachable")
}

// gateway returns the Deployment and its mlgate container.
func gateway(t *testing.T, f *fleet) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := one(t, "Deployment", f.deployments)
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "mlgate" {
			return d, c
		}
	}
	t.Fatalf("Deployment %s has no container named mlgate", d.Name)
	return nil, nil
}

// servingPort is the mlgate container's port named http.
func servingPort(t *testing.T, c *corev1.Container) int32 {
	t.Helper()
	return namedPort(t, c, "http")
}

// namedPort is the container port of c named name.
func namedPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

// resolvePort returns the container port that p (a number or a port's
// name) names, or 0 when it names none.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if p.Type == intstr.Int && cp.ContainerPort == p.IntVal || p.Type == intstr.String && cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

func TestFleetManifestsFitTogether(t *testing.T) {
	f := loadFleet(t)
	d, c := gateway(t, f)
	pod := d.Spec.Template
	port := servingPort(t, c)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		t.Errorf("Deployment %s: want at least 3 replicas, got %v", d.Name, d.Spec.Replicas)
	}
	if !selects(t, d.Spec.Selector, pod.Labels) {
		t.Errorf("Deployment %s: selector %v does not match its pods' labels %v", d.Name, d.Spec.Selector, pod.Labels)
	}

	probes := []struct {
		name, path string
		probe      *corev1.Probe
	}{
		{"readinessProbe", "/v2/health/ready", c.ReadinessProbe},
		{"livenessProbe", "/v2/health/live", c.LivenessProbe},
		{"startupProbe", "/v2/health/live", c.StartupProbe},
	}
	for _, p := range probes {
		switch {
		case p.probe == nil && p.name == "startupProbe":
		case p.probe == nil || p.probe.HTTPGet == nil:
			t.Errorf("container %s: want an HTTP GET %s on %s", c.Name, p.name, p.path)
		case p.probe.HTTPGet.Path != p.path:
			t.Errorf("container %s: %s gets %s, want %s", c.Name, p.name, p.probe.HTTPGet.Path, p.path)
		case resolvePort(c, p.probe.HTTPGet.Port) != port:
			t.Errorf("container %s: %s port %s is not the serving port %d", c.Name, p.name, p.probe.HTTPGet.Port.String(), port)
		}
	}

	svc := one(t, "Service", f.services)
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Errorf("Service %s: selector %v does not match the Deployment's pods %v", svc.Name, svc.Spec.Selector, pod.Labels)
	}
	if len(svc.Spec.Ports) == 0 {
		t.Errorf("Service %s has no port", svc.Name)
	}
	// Each port of the Service reaches the container's port of its name:
	// http the serving port, grpc the gRPC one.
	for _, sp := range svc.Spec.Ports {
		if want := namedPort(t, c, sp.Name); resolvePort(c, sp.TargetPort) != want {
			t.Errorf("Service %s: port %s targets %s, not the container's %s port %d", svc.Name, sp.Name, sp.TargetPort.String(), sp.Name, want)
		}
	}

	// What the pod mounts and reads exists.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			cm, ok := f.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("volume %s: ConfigMap %s has no key %s", v.Name, cm.Name, it.Key)
				}
			}
		case v.Secret != nil:
			s, ok := f.secrets[v.Secret.SecretName]
			if !ok {
				t.Errorf("volume %s: no Secret %s", v.Name, v.Secret.SecretName)
				continue
			}
			for _, it := range v.Secret.Items {
				if _, ok := secretValue(s, it.Key); !ok {
					t.Errorf("volume %s: Secret %s has no key %s", v.Name, s.Name, it.Key)
				}
			}
		case v.PersistentVolumeClaim != nil:
			if _, ok := f.claims[v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("volume %s: no PersistentVolumeClaim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("container %s mounts %s, which is no volume of the pod", c.Name, m.Name)
		}
	}
	// Stopping: the preStop sleep outlasts drain_delay, and the grace period
	// the sleep and shutdown_timeout.
	cfg, env := gatewayConfig(t, f, c)
	pre := c.Lifecycle
	if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil {
		t.Fatalf("container %s: want a preStop sleep", c.Name)
	}
	sleep := time.Duration(pre.PreStop.Sleep.Seconds) * time.Second
	if sleep <= time.Duration(cfg.Server.DrainDelay) {
		t.Errorf("preStop sleeps %s, want longer than server.drain_delay %s", sleep, cfg.Server.DrainDelay)
	}
	var grace time.Duration // unset: Kubernetes' default, 30 s, which the test does not assume
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := sleep + time.Duration(cfg.Server.ShutdownTimeout); grace <= need {
		t.Errorf("terminationGracePeriodSeconds is %s: want more than the preStop sleep plus server.shutdown_timeout (%s)", grace, need)
	}

	// Not root, and a read-only root file system with the places mlgate
	// writes mounted.
	user := runAsUser(pod.Spec.SecurityContext, c.SecurityContext)
	if user == nil || *user == 0 || !runAsNonRoot(pod.Spec.SecurityContext, c.SecurityContext) {
		t.Errorf("container %s: want runAsNonRoot and a runAsUser other than 0, got user %v", c.Name, user)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container %s: want readOnlyRootFilesystem and no privilege escalation", c.Name)
	}
	// /tmp: the image sets no TMPDIR, and model uploads are spooled there.
	for _, dir := range []string{cfg.DataDir, "/tmp"} {
		if m := mountAt(c, dir); m == nil || m.ReadOnly {
			t.Errorf("container %s: %s must be a writable mount (the root file system is read-only)", c.Name, dir)
		}
	}

	// One fleet: the control plane in PostgreSQL, each replica named by its
	// pod, and the inference tables in one directory on a shared volume,
	// where each replica's files carry its name.
	if !cfg.ControlPlane.Fleet() {
		t.Errorf("control_plane.store is %q: want postgres, so that every replica serves the same models, endpoints and monitors", cfg.ControlPlane.Store)
	}
	if env["MLGATE_CONTROL_PLANE_REPLICA_ID"] != "metadata.name" {
		t.Errorf("env MLGATE_CONTROL_PLANE_REPLICA_ID: want the pod's name (fieldRef metadata.name), so that replicas sharing the tables write files of their own")
	}
	tables := cfg.TablesDir()
	if m := mountAt(c, tables); m == nil {
		t.Errorf("container %s: nothing is mounted at the inference tables' directory %s", c.Name, tables)
	} else {
		v := vols[m.Name]
		if v.PersistentVolumeClaim == nil {
			t.Errorf("volume %s at %s: want a PersistentVolumeClaim", m.Name, tables)
		} else if pvc := f.claims[v.PersistentVolumeClaim.ClaimName]; pvc != nil && !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
			t.Errorf("PersistentVolumeClaim %s: every replica mounts it, want ReadWriteMany, got %v", pvc.Name, pvc.Spec.AccessModes)
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("mount %s: a sub-path (%q%q) gives each replica a table of its own; the fleet shares one directory", m.Name, m.SubPath, m.SubPathExpr)
		}
	}

	budget := one(t, "PodDisruptionBudget", f.budgets)
	if !selects(t, budget.Spec.Selector, pod.Labels) {
		t.Errorf("PodDisruptionBudget %s: selector does not match the Deployment's pods", budget.Name)
	}
	replicas := int(*d.Spec.Replicas)
	switch {
	case budget.Spec.MaxUnavailable != nil && budget.Spec.MinAvailable == nil:
		if n := budget.Spec.MaxUnavailable.IntValue(); n < 1 || replicas-n < 2 {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %d of %d replicas, want at least 1 evictable and 2 serving", budget.Name, n, replicas)
		}
	case budget.Spec.MinAvailable != nil && budget.Spec.MaxUnavailable == nil:
		if n := budget.Spec.MinAvailable.IntValue(); n < 2 || n >= replicas {
			t.Errorf("PodDisruptionBudget %s: minAvailable %d of %d replicas, want at least 2 serving and 1 evictable", budget.Name, n, replicas)
		}
	default:
		t.Errorf("PodDisruptionBudget %s: set one of minAvailable (as a count) and maxUnavailable", budget.Name)
	}

	hpa := one(t, "HorizontalPodAutoscaler", f.autoscalers)
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HorizontalPodAutoscaler %s scales %s %s %s, want apps/v1 Deployment %s", hpa.Name, ref.APIVersion, ref.Kind, ref.Name, d.Name)
	}
	if hpa.Spec.MinReplicas == nil || int(*hpa.Spec.MinReplicas) != replicas || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HorizontalPodAutoscaler %s: want minReplicas equal to the Deployment's %d replicas and maxReplicas above it", hpa.Name, replicas)
	}
	cpu := false
	for _, m := range hpa.Spec.Metrics {
		cpu = cpu || m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !cpu || !ok {
		t.Errorf("HorizontalPodAutoscaler %s: want a CPU metric, measured against the container's CPU request (metric %v, request %v)", hpa.Name, cpu, ok)
	}
}

// podEnv resolves the container's environment as the kubelet would: values
// from a Secret or ConfigMap key must exist; a field reference resolves to
// its path (metadata.name, ...).
func podEnv(t *testing.T, f *fleet, c *corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch from := e.ValueFrom; {
		case from == nil:
			env[e.Name] = e.Value
		case from.SecretKeyRef != nil:
			s, ok := f.secrets[from.SecretKeyRef.Name]
			v, has := "", false
			if ok {
				v, has = secretValue(s, from.SecretKeyRef.Key)
			}
			if !has {
				t.Errorf("env %s: no key %s in Secret %s", e.Name, from.SecretKeyRef.Key, from.SecretKeyRef.Name)
			}
			env[e.Name] = v
		case from.ConfigMapKeyRef != nil:
			cm, ok := f.configMaps[from.ConfigMapKeyRef.Name]
			v, has := "", false
			if ok {
				v, has = cm.Data[from.ConfigMapKeyRef.Key]
			}
			if !has {
				t.Errorf("env %s: no key %s in ConfigMap %s", e.Name, from.ConfigMapKeyRef.Key, from.ConfigMapKeyRef.Name)
			}
			env[e.Name] = v
		case from.FieldRef != nil:
			env[e.Name] = from.FieldRef.FieldPath
		default:
			t.Errorf("env %s: a source the test does not resolve", e.Name)
		}
	}
	return env
}

func secretValue(s *corev1.Secret, key string) (string, bool) {
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// mountAt returns the container's mount whose path is exactly dir.
func mountAt(c *corev1.Container, dir string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if path.Clean(c.VolumeMounts[i].MountPath) == path.Clean(dir) {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// fileIn returns the content of the file at p in the container, when a
// ConfigMap or Secret volume provides it.
func fileIn(t *testing.T, f *fleet, c *corev1.Container, p string) string {
	t.Helper()
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		t.Fatalf("no volume of container %s holds %s", c.Name, p)
	}
	rel := strings.TrimPrefix(p, strings.TrimSuffix(best.MountPath, "/")+"/")
	for _, v := range one(t, "Deployment", f.deployments).Spec.Template.Spec.Volumes {
		if v.Name != best.Name {
			continue
		}
		keyOf := func(items []corev1.KeyToPath) (string, bool) {
			if len(items) == 0 {
				return rel, true
			}
			for _, it := range items {
				if it.Path == rel {
					return it.Key, true
				}
			}
			return "", false
		}
		switch {
		case v.ConfigMap != nil:
			if key, ok := keyOf(v.ConfigMap.Items); ok {
				if s, ok := f.configMaps[v.ConfigMap.Name].Data[key]; ok {
					return s
				}
			}
		case v.Secret != nil:
			if key, ok := keyOf(v.Secret.Items); ok {
				if s, ok := secretValue(f.secrets[v.Secret.SecretName], key); ok {
					return s
				}
			}
		}
	}
	t.Fatalf("volume %s mounted at %s provides no file %s", best.Name, best.MountPath, rel)
	return ""
}

// gatewayConfig loads mlgate's configuration as the pod's mlgate serve
// would: its --config file from the ConfigMap, then its MLGATE_ environment,
// with mlgate's own strict loader. It returns the environment as well (see
// podEnv).
func gatewayConfig(t *testing.T, f *fleet, c *corev1.Container) (config.Config, map[string]string) {
	t.Helper()
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container %s: want --config FILE in args, got %q", c.Name, c.Args)
	}
	file := filepath.Join(t.TempDir(), "mlgate.yaml")
	if err := os.WriteFile(file, []byte(fileIn(t, f, c, c.Args[i+1])), 0o600); err != nil {
		t.Fatal(err)
	}
	env := podEnv(t, f, c)
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg := config.Defaults()
	if err := config.Load(file, environ, &cfg); err != nil {
		t.Fatalf("mlgate's configuration of the Deployment does not load: %v", err)
	}
	return cfg, env
}

func TestConfigMapIsAValidGatewayConfig(t *testing.T) {
	f := loadFleet(t)
	_, c := gateway(t, f)
	cfg, _ := gatewayConfig(t, f, c)

	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port != strconv.Itoa(int(servingPort(t, c))) {
		t.Errorf("listen %q: want the container's serving port %d", cfg.Listen, servingPort(t, c))
	}
	if _, _, public := cfg.PublicListen(); !public {
		t.Errorf("listen %q is loopback: the Service could not reach it", cfg.Listen)
	}
	_, port, err = net.SplitHostPort(cfg.GRPC.Listen)
	if err != nil || port != strconv.Itoa(int(namedPort(t, c, "grpc"))) {
		t.Errorf("grpc.listen %q: want the container's grpc port %d", cfg.GRPC.Listen, namedPort(t, c, "grpc"))
	}
	if cfg.OnlineStore.Default == "embedded" {
		t.Errorf("online_store.default is embedded: each replica would read features of its own")
	}
	if cfg.Tables.Enabled && cfg.Tables.PIIKey == "" {
		t.Errorf("inference_tables.pii_key is empty: each replica would hash PII with a key of its own")
	}

	// The keys file comes from the Secret. As shipped, its placeholders stop
	// start-up; with digests in their place it decodes strictly.
	if cfg.Auth.KeysFile == "" {
		t.Fatal("auth.keys_file is not set: a gateway listening beyond loopback needs keys")
	}
	keys := fileIn(t, f, c, cfg.Auth.KeysFile)
	const placeholder = "REPLACE_WITH_SHA256_OF_THE_KEY"
	if !strings.Contains(keys, placeholder) {
		t.Fatalf("the Secret's keys file has no %s placeholder", placeholder)
	}
	for _, tc := range []struct {
		name, content string
		valid         bool
	}{
		{"as shipped", keys, false},
		{"filled in", strings.ReplaceAll(keys, placeholder, strings.Repeat("ab", 32)), true},
	} {
		p := filepath.Join(t.TempDir(), "keys.yaml")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := (&config.Auth{KeysFile: p}).AllKeys()
		switch {
		case tc.valid && err != nil:
			t.Errorf("keys file %s: %v", tc.name, err)
		case tc.valid && len(got) == 0:
			t.Errorf("keys file %s holds no key", tc.name)
		case !tc.valid && err == nil:
			t.Errorf("keys file %s loads; its placeholders must stop start-up", tc.name)
		}
	}
}

// dockerfile is what the test reads of a Dockerfile: its instructions, with
// continuation lines joined and comments dropped.
type dockerfile struct {
	instructions [][2]string // keyword (upper case), arguments
}

func readDockerfile(t *testing.T, name string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	var cur strings.Builder
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if trimmed := strings.TrimSpace(line); cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		cur.WriteString(line)
		kw, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		df.instructions = append(df.instructions, [2]string{strings.ToUpper(kw), strings.TrimSpace(args)})
		cur.Reset()
	}
	return df
}

// all returns the arguments of every instruction kw, in order.
func (df dockerfile) all(kw string) []string {
	var out []string
	for _, in := range df.instructions {
		if in[0] == kw {
			out = append(out, in[1])
		}
	}
	return out
}

// makeVar returns the value of the Makefile's variable name (NAME := value).
func makeVar(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("the Makefile sets no %s", name)
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	df := readDockerfile(t, "Dockerfile")

	froms := df.all("FROM")
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM", len(froms))
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	builder := "golang:" + string(goVersion[1])
	if !slices.ContainsFunc(froms, func(f string) bool { return strings.HasPrefix(f, builder+"-") || strings.HasPrefix(f, builder+" ") }) {
		t.Errorf("no build stage FROM %s (go.mod's Go), got %q", builder, froms)
	}
	runtime := strings.Fields(froms[len(froms)-1])
	if len(runtime) == 0 || !strings.HasPrefix(runtime[0], "debian:") || !strings.HasSuffix(runtime[0], "-slim") {
		t.Errorf("the runtime stage is FROM %q, want Debian slim", froms[len(froms)-1])
	}
	if len(runtime) > 1 {
		t.Errorf("the runtime stage is named (%q); the last stage is the image", froms[len(froms)-1])
	}

	// ONNX Runtime: the Makefile's version, fetched the Makefile's way.
	args := map[string]string{}
	for _, a := range df.all("ARG") {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		}
	}
	if want := makeVar(t, "ORT_VERSION"); args["ORT_VERSION"] != want {
		t.Errorf("ARG ORT_VERSION=%s, want the Makefile's %s", args["ORT_VERSION"], want)
	}
	if len(args["ORT_SHA256"]) != 64 {
		t.Errorf("ARG ORT_SHA256=%q, want a sha256 digest", args["ORT_SHA256"])
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	member := regexp.MustCompile(`package/bin/\S+/libonnxruntime\.so\.1`).Find(makefile)
	runs := strings.Join(df.all("RUN"), "\n")
	for _, want := range []string{"npm pack --silent onnxruntime-node@${ORT_VERSION}", string(member), "sha256sum -c"} {
		if member == nil || !strings.Contains(runs, want) {
			t.Errorf("no RUN has %q: fetch ONNX Runtime as the Makefile does", want)
		}
	}
	env := strings.Join(df.all("ENV"), " ")
	copies := strings.Join(df.all("COPY"), "\n")
	lib := regexp.MustCompile(`ONNXRUNTIME_LIB=(\S+)`).FindStringSubmatch(env)
	if lib == nil || !strings.Contains(copies, " "+lib[1]) {
		t.Errorf("ENV ONNXRUNTIME_LIB must name the path the library is copied to (ENV %q)", env)
	}

	users := df.all("USER")
	if len(users) == 0 {
		t.Fatal("no USER: the image would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1], ":")
	uid, err := strconv.ParseInt(user, 10, 64)
	if err != nil || uid == 0 {
		t.Errorf("USER %s: want a numeric user other than 0, so that runAsNonRoot can check it", users[len(users)-1])
	}

	var entry []string
	if e := df.all("ENTRYPOINT"); len(e) > 0 {
		if err := json.Unmarshal([]byte(e[len(e)-1]), &entry); err != nil {
			t.Errorf("ENTRYPOINT %s: want the exec (JSON) form: %v", e[len(e)-1], err)
		}
	}
	if len(entry) < 2 || path.Base(entry[0]) != "mlgate" || entry[1] != "serve" {
		t.Errorf("ENTRYPOINT %q, want mlgate serve", entry)
	}
	if len(df.all("VOLUME")) == 0 {
		t.Error("no VOLUME for the data directory")
	}

	// The image and the Deployment agree on the user and the port.
	f := loadFleet(t)
	d, c := gateway(t, f)
	if u := runAsUser(d.Spec.Template.Spec.SecurityContext, c.SecurityContext); u == nil || *u != uid {
		t.Errorf("the Deployment runs as user %v, the image as %d", u, uid)
	}
	for _, name := range []string{"http", "grpc"} {
		port := strconv.Itoa(int(namedPort(t, c, name)))
		if !slices.ContainsFunc(df.all("EXPOSE"), func(e string) bool { return slices.Contains(strings.Fields(e), port) }) {
			t.Errorf("the image exposes %q, not the Deployment's %s port %s", df.all("EXPOSE"), name, port)
		}
	}
}

// runAsUser is the container's user: its own securityContext's, else the pod's.
func runAsUser(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) *int64 {
	if c != nil && c.RunAsUser != nil {
		return c.RunAsUser
	}
	if pod != nil {
		return pod.RunAsUser
	}
	return nil
}

func runAsNonRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	if c != nil && c.RunAsNonRoot != nil {
		return *c.RunAsNonRoot
	}
	return pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
}
