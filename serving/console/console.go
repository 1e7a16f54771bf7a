// Package console serves mlgate's web console: a page and its scripts and
// styles, embedded in the binary, that sign in with an API key and call the
// gateway's JSON API from the browser. The assets need no key; every API
// call the page makes sends one.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Prefix is where the console is served.
const Prefix = "/ui/"

//go:embed assets
var assets embed.FS

// Headers of every asset. The policy allows scripts, styles and calls of
// this origin only: no inline script, no framing.
const (
	contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	// Assets are revalidated on every load (their ETag is their hash), so
	// a new binary's console is seen at once.
	cacheControl = "no-cache"
)

// contentTypes are those of the assets' extensions; an asset of another
// extension is refused by load.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is an embedded asset, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the console's assets.
type handler struct {
	files map[string]file // by path under Prefix: "app.css", "js/main.js", and "" for index.html
}

// load reads the embedded assets.
func load() (*handler, error) {
	root, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("console assets: %w", err)
	}
	h := &handler{files: map[string]file{}}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", p)
		}
		sum := sha256.Sum256(body)
		f := file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		h.files[p] = f
		if p == "index.html" {
			h.files[""] = f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console assets: %w", err)
	}
	return h, nil
}

// Mount serves the console under Prefix on app and redirects / and /ui to
// it. It panics if the embedded assets cannot be read, which the package's
// tests rule out.
func Mount(app fiber.Router) {
	h, err := load()
	if err != nil {
		panic(err)
	}
	app.Get("/", toConsole)
	app.Get(Prefix+"*", h.serve)
}

func toConsole(c *fiber.Ctx) error { return c.Redirect(Prefix, fiber.StatusFound) }

// serve answers one asset, 304 when the caller has it already. The route
// matches /ui too, whose page would look for its assets one level up.
func (h *handler) serve(c *fiber.Ctx) error {
	if !strings.HasPrefix(c.Path(), Prefix) {
		return toConsole(c)
	}
	f, ok := h.files[c.Params("*")]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderCacheControl, cacheControl)
	c.Set(fiber.HeaderETag, f.etag)
	if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, f.contentType)
	return c.Send(f.body)
}
