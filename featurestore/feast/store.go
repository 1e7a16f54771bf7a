// Package feast reads the online store that Feast (feast-dev/feast, tested
// with feast[redis] 0.67.0) materializes into Redis: a featurestore.OnlineStore
// for the views of store "feast-redis", which Feast writes and mlgate only
// reads, and a reader of Feast's registry file for `mlgate features
// import-feast`.
//
// # Feast's Redis layout
//
// As feast/infra/online_stores/redis.py and helpers.py write it, with
// entity_key_serialization_version 3 (Feast's default, and the only one it
// still supports), one Redis hash per entity key and project holds every
// feature view keyed by that entity:
//
//	key    serialize_entity_key(entity key) + project (UTF-8)
//	field  _ts:{view}            google.protobuf.Timestamp, serialized: the
//	                             event time of the view's row
//	field  mmh3("{view}:{feature}")  feast.types.Value, serialized
//
// serialize_entity_key (feast/infra/key_encoding_utils.py), all integers
// little-endian uint32 unless said otherwise: the number of join keys; for
// each join key, sorted by name, ValueType STRING (2), the length of the name
// and its UTF-8; then for each value, in the same order, its ValueType
// (STRING 2, INT32 3, INT64 4), the length of its bytes and the bytes
// (UTF-8, or a little-endian int32 or int64). The field of a feature is the
// 32-bit x86 MurmurHash3 of "{view}:{feature}" with seed 0, as four
// little-endian bytes. {view} is Feast's name of the view: feast.view, or the
// mlgate view's name (with the registry's enable_online_feature_view_versioning
// on, Feast writes "{name}_v{N}" for version N > 0: give that as feast.view). A value is a feast.types.Value: a oneof of which this
// package reads int32_val and int64_val (as int), float_val and double_val
// (as float or double), bool_val, string_val and float_list_val; an empty
// Value (no field set, as Feast writes a null) is absent.
//
// Feast's key_ttl_seconds expires whole keys; a read then finds no row.
//
// # Semantics
//
// A Read sends one HMGET per key (the features' fields and _ts:{view}) in one
// pipeline. A key whose hash has no _ts:{view} is not found; a present row's
// event time is _ts:{view}, against which the view's TTL makes values stale,
// as for every view. Feast's own get_online_features answers differently for
// the same data: it applies no TTL online (a value past the TTL is PRESENT),
// and it answers an entity it holds nothing for with null values whose status
// is PRESENT; mlgate answers STALE and NOT_FOUND (featurestore/feast's tests
// compare the two for every entity). Write is refused (Feast's materialize
// writes these views), Drop leaves Feast's data alone, and Prepare checks that
// the view says where Feast keeps it.
package feast

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/featurestore"
)

// StoreName is the name views give the Feast Redis store.
const StoreName = "feast-redis"

// Options configure the connection to the Redis Feast writes to.
type Options struct {
	// Addrs are host:port addresses: one for a standalone server, several for
	// the seed nodes of a Redis Cluster.
	Addrs []string
	// Password authenticates with AUTH; empty for none.
	Password string
	// TLS, when set, encrypts the connections.
	TLS *tls.Config
	// DB selects the database of a standalone server.
	DB int
}

// Store is a featurestore.OnlineStore over Feast's Redis online store. It is
// safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	addrs  string
}

var _ featurestore.OnlineStore = (*Store)(nil)

// New connects to Redis and checks that it answers.
func New(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, featurestore.Invalid("feast redis: no address given")
	}
	addrs := strings.Join(o.Addrs, ",")
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs: o.Addrs, Password: o.Password, DB: o.DB, TLSConfig: o.TLS,
		ContextTimeoutEnabled: true,
		DialerRetries:         1,
	})
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("feast redis %s: ping: %w", addrs, err)
	}
	return &Store{client: client, addrs: addrs}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.client.Close() }

// Prepare implements featurestore.OnlineStore: Feast creates nothing in Redis
// either, so it only checks that the view says where Feast keeps it.
func (s *Store) Prepare(ctx context.Context, v *featurestore.View) error {
	if v == nil || v.Feast == nil || v.Feast.Project == "" {
		name := ""
		if v != nil {
			name = v.Name
		}
		return featurestore.Invalid("view %s: store %s: give feast.project, the Feast project the view is materialized in", name, StoreName)
	}
	return nil
}

// Write implements featurestore.OnlineStore: it is refused with ErrInvalid,
// since Feast (feast materialize) writes these views.
func (s *Store) Write(ctx context.Context, v *featurestore.View, rows []featurestore.Row) error {
	name := ""
	if v != nil {
		name = v.Name
	}
	return featurestore.Invalid("view %s is held in Feast's online store (store %s): Feast writes it (feast materialize), mlgate only reads it", name, StoreName)
}

// Drop implements featurestore.OnlineStore: the values are Feast's, so
// dropping the view leaves them.
func (s *Store) Drop(ctx context.Context, v *featurestore.View) error { return nil }

// Read implements featurestore.OnlineStore: one HMGET per (lookup, key), all
// in one pipeline. The fields of a lookup are boxed once for all its keys,
// the keys share one buffer, and the values of all rows one slab.
func (s *Store) Read(ctx context.Context, lookups []featurestore.Lookup) error {
	ncmds, nargs, nvals := 0, 0, 0
	for i := range lookups {
		l := &lookups[i]
		if l.View == nil || l.View.Feast == nil {
			return featurestore.Invalid("feast redis: read: lookup %d has no Feast view", i)
		}
		if err := l.Check(i); err != nil {
			return err
		}
		ncmds += len(l.Keys)
		nargs += len(l.Keys) * (3 + len(l.Features))
		nvals += len(l.Keys) * len(l.Features)
	}
	if ncmds == 0 {
		return nil
	}
	var (
		buf  []byte
		ends = make([]int, 0, ncmds) // of each key in buf
	)
	for i := range lookups {
		l := &lookups[i]
		enc := newKeyEncoder(l.View, l.View.Feast.EntityTypes, l.View.Feast.Project)
		for _, key := range l.Keys {
			var err error
			if buf, err = enc.append(buf, key); err != nil {
				return err
			}
			ends = append(ends, len(buf))
		}
	}
	// One string holds every key; each command's key is a slice of it.
	all := string(buf)
	keys := make([]string, ncmds)
	args := make([]any, nargs)
	cmds := make([]*goredis.SliceCmd, ncmds)
	pipe := s.client.Pipeline()
	c, a, start := 0, 0, 0
	for i := range lookups {
		l := &lookups[i]
		view := feastView(l.View)
		n := 3 + len(l.Features)
		template := make([]any, 0, n)
		template = append(template, "hmget", nil)
		for _, f := range l.Features {
			template = append(template, fieldName(view, l.View.Features[f].Name))
		}
		template = append(template, "_ts:"+view)
		for range l.Keys {
			keys[c], start = all[start:ends[c]], ends[c]
			cmdArgs := args[a : a+n : a+n]
			copy(cmdArgs, template)
			cmdArgs[1] = &keys[c] // go-redis writes a *string as the string, unboxed
			cmds[c] = goredis.NewSliceCmd(ctx, cmdArgs...)
			_ = pipe.Process(ctx, cmds[c])
			c, a = c+1, a+n
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("feast redis %s: read: %w", s.addrs, err)
	}
	vals := make([]featurestore.Value, nvals)
	c = 0
	for i := range lookups {
		l := &lookups[i]
		nf := len(l.Features)
		for k, key := range l.Keys {
			row := &l.Rows[k]
			*row = featurestore.Row{Key: key, Values: vals[:nf:nf]}
			vals = vals[nf:]
			if err := decodeRow(cmds[c].Val(), l, row); err != nil {
				if errors.Is(err, featurestore.ErrInvalid) {
					return fmt.Errorf("view %s (Feast project %s): %w", l.View.Name, l.View.Feast.Project, err)
				}
				return s.readError(l, key, err)
			}
			c++
		}
	}
	return nil
}

// decodeRow fills row from the reply of its HMGET: the features' values,
// then _ts:{view}. A reply without _ts is a key Feast holds no row of the
// view for.
func decodeRow(reply []any, l *featurestore.Lookup, row *featurestore.Row) error {
	if len(reply) != len(l.Features)+1 {
		return fmt.Errorf("HMGET answered %d values for %d fields", len(reply), len(l.Features)+1)
	}
	ts, ok := reply[len(reply)-1].(string)
	if !ok {
		return nil
	}
	var err error
	if row.EventTS, err = decodeTimestamp(bytesOf(ts)); err != nil {
		return err
	}
	row.Found = true
	for j, f := range l.Features {
		b, ok := reply[j].(string)
		if !ok {
			continue
		}
		if row.Values[j], err = decodeValue(l.View.Features[f].Type, bytesOf(b)); err != nil {
			return fmt.Errorf("feature %s: %w", l.View.Features[f].Name, err)
		}
	}
	return nil
}

// bytesOf returns the bytes of s without copying them, for the decoders,
// which neither change nor keep what they decode.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// feastView is Feast's name of the view.
func feastView(v *featurestore.View) string {
	if v.Feast.View != "" {
		return v.Feast.View
	}
	return v.Name
}

func (s *Store) readError(l *featurestore.Lookup, key string, err error) error {
	return fmt.Errorf("feast redis %s: read view %s (Feast project %s) key %q: %w", s.addrs, l.View.Name, l.View.Feast.Project, key, err)
}
