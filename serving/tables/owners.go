package tables

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
)

// A Writer holds <dir>/_owners/<replica>.lock (flock) while it is open, so
// that two writers never share a replica id in one table, and so that the
// others can tell whether a replica whose log is on disk is running (see
// adopt). The writer without id holds <dir>/_owners/_.lock: no replica id
// starts with '_'.
const ownersDir = "_owners"

// ownerPath returns the path of the owner lock of the replica.
func ownerPath(dir, replica string) string {
	if replica == "" {
		replica = "_"
	}
	return filepath.Join(dir, ownersDir, replica+".lock")
}

// lockOwner locks the owner file of the replica in the table dir for a
// Writer, or returns an errkind.Conflict error if a writer holds it.
func lockOwner(dir, replica string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(dir, ownersDir), 0o755); err != nil {
		return nil, fmt.Errorf("open inference table: %w", err)
	}
	f, err := lockFile(ownerPath(dir, replica), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case errors.Is(err, errLocked):
		return nil, errkind.New(errkind.Conflict, "open inference table: a writer of replica id %q has %s open (another process, or a replica adopting its log for a moment): give each replica its own id", replica, dir)
	case err != nil:
		return nil, fmt.Errorf("open inference table: lock %s (the file system must support flock): %w", ownerPath(dir, replica), err)
	}
	return f, nil
}

// lockFile opens the file at path, creating it if need be, and applies the
// flock operation how to it; then it makes sure the file it locked is still
// the one at path, and otherwise starts again. A writer adopting a log
// unlinks the owner file while it holds it (see adoptReplica): a lock
// taken on that file is no one's.
func lockFile(path string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := flock(f, how); err != nil {
			f.Close()
			return nil, err
		}
		held, err := f.Stat()
		if err == nil {
			var now fs.FileInfo
			if now, err = os.Stat(path); err == nil && os.SameFile(held, now) {
				return f, nil
			}
		}
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// adoptEvery is how often a Writer looks for the logs of replicas that are
// not running, and for files of the old layout (see adopt).
const adoptEvery = time.Minute

// adopt takes over what other writers left. It moves the files of the old
// layout into the date partitions (see migrate): at Open, waiting for a
// delete that holds the table's lock, later only if no delete does, so
// that the files a writer of an older version adds in a fleet that is
// being upgraded are moved too. Then it writes the rows left in the log
// and spill files of every other replica of the table whose writer is not
// open anywhere (its owner lock is free: one that crashed, and came back
// under another id or not at all), as Open writes its own, and removes
// its directories but its quarantine, and its owner file. A replica
// opening while its log is adopted fails with a Conflict error, and may
// try again at once. An I/O error leaves the rest of that log, or of
// those files, for later.
func (w *Writer) adopt(now time.Time) {
	w.noteErr(w.migrate(w.adoptedAt.IsZero()))
	w.adoptedAt = now
	ids, err := w.others()
	w.noteErr(err)
	for _, id := range ids {
		w.noteErr(w.adoptReplica(id))
	}
}

// others returns the ids of the other replicas with a log or spill
// directory or an owner file in the table: "" for the writer without id,
// if _wal or _spill holds its segments.
func (w *Writer) others() ([]string, error) {
	seen := map[string]bool{w.opts.Replica: true}
	var ids []string
	for _, d := range []string{walDir, spillDir, ownersDir} {
		ents, err := os.ReadDir(filepath.Join(w.opts.Dir, d))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("adopt: %w", err)
		}
		for _, e := range ents {
			id := e.Name()
			if d == ownersDir {
				id = strings.TrimSuffix(id, ".lock")
			} else if !e.IsDir() {
				continue
			}
			if validReplica(id) && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if !seen[""] {
		segs, _ := segments(filepath.Join(w.opts.Dir, walDir), walExt)
		spilled, _ := segments(filepath.Join(w.opts.Dir, spillDir), spillExt)
		if len(segs)+len(spilled) > 0 {
			ids = append(ids, "")
		}
	}
	return ids, nil
}

// adoptReplica adopts the log of replica id unless its writer is open (see
// adopt).
func (w *Writer) adoptReplica(id string) error {
	owner, err := lockFile(ownerPath(w.opts.Dir, id), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, errLocked) {
		return nil // running
	}
	if err != nil {
		return fmt.Errorf("adopt replica %q: lock: %w", id, err)
	}
	defer owner.Close()
	walPath := filepath.Join(w.opts.Dir, walDir, id)
	spillPath := filepath.Join(w.opts.Dir, spillDir, id)
	var old []string
	for _, d := range []struct{ path, ext string }{{walPath, walExt}, {spillPath, spillExt}} {
		seqs, err := segments(d.path, d.ext)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("adopt replica %q: %w", id, err)
		}
		for _, seq := range seqs {
			old = append(old, segPath(d.path, seq, d.ext))
		}
	}
	if id != "" { // temporary files without id may be AppendLabels' at work
		if err := removeTemps(w.opts.Dir, id, walPath); err != nil {
			return fmt.Errorf("adopt replica %q: %w", id, err)
		}
	}
	before := w.recovered.Load()
	for _, path := range old {
		if err := w.replay(path, &w.recovered); err != nil {
			return fmt.Errorf("adopt replica %q: %w", id, err)
		}
	}
	if len(old) > 0 {
		w.opts.Log.Info("inference table: adopted the log of a replica that is not running", "dir", w.opts.Dir, "replica", id, "rows", w.recovered.Load()-before)
	}
	// While the lock is held: a writer of id makes its directories once it
	// holds the lock, the owner file again included (see lockFile).
	if id != "" {
		os.Remove(walPath)
		os.Remove(spillPath)
	}
	if err := os.Remove(owner.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("adopt replica %q: %w", id, err)
	}
	return nil
}
