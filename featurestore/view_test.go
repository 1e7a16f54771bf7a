package featurestore

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckFeast checks what a view held in a Feast online store must say,
// and that no other view may say it.
func TestCheckFeast(t *testing.T) {
	base := func(store string, f *FeastSource) *View {
		return &View{Name: "drivers", Entities: []string{"driver_id", "zone"}, Store: store, Feast: f,
			Features: []Feature{{Name: "trips", Type: Int}}}
	}
	tests := []struct {
		name string
		view *View
		want string // "" for no error
	}{
		{"feast view", base("feast-redis", &FeastSource{Project: "p", EntityTypes: []string{"int64", "string"}}), ""},
		{"all strings", base("feast-redis", &FeastSource{Project: "p", View: "DriverStats"}), ""},
		{"no feast", base("feast-redis", nil), "give feast.project"},
		{"no project", base("feast-redis", &FeastSource{}), "feast.project"},
		{"types for some entities", base("feast-redis", &FeastSource{Project: "p", EntityTypes: []string{"int64"}}), "want one type for each of the 2 entities, got 1"},
		{"unknown type", base("feast-redis", &FeastSource{Project: "p", EntityTypes: []string{"int64", "uuid"}}), `feast.entity_types[1]: "uuid"`},
		{"feast on another store", base("redis", &FeastSource{Project: "p"}), `not one in store "redis"`},
	}
	for _, tt := range tests {
		err := tt.view.Check()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want ErrInvalid with %q", tt.name, err, tt.want)
		}
	}
}
