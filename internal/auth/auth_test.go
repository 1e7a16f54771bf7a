package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestAuthenticate(t *testing.T) {
	a, err := New([]Key{
		{Name: "app", SHA256: hash("app-secret"), Roles: []Role{Predict}},
		{Name: "root", SHA256: hash("root-secret"), Roles: []Role{Admin}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		header  string
		wantErr error
		name    string
		has     map[Role]bool
	}{
		{"", ErrNoKey, "", nil},
		{"Basic abc", ErrNoKey, "", nil},
		{"Bearer nope", ErrBadKey, "", nil},
		{"Bearer app-secret", nil, "app", map[Role]bool{Predict: true, SRE: false, Admin: false}},
		{"Bearer root-secret", nil, "root", map[Role]bool{Predict: true, SRE: true, DataScientist: true}},
		{"bearer app-secret", nil, "app", map[Role]bool{Predict: true}},
		{"BEARER  app-secret", nil, "app", map[Role]bool{Predict: true}},
		{"Bearer", ErrNoKey, "", nil},
		{"Bearer ", ErrNoKey, "", nil},
		{"Bearerapp-secret", ErrNoKey, "", nil},
		{"Bearer app-secret ", ErrBadKey, "", nil},
	}
	for _, tt := range tests {
		id, err := a.Authenticate(tt.header)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%q: err = %v, want %v", tt.header, err, tt.wantErr)
			continue
		}
		if id.Name != tt.name {
			t.Errorf("%q: name = %q, want %q", tt.header, id.Name, tt.name)
		}
		for r, want := range tt.has {
			if id.Has(r) != want {
				t.Errorf("%q: Has(%s) = %v, want %v", tt.header, r, !want, want)
			}
		}
	}
}

func TestOpenWithoutKeys(t *testing.T) {
	a, _ := New(nil)
	id, err := a.Authenticate("")
	if err != nil || id.Name != "anonymous" || !id.Has(SRE) {
		t.Errorf("open authenticator: %v %v", id, err)
	}
}

func TestBadHash(t *testing.T) {
	if _, err := New([]Key{{Name: "x", SHA256: "abc"}}); err == nil {
		t.Error("want an error for a short hash")
	}
}

// TestReload: a reloaded key set replaces the old one whole; a bad one
// changes nothing.
func TestReload(t *testing.T) {
	a, err := New([]Key{{Name: "old", SHA256: hash("old-key"), Roles: []Role{Predict}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload([]Key{{Name: "bad", SHA256: "xyz"}}); err == nil {
		t.Fatal("a key with a bad hash was taken")
	}
	if id, err := a.Authenticate("Bearer old-key"); err != nil || id.Name != "old" {
		t.Fatalf("a failed reload changed the keys: %v %v", id, err)
	}
	if err := a.Reload([]Key{{Name: "new", SHA256: hash("new-key"), Roles: []Role{SRE}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate("Bearer old-key"); !errors.Is(err, ErrBadKey) {
		t.Errorf("a revoked key: %v, want ErrBadKey", err)
	}
	if id, err := a.Authenticate("Bearer new-key"); err != nil || !id.Has(SRE) {
		t.Errorf("the new key: %v %v", id, err)
	}
}
