package featurestore

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// auditEvent is one call of an Auditor.
type auditEvent struct {
	actor, action, view string
	before, after       string // the features of the views, "-" for none
}

// features lists a view's features for an auditEvent.
func features(v any) string {
	view, ok := v.(*View)
	if !ok || view == nil {
		return "-"
	}
	var names []string
	for _, f := range view.Features {
		names = append(names, f.Name)
	}
	return fmt.Sprint(names)
}

// TestViewChangesAudited creates, changes and deletes a view and checks the
// audit trail each change leaves, and that a change the trail cannot record
// is made but reported.
func TestViewChangesAudited(t *testing.T) {
	var events []auditEvent
	var auditErr error
	audit := func(ctx context.Context, actor, action, view string, before, after any) error {
		events = append(events, auditEvent{actor, action, view, features(before), features(after)})
		return auditErr
	}
	s, _, _ := flakyService(t, Options{Audit: audit})
	view := func(fs ...string) *View {
		v := &View{Name: "score", Entities: []string{"user_id"}}
		for _, f := range fs {
			v.Features = append(v.Features, Feature{Name: f, Type: Float})
		}
		return v
	}
	tests := []struct {
		name   string
		change func(ctx context.Context) error
		want   auditEvent
	}{
		{"create", func(ctx context.Context) error {
			_, _, err := s.PutView(ctx, "alice", view("a"))
			return err
		}, auditEvent{"alice", ActionCreateView, "score", "-", "[a]"}},
		{"change", func(ctx context.Context) error {
			_, _, err := s.PutView(ctx, "bob", view("a", "b"))
			return err
		}, auditEvent{"bob", ActionChangeView, "score", "[a]", "[a b]"}},
		{"delete", func(ctx context.Context) error { return s.DeleteView(ctx, "carol", "score") },
			auditEvent{"carol", ActionDeleteView, "score", "[a b]", "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events = nil
			if err := tt.change(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 || events[0] != tt.want {
				t.Errorf("audit events %+v, want [%+v]", events, tt.want)
			}
		})
	}

	// Refused changes leave no event.
	events = nil
	if _, _, err := s.PutView(t.Context(), "dave", &View{Name: "Bad"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid view: %v, want ErrInvalid", err)
	}
	if err := s.DeleteView(t.Context(), "dave", "score"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a missing view: %v, want ErrNotFound", err)
	}
	if len(events) != 0 {
		t.Errorf("refused changes were audited: %+v", events)
	}

	auditErr = errors.New("audit store is read-only")
	_, _, err := s.PutView(t.Context(), "erin", view("c"))
	if !errors.Is(err, auditErr) {
		t.Errorf("a change the audit trail cannot record: %v, want its error", err)
	}
	if _, err := s.View("score"); err != nil {
		t.Errorf("the change was not made: %v", err)
	}
}
