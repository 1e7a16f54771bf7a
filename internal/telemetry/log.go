package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// RequestIDKey is the context key of a request's id: a string, which the
// handler of LogHandler writes as request_id.
type RequestIDKey struct{}

// LogHandler wraps h so that a record logged with a context (InfoContext,
// ErrorContext, ...) carries that context's request_id and its trace_id and
// span_id, when it has them. They are added after the logger's groups, so
// they sit inside the last group opened with WithGroup.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id, _ := ctx.Value(RequestIDKey{}).(string); id != "" {
			r.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
