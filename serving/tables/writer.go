package tables

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/clock"
	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/recovery"
)

// ErrInvalid is the kind of the errors about arguments and options.
const ErrInvalid = errkind.Invalid

// ErrClosed is returned by the methods of a closed Writer.
var ErrClosed = errkind.New(errkind.Unavailable, "tables: writer closed")

// rowGroupBytes is the estimated size at which a file's buffered rows are
// written out as a row group, which bounds the memory of an open file.
const rowGroupBytes = 16 << 20

// Options configure a Writer. Zero values take the defaults.
type Options struct {
	Dir           string        // the table's directory (required)
	Replica       string        // the writer's replica id, in the names of all its files (see Fleets in the package documentation); "" for a table one process writes
	MaxFileBytes  int64         // roll a file at this estimated size; default 64 MiB
	MaxFileAge    time.Duration // roll a file this long after its first row; default 1m
	FlushInterval time.Duration // fsync the write-ahead log this often; default 1s
	QueueSize     int           // rows waiting for the writer; default 10000
	Spill         bool          // when the queue is full, spill rows to disk instead of dropping them
	Clock         clock.Clock   // what MaxFileAge, FlushInterval and the rows' default Timestamp go by; default the real one
	Log           *slog.Logger  // where I/O errors and quarantined rows are reported; default slog.Default()

	onTick func() // called on the writer goroutine after each tick, for tests
}

func (o *Options) validate() error {
	switch {
	case o.Dir == "":
		return errkind.New(ErrInvalid, "tables: Dir is required")
	case o.Replica != "" && !validReplica(o.Replica):
		return errkind.New(ErrInvalid, "tables: replica id %q (inference_tables): want 1 to %d letters, digits, '-', '_' or '.', starting with a letter or digit", o.Replica, maxReplica)
	case o.MaxFileBytes < 0:
		return errkind.New(ErrInvalid, "tables: MaxFileBytes is negative (%d)", o.MaxFileBytes)
	case o.MaxFileAge < 0:
		return errkind.New(ErrInvalid, "tables: MaxFileAge is negative (%s)", o.MaxFileAge)
	case o.FlushInterval < 0:
		return errkind.New(ErrInvalid, "tables: FlushInterval is negative (%s)", o.FlushInterval)
	case o.QueueSize < 0:
		return errkind.New(ErrInvalid, "tables: QueueSize is negative (%d)", o.QueueSize)
	}
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = 64 << 20
	}
	if o.MaxFileAge == 0 {
		o.MaxFileAge = time.Minute
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = time.Second
	}
	if o.QueueSize == 0 {
		o.QueueSize = 10000
	}
	o.Clock = clock.Or(o.Clock)
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

// maxReplica bounds the length of a replica id.
const maxReplica = 64

// validReplica reports whether id is a replica id: 1 to maxReplica ASCII
// letters, digits, '-', '_' or '.', starting with a letter or digit, so
// that it makes one safe, visible file name and parts of names stay apart.
func validReplica(id string) bool {
	if id == "" || len(id) > maxReplica {
		return false
	}
	for i, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Stats counts rows, and errors, since Open.
type Stats struct {
	Written     int64 // in renamed Parquet files (recovered rows included)
	Spilled     int64 // put in the spill file by Write because the queue was full
	Dropped     int64 // refused by Write: the queue was full and spilling off or failing, or the Writer closed
	Recovered   int64 // replayed from the write-ahead log and spill files of a previous run, by Open, or of another replica not running (see Fleets in the package documentation); quarantined ones not counted
	Failed      int64 // not written because of an I/O error; those in the write-ahead log are kept there for the next Open
	Skipped     int64 // damaged records of the write-ahead log, spill files (one torn by a crash, say) or <dir>/_deletes, at Open or when taking a spill file
	Deleted     int64 // rows of an entity deleted (see DeleteEntity) that the writer dropped before they reached a file, or took out of a file it had just renamed
	Quarantined int64 // records moved to <dir>/_quarantine/ because no disk could take them (see the package documentation)
	Unlogged    int64 // rows the write-ahead log gave up while the disk failed: a crash before their files are renamed loses them
	Errors      int64 // I/O errors met, each failed operation once
}

// Writer appends rows to the inference table in a directory. Its methods are
// safe for concurrent use. See the package documentation for its design.
type Writer struct {
	opts     Options
	q        chan Row
	closed   atomic.Bool
	inflight atomic.Int64 // Write calls under way
	spill    recordFile

	ctl       chan func()
	stop      chan struct{}
	kill      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error // set by the goroutine before done is closed

	quarantine recordFile
	owner      *os.File // <dir>/_owners/<replica>.lock, locked while the Writer is open (see lockOwner)

	written, spilled, dropped, recovered, failed, skipped atomic.Int64
	quarantined, unlogged, errs, deleted                  atomic.Int64
	degraded                                              atomic.Pointer[error] // the last I/O error, until the writer is durable again

	// Owned by the writer goroutine (or by Open before it starts).
	files      map[partition]*partFile
	wal        *wal
	dels       deletes   // the tombstones, and the table's lock
	lockBusy   bool      // a delete held the lock when a file was to be renamed: wait for the next tick
	recent     []renamed // the files renamed in the last recentFor
	keepFrom   int64     // keep log segments from this one on: they hold rows that failed; MaxInt64 if none
	err        error     // the first error that cost rows their file since the last Flush
	errsAtTick int64     // errs at the end of the last tick
	spell      bool      // degraded at the last tick
	warnedAt   time.Time // when the spell was last logged
	errsAtWarn int64     // errs then
	adoptedAt  time.Time // when adopt last looked
}

// partFile is the open file of a partition.
type partFile struct {
	*tmpFile[Row]
	key      partition
	opened   time.Time
	firstSeg int64     // the log segment of its first row
	tombs    int       // the tombstones known when it was opened: its rows were filtered by those
	oldest   time.Time // the earliest Timestamp of its rows
	rows     int64
	flushed  int64 // estimated size after the last row group
	pending  []Row // rows not yet given to the Parquet writer
	pendSize int64 // their estimated size
	unlogged bool  // the log gave up records of its rows: a crash before its rename loses them
}

// writeBatch is how many rows a file takes from pending at a time.
const writeBatch = 128

// add appends r to the file.
func (pf *partFile) add(r *Row) error {
	pf.pending = append(pf.pending, *r)
	if pf.rows == 0 || r.Timestamp.Before(pf.oldest) {
		pf.oldest = r.Timestamp
	}
	pf.pendSize += int64(48 + len(r.RequestID) + len(r.Endpoint) + len(r.Variant) + len(r.ModelName) + len(r.ModelUUID) +
		len(r.Entities) + len(r.Features) + len(r.FeatureStatus) + len(r.Request) + len(r.Response) + len(r.Error))
	pf.rows++
	if len(pf.pending) < writeBatch {
		return nil
	}
	return pf.writePending()
}

// writePending gives the pending rows to the Parquet writer, and writes a
// row group if it has buffered enough.
func (pf *partFile) writePending() error {
	_, err := pf.pw.Write(pf.pending)
	clear(pf.pending)
	pf.pending, pf.pendSize = pf.pending[:0], 0
	if err == nil && pf.pw.Size()-pf.flushed >= rowGroupBytes {
		err = pf.pw.Flush()
		pf.flushed = pf.pw.Size()
	}
	return err
}

// size estimates the size of the complete file.
func (pf *partFile) size() int64 { return pf.pw.Size() + pf.pendSize }

// Open starts a Writer on opts.Dir, first writing into Parquet the rows a
// previous run of the same replica left in its write-ahead log and spill
// files (see Durability and I/O errors in the package documentation), and
// those of the replicas that are not running (see Fleets). It
// returns an ErrInvalid error for invalid options, an errkind.Conflict
// error if a Writer of the same replica id has the directory open (in any
// process), and an error if it cannot create or list its directories or
// lock files. Rows it cannot recover for an I/O error do not stop it: it
// logs the error and leaves them where they are, for the next Open, and
// Healthy reports it.
func Open(opts Options) (_ *Writer, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	walPath := filepath.Join(opts.Dir, walDir, opts.Replica)
	spillPath := filepath.Join(opts.Dir, spillDir, opts.Replica)
	quarantinePath := filepath.Join(opts.Dir, quarantineDir, opts.Replica)
	// The directories after the lock: a writer adopting the replica's log
	// removes them while it holds the lock (see adoptReplica).
	owner, err := lockOwner(opts.Dir, opts.Replica)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			owner.Close()
		}
	}()
	for _, d := range []string{walPath, spillPath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open inference table: %w", err)
		}
	}
	dels, err := openDeletes(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("open inference table: %w", err)
	}
	defer func() {
		if err != nil {
			dels.Close()
		}
	}()
	oldWAL, err := segments(walPath, walExt)
	if err != nil {
		return nil, fmt.Errorf("open inference table: %w", err)
	}
	oldSpill, err := segments(spillPath, spillExt)
	if err != nil {
		return nil, fmt.Errorf("open inference table: %w", err)
	}
	oldQuarantine, err := segments(quarantinePath, quarantineExt)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open inference table: %w", err)
	}
	w := &Writer{
		opts:       opts,
		q:          make(chan Row, opts.QueueSize),
		spill:      recordFile{dir: spillPath, ext: spillExt, seq: next(oldSpill)},
		quarantine: recordFile{dir: quarantinePath, ext: quarantineExt, seq: next(oldQuarantine)},
		owner:      owner,
		ctl:        make(chan func()),
		stop:       make(chan struct{}),
		kill:       make(chan struct{}),
		done:       make(chan struct{}),
		files:      map[partition]*partFile{},
		wal:        newWAL(walPath, next(oldWAL)),
		dels:       deletes{f: dels},
		keepFrom:   math.MaxInt64,
	}
	w.recover(oldWAL, oldSpill)
	go w.run(opts.Clock.NewTicker(opts.FlushInterval))
	return w, nil
}

// recover deletes the temporary files a crash of this replica left and
// writes the rows of the given segments of the log and spill files into
// Parquet files. An I/O error is counted and logged (see noteErr); a
// segment whose rows are not all durable elsewhere is left for the next
// Open.
func (w *Writer) recover(oldWAL, oldSpill []int64) {
	w.noteErr(w.refreshDeletes())
	w.noteErr(removeTemps(w.opts.Dir, w.opts.Replica, w.wal.dir))
	var old []string
	for _, seq := range oldWAL {
		old = append(old, segPath(w.wal.dir, seq, walExt))
	}
	for _, seq := range oldSpill {
		old = append(old, segPath(w.spill.dir, seq, spillExt))
	}
	for _, path := range old {
		w.noteErr(w.replay(path, &w.recovered))
	}
	w.adopt(w.opts.Clock.Now())
	w.flushAll() // its errors are counted by fail
	w.errsAtTick = w.errs.Load()
}

// refreshDeletes takes the tombstones appended since the last look.
func (w *Writer) refreshDeletes() error {
	before := w.dels.skipped
	err := w.dels.refresh()
	w.skipped.Add(w.dels.skipped - before)
	return err
}

// next returns the number after the last of seqs.
func next(seqs []int64) int64 {
	if len(seqs) == 0 {
		return 1
	}
	return seqs[len(seqs)-1] + 1
}

// removeTemps deletes the temporary files of the replica under dir, left
// by a crash: those of its data files (see tempReplica), and the links of
// reads in its log directory wal (see takeHeld). Other writers' files, and
// DeleteEntity's, are left alone.
func removeTemps(dir, replica, wal string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != dir && strings.HasPrefix(d.Name(), "_") && d.Name() != labelsDir:
			return fs.SkipDir // each writer's log, spill and quarantine
		case !d.Type().IsRegular():
			return nil
		}
		if r, ok := tempReplica(d.Name()); ok && r == replica {
			return os.Remove(path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(wal)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && isTemp(e.Name()) {
			if err := os.Remove(filepath.Join(wal, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Write adds r to the table. It never blocks: when the queue is full the row
// is spilled to disk (Options.Spill) or dropped, and counted. A zero
// Timestamp is set to the current time.
func (w *Writer) Write(r Row) {
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	if w.closed.Load() {
		w.dropped.Add(1)
		return
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = w.opts.Clock.Now()
	}
	select {
	case w.q <- r:
	default:
		if w.opts.Spill {
			err := w.spill.append(&r)
			if err == nil {
				w.spilled.Add(1)
				return
			}
			w.noteErr(fmt.Errorf("spill: %w", err))
		}
		w.dropped.Add(1)
	}
}

// Stats returns the counters.
func (w *Writer) Stats() Stats {
	return Stats{
		Written:     w.written.Load(),
		Spilled:     w.spilled.Load(),
		Dropped:     w.dropped.Load(),
		Recovered:   w.recovered.Load(),
		Failed:      w.failed.Load(),
		Skipped:     w.skipped.Load(),
		Deleted:     w.deleted.Load(),
		Quarantined: w.quarantined.Load(),
		Unlogged:    w.unlogged.Load(),
		Errors:      w.errs.Load(),
	}
}

// Healthy returns nil while the writer keeps its promise of durability (see
// the package documentation), and otherwise the last I/O error it met: from
// that error until a FlushInterval passes without one and every row taken
// since is in an fsync'd log segment or a renamed file. Rows accepted meanwhile may be lost
// to a crash. Healthy is safe to call from any goroutine.
func (w *Writer) Healthy() error {
	if err := w.degraded.Load(); err != nil {
		return *err
	}
	return nil
}

// QueueLen returns the number of rows queued for the writer (the spill file
// not counted).
func (w *Writer) QueueLen() int { return len(w.q) }

// QueueCap returns how many rows the queue holds (Options.QueueSize).
func (w *Writer) QueueCap() int { return cap(w.q) }

// Flush writes the rows accepted so far, queued or spilled, and completes
// every open file. It returns the first I/O error since the last Flush that
// kept rows from their files (Stats.Failed: they wait in the write-ahead log
// for the next Open), ErrClosed after Close, or ctx's error if ctx ends
// first (the flush still happens). Errors the writer recovered from, a log
// write it made again, are not returned: see Healthy and Stats.Errors.
func (w *Writer) Flush(ctx context.Context) error {
	_, err := w.call(ctx, func() (int64, error) { return 0, w.flushAll() })
	return err
}

// DeleteEntity flushes (see Flush), then deletes the rows whose entities
// have column == value, as the package-level DeleteEntity does, and
// returns how many it deleted from complete files, every replica's. The
// writer goes on taking rows meanwhile, as other replicas' writers do.
// The tombstone it leaves deletes the entity's rows with a Timestamp
// before the delete (by Options.Clock) that any writer of the table still
// holds, or replays later, this one's included: rows taken during the
// delete, rows the writer failed to write (Stats.Failed), and those other
// writers hold, are deleted when they reach a file, and counted in
// Stats.Deleted of their writer. Rows with a later Timestamp that reach a
// file after the delete are kept.
func (w *Writer) DeleteEntity(ctx context.Context, column, value string) (int64, error) {
	if column == "" {
		return 0, errkind.New(ErrInvalid, "delete entity: column is empty")
	}
	if err := w.Flush(ctx); err != nil {
		return 0, fmt.Errorf("delete entity: %w", err)
	}
	return deleteEntity(w.opts.Dir, column, value, w.opts.Clock.Now())
}

// AppendLabels writes labels to the label table, as the package-level
// AppendLabels does, in files named with the writer's replica id. A zero
// Timestamp is set to the current time (by Options.Clock). It returns an
// ErrInvalid error if a label has no request id.
func (w *Writer) AppendLabels(labels []Label) error {
	return appendLabels(w.opts.Dir, w.opts.Replica, w.opts.Clock.Now(), labels)
}

// Close stops accepting rows (later Write calls count as dropped), writes
// every accepted row, queued or spilled, into renamed Parquet files, removes
// the write-ahead log and spill files, and returns the first I/O error since
// the last Flush that kept rows from their files, as Flush does. If ctx ends first it returns ctx's error and the
// writer finishes in the background; what it could not finish is recovered
// by the next Open.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.stop)
	})
	select {
	case <-w.done:
		return w.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs fn on the writer goroutine.
func (w *Writer) call(ctx context.Context, fn func() (int64, error)) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	if w.closed.Load() {
		return 0, ErrClosed
	}
	res := make(chan result, 1)
	select {
	case w.ctl <- func() { n, err := fn(); res <- result{n, err} }:
	case <-w.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-res:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// drainBatch is how many queued rows the writer takes at once before it
// looks at its other channels again.
const drainBatch = 256

// drain takes up to drainBatch more queued rows without waiting: cheaper per
// row than a select over every channel.
func (w *Writer) drain() {
	for range drainBatch {
		select {
		case r := <-w.q:
			w.add(r)
		default:
			return
		}
	}
}

// run is the writer goroutine. Open makes its ticker, so that a fake clock
// moved right after Open fires it.
func (w *Writer) run(tick clock.Ticker) {
	defer close(w.done)
	defer tick.Stop()
	for !w.step(tick.C()) {
	}
}

// step does one thing the writer goroutine waits for, and reports whether
// the writer is done. A panic in it is logged, counted (see package
// recovery) and taken as an I/O error: the writer reports itself degraded
// and goes on with the next row.
func (w *Writer) step(tick <-chan time.Time) (done bool) {
	defer func() {
		if v := recover(); v != nil {
			w.noteErr(recovery.Recovered(w.opts.Log, PanicSite, v))
		}
	}()
	select {
	case <-w.kill: // before anything else, as a crash would
		w.abandonFiles()
		return true
	default:
	}
	// Spilled rows wait on disk while the log is failing: taken now,
	// their segment could not be deleted and would be replayed twice.
	if len(w.q) == 0 && w.spill.pending.Load() && !w.wal.failed {
		w.takeSpill()
	}
	select {
	case r := <-w.q:
		w.add(r)
		w.drain()
	case <-tick:
		w.tick()
	case fn := <-w.ctl:
		fn()
	case <-w.stop:
		w.shutdown()
		return true
	case <-w.kill:
		w.abandonFiles()
		return true
	}
	return false
}

// add appends r to the log and to its partition's file, or quarantines it
// if it can never be written, or drops it if its entity was deleted (see
// DeleteEntity). It reports whether it kept r: not quarantined nor dropped.
func (w *Writer) add(r Row) (kept bool) {
	if w.dels.all.drops(&r) {
		w.deleted.Add(1)
		return false
	}
	pf, err := w.fileOf(&r)
	if err != nil && poisoned(err) && w.quarantineRow(&r, err) {
		return false
	}
	dropped, lerr := w.wal.append(&r)
	w.noteErr(lerr)
	if dropped > 0 {
		w.unlogged.Add(dropped)
		for _, pf := range w.files {
			pf.unlogged = true
		}
	}
	if err != nil {
		w.fail(err, 1, w.wal.seq)
		return true
	}
	w.addTo(pf, &r)
	return true
}

// fileOf returns the open file of r's partition, creating it if need be. It
// returns an errPoison error if r can never be written (see poisoned).
func (w *Writer) fileOf(r *Row) (*partFile, error) {
	if err := checkRow(r); err != nil {
		return nil, err
	}
	key := partitionOf(r)
	if pf := w.files[key]; pf != nil {
		return pf, nil
	}
	now := w.opts.Clock.Now()
	t, err := createTmp[Row](filepath.Join(w.opts.Dir, key.dir()), w.opts.Replica, now)
	if err != nil {
		return nil, fmt.Errorf("create a file in %s: %w", key.dir(), err)
	}
	pf := &partFile{tmpFile: t, key: key, opened: now, firstSeg: w.wal.seq, tombs: len(w.dels.list), pending: make([]Row, 0, writeBatch)}
	w.files[key] = pf
	return pf, nil
}

// addTo appends r to pf, rolling the file if it is big or old enough.
func (w *Writer) addTo(pf *partFile, r *Row) {
	if err := pf.add(r); err != nil {
		delete(w.files, pf.key)
		pf.discard()
		w.fail(fmt.Errorf("write %s: %w", pf.path(), err), pf.rows, pf.firstSeg)
		return
	}
	if w.due(pf, w.opts.Clock.Now()) && w.complete(false, pf) {
		w.trimLog()
	}
}

// due reports whether pf is big or old enough to complete.
func (w *Writer) due(pf *partFile, now time.Time) bool {
	return pf.size() >= w.opts.MaxFileBytes || now.Sub(pf.opened) >= w.opts.MaxFileAge
}

// renamed is a file the writer renamed lately.
type renamed struct {
	path   string
	at     time.Time // when
	oldest time.Time // the earliest Timestamp of its rows
	tombs  int       // the tombstones its rows were filtered by
}

// recentFor is how long the writer checks the files it renamed against new
// tombstones (see recheck): longer than NFS clients cache a directory's
// listing (acdirmax, 60 s by default).
const recentFor = 5 * time.Minute

// complete completes the files pfs and renames them, holding the table's
// lock shared (see deletes.go) while it reads the tombstones and renames
// them, so that a file holds no row a delete took out of the table; then
// it rechecks the files it renamed lately. If a delete holds the lock and
// wait is false, it leaves the files open and reports false; it tries no
// more until the next tick. A lock that fails otherwise is taken as an I/O
// error, and the files are renamed anyway.
func (w *Writer) complete(wait bool, pfs ...*partFile) bool {
	if len(pfs) == 0 && !w.recheckDue() {
		return true
	}
	how := syscall.LOCK_SH
	if !wait {
		if w.lockBusy {
			return false
		}
		how |= syscall.LOCK_NB
	}
	err := flock(w.dels.f, how)
	if errors.Is(err, errLocked) {
		w.lockBusy = true
		return false
	}
	if err == nil {
		defer func() { w.noteErr(flock(w.dels.f, syscall.LOCK_UN)) }()
	} else {
		w.noteErr(fmt.Errorf("lock %s: %w", w.dels.f.Name(), err))
	}
	w.noteErr(w.refreshDeletes())
	for _, pf := range pfs {
		w.finish(pf)
	}
	w.recheck()
	return true
}

// recheckDue reports whether a file renamed lately was filtered by fewer
// tombstones than the writer knows.
func (w *Writer) recheckDue() bool {
	for _, p := range w.recent {
		if p.tombs < len(w.dels.list) {
			return true
		}
	}
	return false
}

// recheck takes the rows of the tombstones that came after the writer
// renamed a file out of the files it renamed lately. A delete on a local
// disk finds them, but one on NFS may list a directory as its client
// cached it, without a file renamed there a moment before. Only this
// writer changes its files but for deletes, and the caller holds the lock
// shared, so no delete runs meanwhile. A file it cannot rewrite for an I/O
// error is tried again at the next complete.
func (w *Writer) recheck() {
	for i := range w.recent {
		p := &w.recent[i]
		if p.tombs == len(w.dels.list) {
			continue
		}
		drop := w.dels.since(p.tombs)
		if p.oldest.Before(drop.latest) {
			n, err := deleteFrom(p.path, "."+filepath.Base(p.path)+".filter.tmp", drop.drops)
			if err != nil {
				w.noteErr(fmt.Errorf("delete from %s: %w", p.path, err))
				continue
			}
			w.deleted.Add(n)
		}
		p.tombs = len(w.dels.list)
	}
}

// forget drops the files renamed more than recentFor before now from the
// ones recheck checks.
func (w *Writer) forget(now time.Time) {
	w.recent = slices.DeleteFunc(w.recent, func(p renamed) bool { return now.Sub(p.at) > recentFor })
}

// quarantineRow appends r to the quarantine, durably, and reports whether it
// could; why says why r cannot be written.
func (w *Writer) quarantineRow(r *Row, why error) bool {
	err := w.quarantine.append(r)
	if err == nil {
		err = w.quarantine.sync()
	}
	if err != nil {
		w.noteErr(fmt.Errorf("quarantine: %w", err))
		return false
	}
	w.quarantined.Add(1)
	w.opts.Log.Warn("inference table: row quarantined", "request_id", r.RequestID, "reason", why, "dir", w.quarantine.dir)
	return true
}

// quarantinePayload appends to the quarantine a record of the segment at
// path that does not decode as a row.
func (w *Writer) quarantinePayload(payload []byte, path string) error {
	if err := w.quarantine.appendPayload(payload); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	w.quarantined.Add(1)
	w.opts.Log.Warn("inference table: record quarantined", "reason", "not a row this version can read", "segment", path, "dir", w.quarantine.dir)
	return nil
}

// noteErr counts an I/O error, marks the writer degraded (see Healthy) and
// logs the first error of a degraded spell; tick logs the others, a line per
// FlushInterval. It is safe to call from any goroutine.
func (w *Writer) noteErr(err error) {
	if err == nil {
		return
	}
	w.errs.Add(1)
	last := err // only a non-nil error goes to the heap
	if prev := w.degraded.Swap(&last); prev == nil {
		w.opts.Log.Error("inference table: I/O error, rows are not durable until it clears", "dir", w.opts.Dir, "err", err)
	}
}

// durable reports whether every row taken is in an fsync'd log segment or
// a renamed file.
func (w *Writer) durable() bool {
	if !w.wal.durable() {
		return false
	}
	for _, pf := range w.files {
		if pf.unlogged {
			return false
		}
	}
	return true
}

// warnEvery bounds how often a lasting I/O fault is logged again.
const warnEvery = 10 * time.Second

// checkHealth ends a degraded spell once a tick met no error and the log
// is durable, and otherwise logs, every warnEvery, the errors meanwhile.
func (w *Writer) checkHealth(now time.Time) {
	n := w.errs.Load()
	defer func() { w.errsAtTick = n }()
	last := w.degraded.Load()
	if last != nil && !w.spell {
		w.spell, w.warnedAt, w.errsAtWarn = true, now, w.errsAtTick
	}
	switch {
	case last == nil:
	case n == w.errsAtTick && w.durable():
		w.degraded.Store(nil)
		w.spell = false
		w.opts.Log.Info("inference table: durable again", "dir", w.opts.Dir, "errors", n)
	case now.Sub(w.warnedAt) >= warnEvery:
		w.opts.Log.Warn("inference table: I/O errors go on", "dir", w.opts.Dir, "errors", n-w.errsAtWarn, "err", *last)
		w.warnedAt, w.errsAtWarn = now, n
	}
}

// fail records an error that cost rows their file, and keeps the log from
// seg on.
func (w *Writer) fail(err error, rows, seg int64) {
	w.failed.Add(rows)
	w.keepFrom = min(w.keepFrom, seg)
	w.noteErr(err)
	if w.err == nil {
		w.err = err
	}
}

// finish completes pf and renames it, without the rows of the tombstones
// that came after it was opened (see complete).
func (w *Writer) finish(pf *partFile) {
	delete(w.files, pf.key)
	err := pf.writePending()
	var dropped int64
	switch {
	case err != nil:
		pf.discard()
		err = fmt.Errorf("write %s: %w", pf.path(), err)
	case len(w.dels.list) > pf.tombs:
		dropped, err = w.commitFiltered(pf, w.dels.since(pf.tombs))
	default:
		err = pf.commit()
	}
	if err != nil {
		w.fail(err, pf.rows, pf.firstSeg)
		return
	}
	w.deleted.Add(dropped)
	w.written.Add(pf.rows - dropped)
	if dropped < pf.rows {
		w.recent = append(w.recent, renamed{path: pf.path(), at: w.opts.Clock.Now(), oldest: pf.oldest, tombs: len(w.dels.list)})
	}
}

// commitFiltered completes pf and renames it, through a temporary file
// (.<name>.filter.tmp) without the rows drop matches if it has any, and
// returns how many it dropped. A file left without rows is not renamed.
func (w *Writer) commitFiltered(pf *partFile, drop tombSet) (int64, error) {
	if !pf.oldest.Before(drop.latest) {
		return 0, pf.commit() // every row is newer than the tombstones
	}
	if err := pf.close(); err != nil {
		os.Remove(pf.tmpPath())
		return 0, fmt.Errorf("write %s: %w", pf.path(), err)
	}
	ft, n, total, err := filterFile(pf.tmpPath(), pf.dir, pf.name, "."+pf.name+".filter.tmp", drop.drops)
	switch {
	case err != nil:
		err = fmt.Errorf("write %s: %w", pf.path(), err)
	case n == 0:
		return 0, pf.rename()
	case n < total:
		err = ft.commit()
	}
	os.Remove(pf.tmpPath())
	return n, err
}

// trimLog starts a new log segment and deletes the segments whose rows are
// all in renamed files.
func (w *Writer) trimLog() {
	w.noteErr(w.wal.rotate())
	keep := w.keepFrom
	for _, pf := range w.files {
		keep = min(keep, pf.firstSeg)
	}
	w.noteErr(w.wal.trim(keep))
}

// tick makes the log durable and rolls the files that are old enough.
func (w *Writer) tick() {
	w.noteErr(w.wal.sync())
	w.noteErr(w.spill.sync())
	w.noteErr(w.quarantine.sync())
	w.noteErr(w.refreshDeletes())
	now := w.opts.Clock.Now()
	var due []*partFile
	for _, pf := range w.files {
		if w.due(pf, now) {
			due = append(due, pf)
		}
	}
	w.lockBusy = false
	w.forget(now)
	if now.Sub(w.adoptedAt) >= adoptEvery {
		w.adopt(now)
	}
	if w.complete(false, due...) && len(due) > 0 {
		w.trimLog()
	}
	w.checkHealth(now)
	if w.opts.onTick != nil {
		w.opts.onTick()
	}
}

// takeSpill writes the rows of the spill files.
func (w *Writer) takeSpill() {
	paths, err := w.spill.take()
	w.noteErr(err)
	for _, path := range paths {
		w.noteErr(w.replay(path, nil))
	}
}

// replay moves the rows of the log or spill segment at path into the
// current log and their files, counting them in n (if not nil), and the
// records that can never be written into the quarantine; it deletes the
// segment once the log and the quarantine holding its records are durable.
// On error the segment stays, for the next Open.
func (w *Writer) replay(path string, n *atomic.Int64) error {
	var qerr error
	skipped, err := readLog(path, func(r Row) {
		if w.add(r) && n != nil {
			n.Add(1)
		}
	}, func(payload []byte) {
		if err := w.quarantinePayload(payload, path); err != nil && qerr == nil {
			qerr = err
		}
	})
	w.skipped.Add(skipped)
	if err == nil {
		err = qerr
	}
	if err == nil {
		err = w.wal.sync()
	}
	if err == nil {
		err = w.quarantine.sync()
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		return fmt.Errorf("replay %s: %w", path, err)
	}
	return nil
}

// flushAll takes the rows queued and spilled so far and completes every file.
func (w *Writer) flushAll() error {
	for range len(w.q) {
		w.add(<-w.q)
	}
	w.takeSpill()
	w.finishAll()
	err := w.err
	w.err = nil
	return err
}

// finishAll completes every open file, waiting for the lock if a delete
// holds it, and trims the log.
func (w *Writer) finishAll() {
	pfs := make([]*partFile, 0, len(w.files))
	for _, pf := range w.files {
		pfs = append(pfs, pf)
	}
	w.complete(true, pfs...)
	w.trimLog()
}

// shutdown writes every accepted row and stops.
func (w *Writer) shutdown() {
	for {
		select {
		case r := <-w.q:
			w.add(r)
			continue
		default:
		}
		// Close has set closed: once no Write is under way, none will queue.
		if w.inflight.Load() == 0 && len(w.q) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.takeSpill()
	w.finishAll()
	w.closeErr = w.err
	w.dels.f.Close()
	w.owner.Close()
}

// abandonFiles stops as a crash would: the open files stay temporary and the
// log loses what it has not written to the OS.
func (w *Writer) abandonFiles() {
	for _, pf := range w.files {
		pf.f.Close()
	}
	w.files = nil
	w.wal.abandon()
	w.spill.abandon()
	w.quarantine.abandon()
	w.dels.f.Close()
	w.owner.Close()
}

// abandon stops the writer as a crash would, for tests.
func (w *Writer) abandon() {
	w.closed.Store(true)
	close(w.kill)
	<-w.done
}

// PanicSite is where a panic of the writer is counted:
// mlgate_panics_total{where="inference-table writer"}.
const PanicSite = "inference-table writer"
