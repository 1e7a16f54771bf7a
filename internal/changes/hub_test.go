package changes

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestHub(t *testing.T) {
	h := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var got []string
	record := func(who string) Handler {
		return func(_ context.Context, e Event) error {
			got = append(got, who+":"+string(e.Kind)+":"+e.Name)
			return nil
		}
	}
	h.Subscribe("catalog", record("catalog"), Model, View)
	h.Subscribe("routes", record("routes"), Endpoint)
	h.Subscribe("broken", func(context.Context, Event) error { return errors.New("store down") }, Monitor)
	h.Subscribe("panics", func(context.Context, Event) error { panic("boom") }, Monitor)
	// A subscriber may publish in turn.
	h.Subscribe("nested", func(ctx context.Context, e Event) error { return h.Publish(ctx, Endpoint, "from-"+e.Name) }, View)

	tests := []struct {
		kind    Kind
		name    string
		want    []string
		wantErr []string
	}{
		{Model, "linear", []string{"catalog:model:linear"}, nil},
		{View, "user", []string{"catalog:view:user", "routes:endpoint:from-user"}, nil},
		{Endpoint, "churn", []string{"routes:endpoint:churn"}, nil},
		{Monitor, "m", nil, []string{`broken after monitor "m"`, "store down", `panics after monitor "m"`}},
	}
	for _, tt := range tests {
		got = nil
		err := h.Publish(t.Context(), tt.kind, tt.name)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s %s reached %q, want %q", tt.kind, tt.name, got, tt.want)
		}
		for _, w := range tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s: error %v, want it to say %q", tt.kind, tt.name, err, w)
			}
		}
		if tt.wantErr == nil && err != nil {
			t.Errorf("%s %s: %v", tt.kind, tt.name, err)
		}
	}
	if r := h.Revision(); r != 5 {
		t.Errorf("revision %d after 5 changes", r)
	}
	var nilHub *Hub
	if err := nilHub.Publish(t.Context(), Model, "x"); err != nil {
		t.Errorf("a nil hub: %v", err)
	}
}
