package testservers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// RequireImmutable skips the test unless chattr +i makes a directory refuse
// writes here (root, on ext4 or xfs), the real I/O fault the disk tests
// make; under CI a missing facility fails the test instead.
func RequireImmutable(tb testing.TB) {
	tb.Helper()
	dir := tb.TempDir()
	err := exec.Command("chattr", "+i", dir).Run()
	if err == nil {
		defer exec.Command("chattr", "-i", dir).Run()
		f, cerr := os.Create(filepath.Join(dir, "probe"))
		if cerr == nil {
			f.Close()
			err = errors.New("a file was created in an immutable directory")
		} else if errors.Is(cerr, syscall.EPERM) {
			return
		} else {
			err = cerr
		}
	}
	msg := fmt.Sprintf("chattr +i does not make a directory read-only here (%v): the I/O fault tests need it (root, ext4 or xfs)", err)
	if InCI() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Immutable sets or clears the immutable flag of dir and everything in it:
// while set, every write, creation, rename or deletion there fails with
// EPERM, through files already open too. The flag is cleared when the test
// ends, whatever happens.
func Immutable(tb testing.TB, dir string, on bool) {
	tb.Helper()
	flag := "-i"
	if on {
		flag = "+i"
		tb.Cleanup(func() { exec.Command("chattr", "-R", "-i", dir).Run() })
	}
	if out, err := exec.Command("chattr", "-R", flag, dir).CombinedOutput(); err != nil {
		tb.Fatalf("chattr -R %s %s: %v %s", flag, dir, err, out)
	}
}
