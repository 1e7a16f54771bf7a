// Package auth identifies callers by API key and says which roles they hold.
//
// Keys are configured as SHA-256 hashes, never in the clear. A request sends
// its key as "Authorization: Bearer <key>". With no keys configured every
// caller is "anonymous" and holds every role; the server allows that only on a
// loopback listener. A Limiter holds each caller to its request rate.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// Role is a set of permissions.
type Role string

// The roles. Admin holds every permission.
const (
	Predict       Role = "predict"        // call models and endpoints
	DataScientist Role = "data-scientist" // register versions, set tags
	SRE           Role = "sre"            // move aliases, change traffic
	Admin         Role = "admin"          // everything
)

// ParseRole returns the role a name stands for.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Predict, DataScientist, SRE, Admin:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want predict, data-scientist, sre or admin)", s)
}

// Key is a configured API key.
type Key struct {
	Name   string
	SHA256 string // hex SHA-256 of the key
	Roles  []Role
	// Limit is the key's own request rate; a zero Rate leaves it to the
	// limits of its roles (see Limiter).
	Limit Limit
}

// Identity is an authenticated caller.
type Identity struct {
	Name  string
	roles []Role
}

// Anonymous is the caller when no keys are configured.
var Anonymous = Identity{Name: "anonymous", roles: []Role{Admin}}

// Roles returns the roles the identity holds, as configured.
func (id Identity) Roles() []Role { return slices.Clone(id.roles) }

// Has reports whether the identity holds role r.
func (id Identity) Has(r Role) bool {
	for _, have := range id.roles {
		if have == r || have == Admin {
			return true
		}
	}
	return false
}

// Errors returned by Authenticate.
var (
	ErrNoKey  = errors.New("missing API key: send it as \"Authorization: Bearer <key>\"")
	ErrBadKey = errors.New("unknown API key")
)

// Authenticator checks API keys. Its keys can be replaced while it serves
// (Reload): a request sees the old set or the new one, whole.
type Authenticator struct {
	keys atomic.Pointer[[]key]
}

type key struct {
	hash [sha256.Size]byte
	id   Identity
}

// New returns an Authenticator for keys. With no keys it lets everyone in as
// Anonymous.
func New(keys []Key) (*Authenticator, error) {
	a := &Authenticator{}
	if err := a.Reload(keys); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload replaces the keys with keys, all at once: a key no longer listed
// is refused from now on. On an error nothing changes.
func (a *Authenticator) Reload(keys []Key) error {
	next := make([]key, 0, len(keys))
	for _, k := range keys {
		raw, err := hex.DecodeString(k.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return fmt.Errorf("key %s: sha256 must be 64 hex characters", k.Name)
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		next = append(next, key{hash: h, id: Identity{Name: k.Name, roles: k.Roles}})
	}
	a.keys.Store(&next)
	return nil
}

// Open reports whether no keys are configured.
func (a *Authenticator) Open() bool { return len(*a.keys.Load()) == 0 }

// Authenticate identifies the caller from an Authorization header value:
// the scheme "Bearer" in any case (RFC 9110 makes schemes case-insensitive),
// spaces, then the key. It returns ErrNoKey when the header holds no bearer
// key and ErrBadKey when the key is unknown.
func (a *Authenticator) Authenticate(header string) (Identity, error) {
	if a.Open() {
		return Anonymous, nil
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Identity{}, ErrNoKey
	}
	h := sha256.Sum256([]byte(token))
	for _, k := range *a.keys.Load() {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			return k.id, nil
		}
	}
	return Identity{}, ErrBadKey
}
