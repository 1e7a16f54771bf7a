package featurestore

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// noSpan is the span of an untraced read: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// startLookup starts the span of one read from the named store, a child of
// ctx's span. Without a tracer, or outside a trace, it starts nothing.
func (s *Service) startLookup(ctx context.Context, store string, ls []Lookup) (context.Context, trace.Span) {
	if s.tracer == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noSpan
	}
	ctx, span := s.tracer.Start(ctx, "feature.lookup")
	if span.IsRecording() {
		keys := 0
		for _, l := range ls {
			keys += len(l.Keys)
		}
		span.SetAttributes(attribute.String("mlgate.store", store), attribute.Int("mlgate.keys", keys))
	}
	return ctx, span
}

// endLookup ends a read's span, marked failed by err unless err is nil.
func endLookup(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
