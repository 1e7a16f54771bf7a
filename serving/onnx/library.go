package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv names the environment variable that points at the ONNX Runtime
// shared library.
const LibraryEnv = "ONNXRUNTIME_LIB"

// cacheDir is where `make` puts the library, relative to the repository root.
const cacheDir = ".cache/onnxruntime"

// minVersion is the oldest ONNX Runtime whose C API onnxruntime_go needs.
var minVersion = [2]int{1, 24}

// FindLibrary returns the path of the ONNX Runtime shared library: the
// configured path when set, else $ONNXRUNTIME_LIB, else the copy `make`
// fetched into the repository holding the running binary (or the working
// directory), else one on the system's library paths. When there is none, the
// error lists every place it looked and how to fix it.
func FindLibrary(configured string) (string, error) {
	if configured != "" {
		return existing(configured, "onnx.library")
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		return existing(env, LibraryEnv)
	}
	var looked []string
	for _, start := range searchStarts() {
		for dir := start; ; dir = filepath.Dir(dir) {
			pattern := filepath.Join(dir, cacheDir, "*", "libonnxruntime.so*")
			if found, _ := filepath.Glob(pattern); len(found) > 0 {
				slices.Sort(found) // version directories: the newest sorts last
				return found[len(found)-1], nil
			}
			looked = append(looked, filepath.Join(dir, cacheDir))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, dir := range systemLibraryDirs() {
		for _, name := range []string{"libonnxruntime.so", "libonnxruntime.so.1"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		looked = append(looked, dir)
	}
	return "", fmt.Errorf("ONNX Runtime shared library not found; looked in %s. "+
		"To fix: run `make build` in the mlgate repository (it fetches ONNX Runtime from the npm registry), "+
		"or set %s=/path/to/libonnxruntime.so (or onnx.library in the config) to a library of version %d.%d or newer",
		strings.Join(dedupe(looked), ", "), LibraryEnv, minVersion[0], minVersion[1])
}

func existing(path, source string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("ONNX Runtime library %s (from %s): %w", path, source, err)
	}
	return path, nil
}

// searchStarts are the directories whose ancestors may hold the repository
// cache: the running binary's (bin/mlgate sits in the repository) and the
// working directory's (go test and go run build elsewhere).
func searchStarts() []string {
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	return starts
}

func systemLibraryDirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return append(dirs, "/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/opt/onnxruntime/lib")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

var initState struct {
	sync.Mutex
	path string
}

// Init loads the ONNX Runtime library at path and prepares its environment.
// It may be called again with the same path; ONNX Runtime allows one library
// per process, so a different path is an error.
func Init(path string) error {
	initState.Lock()
	defer initState.Unlock()
	if initState.path != "" {
		if initState.path != path {
			return fmt.Errorf("ONNX Runtime is already loaded from %s; cannot also load %s", initState.path, path)
		}
		return nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("initialise ONNX Runtime from %s (version %d.%d or newer is needed): %w", path, minVersion[0], minVersion[1], err)
	}
	if v := ort.GetVersion(); !atLeast(v, minVersion) {
		ort.DestroyEnvironment()
		return fmt.Errorf("ONNX Runtime at %s is version %s; mlgate needs %d.%d or newer", path, v, minVersion[0], minVersion[1])
	}
	initState.path = path
	return nil
}

// Version returns the loaded ONNX Runtime's version.
func Version() string { return ort.GetVersion() }

var errNotInitialised = errors.New("ONNX Runtime is not initialised")

func atLeast(version string, min [2]int) bool {
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > min[0] || (major == min[0] && minor >= min[1])
}
