// Package cassandra keeps online feature values in Apache Cassandra (or a
// CQL-compatible database), through the gocql driver.
//
// # Layout
//
// Each feature view is one table in the store's keyspace (default "mlgate"):
//
//	CREATE TABLE mlgate.fv_<view> (
//	    entity_key text PRIMARY KEY, -- featurestore.Key of the entity columns
//	    event_ts   timestamp,        -- the row's event time
//	    <feature>  <type>, ...       -- one natively typed column per feature
//	)
//
// with float → float, double → double, int → bigint, string → text,
// bool → boolean and float_list → frozen<list<float>>. The list is frozen
// because a frozen collection is one cell, written and read whole, and keeps
// an empty list apart from an absent one (a non-frozen empty list is no
// cells at all, which reads back as null). A view name too long for a table
// name ("fv_" + name over 48 characters) is cut and suffixed with a hash of
// the whole name. Every identifier is double-quoted, so features named after
// CQL keywords ("limit", "order") work; features may not be named entity_key
// or event_ts.
//
// Prepare creates the table, adds the columns of new features and drops the
// columns of removed ones (ALTER TABLE), and waits for schema agreement after
// each change (one store serializes its own schema changes; let one process
// change the schema of a view at a time). Dropping frees the space, and a
// feature removed and later added back holds no values from before its
// removal, where a kept column would show values older than the rows' other
// features. Cassandra hides a dropped column's cells written before the drop
// by the wall clock: a cell whose event time was later than the drop would
// show again. Cassandra also refuses to add a dropped column back with
// another type (text for float, say); Prepare reports that as
// featurestore.ErrConflict, and the view needs a new name for that feature.
//
// # Writes and event time
//
// Each row is one INSERT of every column, absent values as null, with USING
// TIMESTAMP set to the row's event time in microseconds. Cassandra resolves
// every cell by last-write-wins on that timestamp, which gives the contract
// of featurestore.OnlineStore: a row with a later event time replaces the
// whole stored row (its nulls delete the older cells), an older row is
// ignored, the order of writes does not matter and writing a row again
// changes nothing. When two different rows of one key have the same event
// time (to the microsecond), Cassandra does not pick a row: it settles each
// cell on its own, a null (deletion) beating a value and the greater
// serialized value beating the smaller, so the stored row may mix the two.
// Rows of one Write are sent concurrently, up to 64 at a time. Client
// timestamps must be allowed (Cassandra's user_timestamps_enabled guardrail,
// on by default), and a maximum_timestamp_fail_threshold guardrail would
// refuse rows with event times too far ahead. Absent values are written as
// cell tombstones, which compaction purges after the table's gc_grace_seconds.
//
// The event_ts column is a CQL timestamp, which has millisecond precision:
// reads return event times truncated to the millisecond, in UTC. Event times
// closer than a millisecond still order writes (the write timestamp has
// microseconds); closer than a microsecond they tie.
//
// # Reads
//
// Read sends one prepared single-partition SELECT per key, of event_ts and
// the lookup's features only, all lookups of the call together as one
// concurrent batch (up to 128 in flight), each routed to a replica of its key
// (token-aware routing). Single-partition queries spread over the
// coordinators and fail alone, unlike one multi-partition IN query that one
// coordinator must fan out. A key without a row, or whose event_ts and
// selected features are all null, reads as not found.
//
// # Consistency
//
// Reads and writes use one consistency level, LOCAL_ONE unless
// Options.Consistency says otherwise: the fastest, but a read may miss a
// write that has not reached the replica yet. With a replication factor of
// 3, LOCAL_QUORUM for both reads and writes reads one's own writes. A missing
// keyspace is created with SimpleStrategy and Options.ReplicationFactor
// (default 1), which suits a single node or a test; production creates its
// keyspace itself with NetworkTopologyStrategy and a replication factor per
// data center, and the store then only uses it.
package cassandra

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/mlgate/mlgate/featurestore"
)

// Options configure a Store.
type Options struct {
	// Hosts are "host:port" contact points (the port defaults to 9042).
	Hosts []string
	// Keyspace holds the tables; default "mlgate" (lower-case letters,
	// digits and '_', up to 48 characters). It is created when
	// missing, with SimpleStrategy: create it beforehand with
	// NetworkTopologyStrategy in production.
	Keyspace string
	// ReplicationFactor of a keyspace the store creates; default 1.
	ReplicationFactor int
	// Consistency of reads and writes, such as "LOCAL_ONE" (the default),
	// "LOCAL_QUORUM" or "QUORUM".
	Consistency string
	// Timeout bounds each request (default 10s), schema reads and changes
	// at least SchemaTimeout; bound reads more tightly with their context.
	Timeout time.Duration
	// ConnectTimeout bounds connecting to a host (default 5s).
	ConnectTimeout time.Duration
	// ReconnectInterval is how often the driver dials the nodes it holds
	// down (default 200ms; gocql's own 60s would leave a node that came
	// back unused for up to a minute).
	ReconnectInterval time.Duration
	// Username and Password, when set, authenticate with Cassandra's
	// PasswordAuthenticator.
	Username string
	Password string
	// TLS, when set, encrypts the connections to the nodes (and checks their
	// certificates against it).
	TLS *tls.Config
	// Log, when set, receives the driver's own log lines as warnings;
	// otherwise they go to gocql's default, the standard logger.
	Log *slog.Logger
}

// Store is a featurestore.OnlineStore in Cassandra: one table per view.
type Store struct {
	session *gocql.Session
	// schema runs the schema's reads and changes, each within SchemaTimeout
	// (or Timeout if longer): a schema change waits for the nodes to agree,
	// which takes seconds on a busy node, well past a read's timeout.
	schema   *gocql.Session
	keyspace string
	// ddl serializes this store's schema changes: concurrent DDL on one
	// table can leave Cassandra's nodes disagreeing on the schema.
	ddl sync.Mutex
}

var _ featurestore.OnlineStore = (*Store)(nil)

// SchemaTimeout is the least time a schema read or change is given (see
// Store).
const SchemaTimeout = 30 * time.Second

const (
	keyColumn = "entity_key"
	tsColumn  = "event_ts"
	// maxName is the longest keyspace or table name Cassandra takes.
	maxName = 48
	// Writes and reads in flight per call.
	maxWrites = 64
	maxReads  = 128
)

// New connects to the cluster, creating the keyspace when it is missing.
// Connecting is bounded by ConnectTimeout rather than ctx.
func New(ctx context.Context, o Options) (*Store, error) {
	if len(o.Hosts) == 0 {
		return nil, featurestore.Invalid("cassandra: no hosts given")
	}
	if o.Keyspace == "" {
		o.Keyspace = "mlgate"
	}
	if !validIdent(o.Keyspace) || len(o.Keyspace) > maxName {
		return nil, featurestore.Invalid("cassandra: keyspace %q: use up to %d lower-case letters, digits and '_', starting with a letter", o.Keyspace, maxName)
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = 1
	}
	if o.ReplicationFactor < 0 {
		return nil, featurestore.Invalid("cassandra: replication factor %d is negative", o.ReplicationFactor)
	}
	if o.Consistency == "" {
		o.Consistency = "LOCAL_ONE"
	}
	consistency, err := gocql.ParseConsistencyWrapper(o.Consistency)
	if err != nil {
		return nil, featurestore.Invalid("cassandra: consistency %q is not a consistency level such as LOCAL_ONE, LOCAL_QUORUM or QUORUM", o.Consistency)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.ReconnectInterval <= 0 {
		o.ReconnectInterval = 200 * time.Millisecond
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	cluster := gocql.NewCluster(o.Hosts...)
	if o.Log != nil {
		cluster.Logger = gocqlLog{o.Log.With("component", "gocql")}
	}
	// Peers found through system.peers are dialed on cluster.Port: use the
	// contact points' port when they share one.
	if port := commonPort(o.Hosts); port > 0 {
		cluster.Port = port
	}
	cluster.Consistency = consistency
	cluster.Timeout = o.Timeout
	cluster.ConnectTimeout = o.ConnectTimeout
	cluster.ReconnectInterval = o.ReconnectInterval
	// gocql's default holds each request up to 200µs to coalesce writes to
	// the socket, in practice about a millisecond: ten times the latency of
	// a one-key read here, and no faster for a hundred keys at once.
	cluster.WriteCoalesceWaitTime = 0
	if o.Username != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: o.Username, Password: o.Password}
	}
	if o.TLS != nil {
		cluster.SslOpts = &gocql.SslOptions{Config: o.TLS, EnableHostVerification: !o.TLS.InsecureSkipVerify}
	}
	hosts := strings.Join(o.Hosts, ", ")

	// The schema's session, without keyspace, makes sure the keyspace
	// exists. (A session may not share its host selection policy with
	// another.)
	cluster.PoolConfig.HostSelectionPolicy = gocql.RoundRobinHostPolicy()
	cluster.Timeout = max(o.Timeout, SchemaTimeout)
	schema, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra: connect to %s: %w", hosts, err)
	}
	if err := createKeyspace(ctx, schema, o.Keyspace, o.ReplicationFactor); err != nil {
		schema.Close()
		return nil, fmt.Errorf("cassandra at %s: %w", hosts, err)
	}

	cluster.Keyspace = o.Keyspace
	cluster.Timeout = o.Timeout
	// Token-aware routing sends each row's query to a replica of its key.
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	session, err := cluster.CreateSession()
	if err != nil {
		schema.Close()
		return nil, fmt.Errorf("cassandra: connect to %s, keyspace %s: %w", hosts, o.Keyspace, err)
	}
	return &Store{session: session, schema: schema, keyspace: o.Keyspace}, nil
}

// createKeyspace creates the keyspace unless it exists: looking first spares
// the CREATE permission to a store whose keyspace was made for it.
func createKeyspace(ctx context.Context, s *gocql.Session, keyspace string, rf int) error {
	var name string
	err := s.Query(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`, keyspace).
		WithContext(ctx).Scan(&name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, gocql.ErrNotFound) {
		return fmt.Errorf("look up keyspace %s: %w", keyspace, err)
	}
	stmt := fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS "%s" WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`, keyspace, rf)
	if err := s.Query(stmt).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("create keyspace %s: %w", keyspace, err)
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("create keyspace %s: %w", keyspace, err)
	}
	return nil
}

// commonPort returns the port every host names, or 0.
func commonPort(hosts []string) int {
	port := 0
	for _, h := range hosts {
		_, p, err := net.SplitHostPort(h)
		if err != nil {
			return 0
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || port != 0 && n != port {
			return 0
		}
		port = n
	}
	return port
}

// Close closes the sessions.
func (s *Store) Close() error {
	s.session.Close()
	s.schema.Close()
	return nil
}

// validIdent reports whether name is a lower-case letter followed by
// lower-case letters, digits and '_': what featurestore allows for view and
// feature names, and safe to write between double quotes in CQL.
func validIdent(name string) bool {
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// tableName is the table of a view: "fv_" and the view name, or, when that
// is longer than Cassandra takes, the start of the name and a hash of it.
func tableName(view string) (string, error) {
	if !validIdent(view) {
		return "", featurestore.Invalid("cassandra: view name %q is not a valid name", view)
	}
	name := "fv_" + view
	if len(name) <= maxName {
		return name, nil
	}
	sum := sha256.Sum256([]byte(view))
	const hashLen = 16 // hex digits
	return name[:maxName-1-hashLen] + "_" + hex.EncodeToString(sum[:hashLen/2]), nil
}

// cqlType is the column type of a feature type.
func cqlType(t featurestore.Type) (string, bool) {
	switch t {
	case featurestore.Float:
		return "float", true
	case featurestore.Double:
		return "double", true
	case featurestore.Int:
		return "bigint", true
	case featurestore.String:
		return "text", true
	case featurestore.Bool:
		return "boolean", true
	case featurestore.FloatList:
		return "frozen<list<float>>", true
	}
	return "", false
}

// checkView checks what the store builds CQL from: the view name, and
// feature names and types. featurestore.View.Check has checked them already
// in the gateway; this keeps an unchecked view from reaching CQL.
func checkView(v *featurestore.View) (table string, err error) {
	if v == nil {
		return "", featurestore.Invalid("cassandra: no view given")
	}
	table, err = tableName(v.Name)
	if err != nil {
		return "", err
	}
	if len(v.Features) == 0 {
		return "", featurestore.Invalid("cassandra: view %s has no features", v.Name)
	}
	for _, f := range v.Features {
		if !validIdent(f.Name) {
			return "", featurestore.Invalid("cassandra: view %s: feature name %q is not a valid name", v.Name, f.Name)
		}
		if f.Name == keyColumn || f.Name == tsColumn {
			return "", featurestore.Invalid("cassandra: view %s: feature name %q is taken by the store's %s column; rename the feature", v.Name, f.Name, f.Name)
		}
		if _, ok := cqlType(f.Type); !ok {
			return "", featurestore.Invalid("cassandra: view %s: feature %s has unknown type %q", v.Name, f.Name, f.Type)
		}
	}
	return table, nil
}

// DropKeyspace removes the store's keyspace and everything in it; tests use
// it to leave the server as they found it.
func (s *Store) DropKeyspace(ctx context.Context) error {
	if err := s.schema.Query(`DROP KEYSPACE IF EXISTS "` + s.keyspace + `"`).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("drop keyspace %s: %w", s.keyspace, err)
	}
	return nil
}

func (s *Store) qualified(table string) string {
	return `"` + s.keyspace + `"."` + table + `"`
}

// Prepare implements featurestore.OnlineStore: it creates the view's table,
// or adds the columns of new features to it and drops those of removed
// ones. An unchanged view changes nothing.
func (s *Store) Prepare(ctx context.Context, v *featurestore.View) error {
	table, err := checkView(v)
	if err != nil {
		return err
	}
	s.ddl.Lock()
	defer s.ddl.Unlock()

	columns, err := s.columns(ctx, table)
	if err != nil {
		return fmt.Errorf("cassandra: prepare view %s: %w", v.Name, err)
	}
	if len(columns) == 0 {
		var b strings.Builder
		fmt.Fprintf(&b, `CREATE TABLE IF NOT EXISTS %s ("%s" text PRIMARY KEY, "%s" timestamp`, s.qualified(table), keyColumn, tsColumn)
		for _, f := range v.Features {
			t, _ := cqlType(f.Type)
			fmt.Fprintf(&b, `, "%s" %s`, f.Name, t)
		}
		b.WriteString(")")
		return s.schemaChange(ctx, v, b.String())
	}

	var add, drop []string
	inView := make(map[string]bool, len(v.Features))
	for _, f := range v.Features {
		inView[f.Name] = true
		want, _ := cqlType(f.Type)
		have, ok := columns[f.Name]
		switch {
		case !ok:
			add = append(add, `"`+f.Name+`" `+want)
		case have != want:
			return fmt.Errorf("cassandra: prepare view %s: %w: table %s has column %s of type %s, not %s as feature type %s needs",
				v.Name, featurestore.ErrConflict, table, f.Name, have, want, f.Type)
		}
	}
	for name := range columns {
		if name != keyColumn && name != tsColumn && !inView[name] {
			drop = append(drop, `"`+name+`"`)
		}
	}
	if len(add) > 0 {
		stmt := fmt.Sprintf("ALTER TABLE %s ADD (%s)", s.qualified(table), strings.Join(add, ", "))
		if err := s.schemaChange(ctx, v, stmt); err != nil {
			if strings.Contains(err.Error(), "previously dropped") {
				return fmt.Errorf("%w: %w", featurestore.ErrConflict, err)
			}
			return err
		}
	}
	if len(drop) > 0 {
		stmt := fmt.Sprintf("ALTER TABLE %s DROP (%s)", s.qualified(table), strings.Join(drop, ", "))
		if err := s.schemaChange(ctx, v, stmt); err != nil {
			return err
		}
	}
	return nil
}

// columns returns the CQL types of a table's columns by name, none when the
// table does not exist.
func (s *Store) columns(ctx context.Context, table string) (map[string]string, error) {
	iter := s.schema.Query(`SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`,
		s.keyspace, table).WithContext(ctx).Iter()
	columns := map[string]string{}
	var name, typ string
	for iter.Scan(&name, &typ) {
		columns[name] = typ
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	return columns, nil
}

// schemaChange runs a DDL statement and waits for the nodes to agree on the
// new schema.
func (s *Store) schemaChange(ctx context.Context, v *featurestore.View, stmt string) error {
	if err := s.schema.Query(stmt).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("cassandra: view %s: %s: %w", v.Name, stmt, err)
	}
	if err := s.schema.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("cassandra: view %s: wait for schema agreement: %w", v.Name, err)
	}
	return nil
}

// Drop implements featurestore.OnlineStore.
func (s *Store) Drop(ctx context.Context, v *featurestore.View) error {
	if v == nil {
		return featurestore.Invalid("cassandra: no view given")
	}
	table, err := tableName(v.Name)
	if err != nil {
		return err
	}
	s.ddl.Lock()
	defer s.ddl.Unlock()
	return s.schemaChange(ctx, v, "DROP TABLE IF EXISTS "+s.qualified(table))
}

// forEach runs fn(i) for i in [0, n) with up to limit calls at a time, and
// returns the first error; after an error, calls not yet started are
// skipped and ctx given to the others is canceled.
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, worker, i int) error) error {
	if n == 1 {
		return fn(ctx, 0, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	claim := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= n {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := range min(n, limit) {
		wg.Go(func() {
			for {
				i, ok := claim()
				if !ok {
					return
				}
				if err := fn(ctx, w, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
