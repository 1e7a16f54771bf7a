package tables

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Tables written before rows were partitioned by date alone partitioned
// them by endpoint, or by model, then date:
//
//	<dir>/endpoint=<endpoint>/date=<YYYY-MM-DD>/part-....parquet
//	<dir>/model=<model>/date=<YYYY-MM-DD>/part-....parquet
//
// whose "endpoint" directory collides with the endpoint column in readers
// that take partition directories as columns. A Writer moves those files
// to <dir>/date=<YYYY-MM-DD>/ (see migrate); until then the package's
// readers find them where they are.
const (
	legacyEndpointKey = "endpoint="
	legacyModelKey    = "model="
)

// legacyTop reports whether name, a directory of the table, is the first
// directory of a partition of the old layout.
func legacyTop(name string) bool {
	return strings.HasPrefix(name, legacyEndpointKey) || strings.HasPrefix(name, legacyModelKey)
}

// movedPath returns where migrate moves the file of the old layout at rel
// (relative to the table's directory): the same name in the date partition
// of the new layout. It reports whether rel is in the old layout.
func movedPath(rel string) (string, bool) {
	top, rest, ok := strings.Cut(rel, string(filepath.Separator))
	if !ok || !legacyTop(top) {
		return "", false
	}
	return rest, true
}

// migrate moves the complete files of the old layout into the date
// partitions, holding the table's lock (<dir>/_deletes) exclusively, so
// that no delete rewrites them and no writer renames files meanwhile, and
// removes the directories it empties. Each file is moved by one rename,
// under its own name, or, if the date partition already has a file of
// that name, under the name with "~<n>" before ".parquet" (see
// partReplica): a crash leaves each file in one place or the other, and
// the next Open goes on. If wait is false and a delete holds the lock, it
// does nothing, and moves them the next time. Temporary files stay where
// they are, but those of deletes, which the lock shows are gone; their
// directories are removed once empty.
func (w *Writer) migrate(wait bool) error {
	tops, err := legacyTops(w.opts.Dir)
	if err != nil {
		return fmt.Errorf("move the files of the old layout: %w", err)
	}
	if len(tops) == 0 {
		return nil
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	err = flock(w.dels.f, how)
	if errors.Is(err, errLocked) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("move the files of the old layout: lock %s: %w", w.dels.f.Name(), err)
	}
	defer func() { w.noteErr(flock(w.dels.f, syscall.LOCK_UN)) }()
	n, err := migrateFiles(w.opts.Dir, tops)
	if n > 0 {
		w.opts.Log.Info("inference table: moved files of the old layout (endpoint=/model= directories) to their date partitions", "dir", w.opts.Dir, "files", n)
	}
	if err != nil {
		return fmt.Errorf("move the files of the old layout: %w", err)
	}
	return nil
}

// legacyTops returns the directories of the table in dir that begin
// partitions of the old layout.
func legacyTops(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var tops []string
	for _, e := range ents {
		if e.IsDir() && legacyTop(e.Name()) {
			tops = append(tops, e.Name())
		}
	}
	return tops, nil
}

// migrateFiles moves the complete files under the old-layout directories
// tops of the table in dir (see migrate) and returns how many it moved.
// The caller holds the table's lock exclusively.
func migrateFiles(dir string, tops []string) (int, error) {
	moved := 0
	for _, top := range tops {
		dates, err := os.ReadDir(filepath.Join(dir, top))
		if err != nil {
			return moved, err
		}
		for _, d := range dates {
			if !d.IsDir() || !strings.HasPrefix(d.Name(), dateKey) {
				continue
			}
			n, err := migrateDate(filepath.Join(dir, top, d.Name()), filepath.Join(dir, d.Name()))
			moved += n
			if err != nil {
				return moved, err
			}
		}
		os.Remove(filepath.Join(dir, top)) // fails if not empty: left as it is
	}
	return moved, nil
}

// migrateDate moves the complete files of the directory src to dst, makes
// both names durable, and removes src if that empties it. It returns how
// many files it moved.
func migrateDate(src, dst string) (int, error) {
	ents, err := os.ReadDir(src)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if isTemp(name) && strings.HasPrefix(name, ".del-") {
			if err := os.Remove(filepath.Join(src, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return moved, err
			}
			continue
		}
		if !isPart(name) {
			continue
		}
		if moved == 0 {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return moved, err
			}
		}
		to, err := freeName(dst, name)
		if err != nil {
			return moved, err
		}
		if err := os.Rename(filepath.Join(src, name), filepath.Join(dst, to)); err != nil {
			return moved, err
		}
		moved++
	}
	if moved > 0 {
		if err := syncDir(dst); err != nil {
			return moved, err
		}
		if err := syncDir(src); err != nil {
			return moved, err
		}
	}
	os.Remove(src) // fails if not empty (a writer of an older version at work, say): left as it is
	return moved, nil
}

// freeName returns name if dir has no file of that name, and otherwise the
// first name part-...~<n>.parquet it has none of.
func freeName(dir, name string) (string, error) {
	base := strings.TrimSuffix(name, ".parquet")
	for n := 0; ; n++ {
		try := name
		if n > 0 {
			try = base + "~" + strconv.Itoa(n) + ".parquet"
		}
		_, err := os.Lstat(filepath.Join(dir, try))
		if errors.Is(err, fs.ErrNotExist) {
			return try, nil
		}
		if err != nil {
			return "", err
		}
	}
}
