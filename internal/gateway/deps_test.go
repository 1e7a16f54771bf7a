package gateway

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// storePackages are the concrete stores: the composition root (this
// package) alone picks them, and every other package reaches a store
// through the interface its domain declares.
var storePackages = []string{
	"drift/bolt",
	"drift/postgres",
	"featurestore/cassandra",
	"featurestore/embedded",
	"featurestore/postgres",
	"featurestore/feast",
	"featurestore/redis",
	"internal/changes/postgres",
	"registry/bolt",
	"registry/localfs",
	"registry/postgres",
	"router/bolt",
	"router/postgres",
}

const module = "github.com/mlgate/mlgate/"

// TestOnlyTheRootImportsStores lists every package of the module with go
// list -deps and fails when one depends on a concrete store other than
// through the composition root: the root itself, the binaries built on it
// (which import the root), and the stores themselves may.
func TestOnlyTheRootImportsStores(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Deps ","}}|{{join .TestImports ","}},{{join .XTestImports ","}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	root := module + "internal/gateway"
	isStore := func(p string) bool { return slices.Contains(storePackages, strings.TrimPrefix(p, module)) }
	checked := 0
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		parts := strings.Split(strings.TrimSpace(line), "|")
		pkg, deps, testImports := parts[0], strings.Split(parts[1], ","), strings.Split(parts[2], ",")
		if pkg == root || isStore(pkg) || slices.Contains(deps, root) {
			continue
		}
		checked++
		for _, d := range deps {
			if isStore(d) {
				t.Errorf("%s depends on the concrete store %s; only the composition root (%s) may", pkg, d, root)
			}
		}
		// serving's tests build the gateway through the root too.
		if pkg == module+"serving" {
			for _, d := range testImports {
				if isStore(d) {
					t.Errorf("serving's tests import the concrete store %s; they build the gateway through %s", d, root)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked: go list gave\n%s", checked, out)
	}
}
