// Package telemetry sets up mlgate's metrics: an OpenTelemetry MeterProvider
// whose instruments are exported in the Prometheus text format at /metrics,
// next to the Go runtime's and the process's (go_*, process_*) from the
// Prometheus client. Every metric of mlgate's own starts with "mlgate_".
package telemetry

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics owns a MeterProvider and the Prometheus registry it exports to.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	registry *prometheus.Registry
}

// New returns metrics exported to a fresh Prometheus registry, so that
// several gateways in one process (tests) keep their series apart. The
// registry also has the Go runtime's collector and the process's.
func New() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	return &Metrics{provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)), registry: reg}, nil
}

// Meter returns the meter of one part of mlgate.
func (m *Metrics) Meter(name string) metric.Meter {
	return m.provider.Meter("github.com/mlgate/mlgate/" + name)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// RegisterBuildInfo adds mlgate_build_info, a gauge of 1 whose labels say
// what runs: version (what GET /v2 reports), revision (the commit the
// binary was built from, see Revision; "unknown" when not known), go_version
// and onnxruntime_version. Registering it again with the same labels is
// not an error (a registry shared by several gateways in one process).
func (m *Metrics) RegisterBuildInfo(version, onnxruntimeVersion string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mlgate_build_info",
		Help: "A metric with a constant value of 1, labelled with the version, revision and Go version mlgate was built from and the ONNX Runtime it runs.",
		ConstLabels: prometheus.Labels{
			"version": orUnknown(version), "revision": revision(), "go_version": runtime.Version(),
			"onnxruntime_version": orUnknown(onnxruntimeVersion),
		},
	})
	g.Set(1)
	if err := m.registry.Register(g); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			return nil
		}
		return fmt.Errorf("mlgate_build_info: %w", err)
	}
	return nil
}

// Revision is the revision mlgate_build_info reports, set at build time
// with -ldflags "-X github.com/mlgate/mlgate/internal/telemetry.Revision=..."
// (the image's build does, from its REVISION argument). When it is empty,
// the VCS revision Go stamped into the binary is reported, if any.
var Revision string

// revision returns Revision, else the VCS revision the binary was built
// from, with "-modified" when its tree had changes, else "unknown".
func revision() string {
	if Revision != "" {
		return Revision
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-modified"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev + modified
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
