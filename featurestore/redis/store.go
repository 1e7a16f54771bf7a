// Package redis is the Redis backend of the online feature store: a
// featurestore.OnlineStore on a standalone Redis server or a Redis Cluster,
// through go-redis.
//
// # Layout
//
// Each row (one entity of one view) is one Redis hash:
//
//	key    {prefix}:{view}:{entity key}     e.g. mlgate:users:u42
//	field  _ts                              the row's event time, int64 Unix
//	                                        nanoseconds in decimal ASCII
//	                                        ("1795600800000000000")
//	field  {feature name}                   the value in featurestore.AppendValue's
//	                                        binary encoding (little-endian
//	                                        numbers, raw UTF-8, packed float32s)
//
// The prefix is Options.KeyPrefix ("mlgate" by default); the entity key is
// featurestore.Key's encoding, composite keys joined by U+001F. An absent
// value has no field. Feature names cannot start with '_', so _ts never
// collides with a feature. A hash without _ts is not a row: reads treat it as
// missing. Prepare has nothing to do (Redis is schemaless): adding a feature
// adds fields to the rows written from then on, and removing one leaves its
// fields in older rows, where nothing reads them, until the row is next
// written.
//
// # Consistency
//
// A write replaces a row whole, atomically, or not at all: one Lua script per
// row compares the stored _ts with the row's event time, exactly (as two
// integer halves, not as a Lua double, which would lose nanoseconds), and when
// the stored time is not later it deletes the hash and sets _ts and every
// present value. A later stored row wins; an equal or older one is replaced, so
// writing the same rows again changes nothing. Rows of one Write call are sent
// in one pipeline (1000 rows a round trip) and run in order, so of two rows
// for one key the later event time wins whatever their order. A Write is not
// atomic across keys: when it fails part way, some rows may be written; a
// retry of the whole call is safe.
//
// A script touches only its own key, so rows spread over a cluster's slots;
// go-redis splits a pipeline by node. The script is loaded at New and again
// whenever a server answers NOSCRIPT (a restart, SCRIPT FLUSH, a failover to a
// node that never saw it).
//
// A Read sends one HMGET per (lookup, key), asking for _ts and only the
// lookup's features, all in one pipeline: one round trip on a standalone
// server, one per node concerned, in parallel, on a cluster. Each HMGET is
// atomic, so a row read is always one whole written row. Replies are taken as
// raw RESP and decoded in place, which spares the two allocations per field of
// go-redis's generic replies; keys and feature names are passed to go-redis as
// *string (which it writes like strings), which spares boxing each in an
// interface, so a go-redis hook that prints commands shows them as pointers.
// Keys answered by a redirect (MOVED, ASK) or a transient error (TRYAGAIN,
// LOADING, CLUSTERDOWN, MASTERDOWN) are read again through go-redis's own
// HMGET, which follows redirects and retries: a second round trip, only while
// a cluster reshards or fails over.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/featurestore"
)

// Options configure the connection to Redis.
type Options struct {
	// Addrs are host:port addresses: one for a standalone server, several for
	// the seed nodes of a Redis Cluster.
	Addrs []string
	// Password authenticates with AUTH; empty for none.
	Password string
	// TLS, when set, encrypts the connections.
	TLS *tls.Config
	// DB selects the database of a standalone server; a cluster has only 0.
	DB int
	// KeyPrefix starts every key; "mlgate" when empty.
	KeyPrefix string
	// PoolSize is the number of connections per node; 0 for go-redis's
	// default (10 per CPU).
	PoolSize int
	// Timeouts of a dial, a read and a write on a connection; 0 for
	// go-redis's defaults (5s, 3s, 3s). A context deadline shorter than them
	// applies too.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// DefaultKeyPrefix starts every key when Options.KeyPrefix is empty.
const DefaultKeyPrefix = "mlgate"

// Store is a featurestore.OnlineStore in Redis. It is safe for concurrent use.
type Store struct {
	client  goredis.UniversalClient
	cluster *goredis.ClusterClient // nil on a standalone server
	prefix  string
	addrs   string
	scratch sync.Pool // of *readScratch
}

var _ featurestore.OnlineStore = (*Store)(nil)

// New connects to Redis, checks that it answers and loads the write script.
func New(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, featurestore.Invalid("redis: no address given")
	}
	for _, a := range o.Addrs {
		if a == "" {
			return nil, featurestore.Invalid("redis: empty address in %q", o.Addrs)
		}
	}
	addrs := strings.Join(o.Addrs, ",")
	if len(o.Addrs) > 1 && o.DB != 0 {
		return nil, featurestore.Invalid("redis %s: a Redis Cluster has only database 0, not %d", addrs, o.DB)
	}
	prefix := o.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:        o.Addrs,
		Password:     o.Password,
		DB:           o.DB,
		PoolSize:     o.PoolSize,
		DialTimeout:  o.DialTimeout,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.WriteTimeout,
		TLSConfig:    o.TLS,
		// A prediction's deadline bounds its feature reads.
		ContextTimeoutEnabled: true,
		// One dial per attempt, not go-redis's five 100ms apart: while the
		// server is down a command should fail at once, and the feature
		// store's circuit breaker, not each command, waits for it to return.
		DialerRetries: 1,
	})
	s := &Store{client: client, prefix: prefix, addrs: addrs}
	s.cluster, _ = client.(*goredis.ClusterClient)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis %s: ping: %w", addrs, err)
	}
	if err := client.ScriptLoad(ctx, writeScriptSrc).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis %s: load the write script: %w", addrs, err)
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.client.Close() }

// Prepare implements featurestore.OnlineStore. Redis is schemaless: there is
// nothing to create, and rows keep values by feature name, so adding or
// removing features needs no change to stored rows.
func (s *Store) Prepare(ctx context.Context, v *featurestore.View) error { return nil }

// scanCount is the COUNT hint of each SCAN of Drop, and so the size of its
// UNLINK batches.
const scanCount = 1000

// Drop implements featurestore.OnlineStore: it unlinks every key of the view,
// found with SCAN on the server, or on every master of a cluster.
func (s *Store) Drop(ctx context.Context, v *featurestore.View) error {
	if v == nil {
		return featurestore.Invalid("redis: drop: no view")
	}
	pattern := globEscape(s.prefix) + ":" + globEscape(v.Name) + ":*"
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			return s.unlinkMatching(ctx, node, pattern)
		})
	} else {
		err = s.unlinkMatching(ctx, s.client, pattern)
	}
	if err != nil {
		return fmt.Errorf("redis %s: drop view %s: %w", s.addrs, v.Name, err)
	}
	return nil
}

// unlinkMatching scans node for the keys matching pattern and unlinks them,
// a batch at a time. On a cluster the UNLINKs go through the cluster client,
// one key a command in one pipeline, since a batch spans slots.
func (s *Store) unlinkMatching(ctx context.Context, node goredis.Cmdable, pattern string) error {
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, scanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if s.cluster == nil {
				err = s.client.Unlink(ctx, keys...).Err()
			} else {
				_, err = s.cluster.Pipelined(ctx, func(p goredis.Pipeliner) error {
					for _, k := range keys {
						p.Unlink(ctx, k)
					}
					return nil
				})
			}
			if err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// globEscape quotes the characters that SCAN MATCH patterns interpret.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// redisKeyLen is the length of the key of an entity key of a view.
func (s *Store) redisKeyLen(view, key string) int { return len(s.prefix) + len(view) + len(key) + 2 }

// appendKey appends the Redis key of an entity of a view to b.
func (s *Store) appendKey(b []byte, view, key string) []byte {
	b = append(b, s.prefix...)
	b = append(b, ':')
	b = append(b, view...)
	b = append(b, ':')
	return append(b, key...)
}

// isNoScript reports whether err is Redis saying it does not know the script.
func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT"))
}
