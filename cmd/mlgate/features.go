package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/feast"
	"github.com/mlgate/mlgate/featurestore/ingest"
)

// featuresCommand is `mlgate features`: the feature views of a running
// gateway.
func featuresCommand() *cobra.Command {
	return clientGroup("features", "Define feature views and load rows into them", `  mlgate features apply -f views.yaml
  mlgate features ingest --view user --file users.csv
  mlgate features import-feast --registry feature_repo/data/registry.db --project driver_stats`,
		featuresApply, featuresIngest, featuresImportFeast)
}

// featuresImportFeast creates (or changes) a view of store feast-redis for
// each feature view of a Feast project, from Feast's registry file.
func featuresImportFeast(c *client) *cobra.Command {
	var registryFile, project string
	var cacheTTL time.Duration
	cmd := &cobra.Command{
		Use:   "import-feast --registry FILE --project PROJECT",
		Short: "Create a view of store feast-redis for each feature view of a Feast project",
		Long: `Create (or change) a view of store feast-redis for each feature view of a Feast
project, read from Feast's registry file, so that mlgate reads the rows Feast
materialized into Redis.`,
		Example: "  mlgate features import-feast --registry feature_repo/data/registry.db --project driver_stats --cache-ttl 1m",
		Args:    positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if registryFile == "" || project == "" {
				return usageErrorf(cmd, "--registry FILE and --project P are required")
			}
			return importFeast(c, registryFile, project, cacheTTL)
		},
	}
	cmd.Flags().StringVar(&registryFile, "registry", "", "Feast's registry `file` (registry.db of a file registry; required)")
	cmd.Flags().StringVar(&project, "project", "", "the Feast `project` whose feature views to import (required)")
	cmd.Flags().DurationVar(&cacheTTL, "cache-ttl", 0, "cache_ttl of the views (0: not cached)")
	return cmd
}

// importFeast imports the feature views of project from the Feast registry
// file registryFile, with cacheTTL.
func importFeast(c *client, registryFile, project string, cacheTTL time.Duration) error {
	data, err := os.ReadFile(registryFile)
	if err != nil {
		return err
	}
	views, leftOut, err := feast.ImportRegistry(data, project)
	if err != nil {
		return fmt.Errorf("%s: %w", registryFile, err)
	}
	for _, why := range leftOut {
		fmt.Fprintf(stderr, "left out %s\n", why)
	}
	if len(views) == 0 {
		return fmt.Errorf("%s: project %s has no feature view mlgate can read", registryFile, project)
	}
	for i, imp := range views {
		v := imp.View
		body := viewSpec{Entities: v.Entities, Features: v.Features, TTL: time.Duration(v.TTL).String(), Store: v.Store,
			CacheTTL: cacheTTL.String(), Feast: v.Feast}
		var out featurestore.View
		if err := c.doJSON(http.MethodPut, "/v1/feature-views/"+url.PathEscape(v.Name), body, &out); err != nil {
			return fmt.Errorf("feast view %s failed: %w; %s", v.Name, err, countViews(i))
		}
		fmt.Fprintf(stdout, "imported feast view %s of project %s: %s (%s), %s, ttl %s\n", out.Name, project,
			plural(len(out.Entities), "entity", "entities"), strings.Join(out.Entities, ", "),
			plural(len(out.Features), "feature", "features"), time.Duration(out.TTL))
		for _, s := range imp.Skipped {
			fmt.Fprintf(stderr, "  left out feature %s\n", s)
		}
	}
	return nil
}

// viewSpec is one view of a views file, and the body of its PUT.
type viewSpec struct {
	Name     string                 `json:"-"`
	Entities []string               `json:"entities"`
	Features []featurestore.Feature `json:"features"`
	TTL      string                 `json:"ttl,omitempty"`
	Store    string                 `json:"store,omitempty"`
	CacheTTL string                 `json:"cache_ttl,omitempty"`
	// Feast says where Feast keeps a view of store feast-redis.
	Feast *featurestore.FeastSource `json:"feast,omitempty"`
	line  int                       // of the view in the file
	key   string                    // views[i]
	lines map[string]int            // of its keys
}

func featuresApply(c *client) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f VIEWS.yaml",
		Short: "Create or change the feature views of a YAML file",
		Long: `Create or change the feature views of a YAML file. Every view is checked
before any is sent; an unknown key or a value of the wrong shape is an error
that names it and its line.`,
		Example: "  mlgate features apply -f views.yaml",
		Args:    positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf(cmd, "-f FILE is required")
			}
			return applyViews(c, file)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML `file` of views (required)")
	return cmd
}

// applyViews creates or changes the views of the YAML file at file.
func applyViews(c *client, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	views, err := decodeViews(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for i, v := range views {
		var out featurestore.View
		if err := c.doJSON(http.MethodPut, "/v1/feature-views/"+url.PathEscape(v.Name), v, &out); err != nil {
			return fmt.Errorf("%s: view %s (%s, line %d) failed: %w; %s", file, v.Name, v.key, v.line, err, countViews(i))
		}
		fmt.Fprintf(stdout, "applied view %s: %s, %s, ttl %s, store %s, cache_ttl %s\n", out.Name,
			plural(len(out.Entities), "entity", "entities"), plural(len(out.Features), "feature", "features"),
			time.Duration(out.TTL), out.Store, time.Duration(out.CacheTTL))
	}
	return nil
}

func countViews(n int) string {
	switch n {
	case 0:
		return "no view applied"
	case 1:
		return "1 view applied before it"
	}
	return fmt.Sprintf("%d views applied before it", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// decodeViews decodes a views file strictly: an unknown or repeated key, or
// a value of the wrong shape, is an error that names it and its line. Every
// view is checked before any is sent.
func decodeViews(data []byte) ([]viewSpec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("no views: want a mapping with a list of views under the key views")
	}
	var views []viewSpec
	err := yamlMapping(doc.Content[0], "", map[string]func(*yaml.Node, string) error{
		"views": func(n *yaml.Node, key string) error {
			return yamlSequence(n, key, func(n *yaml.Node, key string) error {
				v := viewSpec{line: n.Line, key: key, lines: map[string]int{}}
				err := yamlMapping(n, key, map[string]func(*yaml.Node, string) error{
					"name":      yamlString(&v.Name),
					"ttl":       yamlString(&v.TTL),
					"store":     yamlString(&v.Store),
					"cache_ttl": yamlString(&v.CacheTTL),
					"feast": func(n *yaml.Node, key string) error {
						v.Feast = &featurestore.FeastSource{}
						return yamlMapping(n, key, map[string]func(*yaml.Node, string) error{
							"project": yamlString(&v.Feast.Project),
							"view":    yamlString(&v.Feast.View),
							"entity_types": func(n *yaml.Node, key string) error {
								return yamlSequence(n, key, func(n *yaml.Node, key string) error {
									var t string
									err := yamlString(&t)(n, key)
									v.Feast.EntityTypes = append(v.Feast.EntityTypes, t)
									return err
								})
							},
						})
					},
					"entities": func(n *yaml.Node, key string) error {
						return yamlSequence(n, key, func(n *yaml.Node, key string) error {
							var e string
							if err := yamlString(&e)(n, key); err != nil {
								return err
							}
							v.Entities = append(v.Entities, e)
							return nil
						})
					},
					"features": func(n *yaml.Node, key string) error {
						return yamlSequence(n, key, func(n *yaml.Node, key string) error {
							var f featurestore.Feature
							err := yamlMapping(n, key, map[string]func(*yaml.Node, string) error{
								"name": yamlString(&f.Name),
								"type": yamlString((*string)(&f.Type)),
							})
							v.Features = append(v.Features, f)
							return err
						})
					},
				})
				if err != nil {
					return err
				}
				m := yamlDeref(n)
				for i := 0; i+1 < len(m.Content); i += 2 {
					v.lines[m.Content[i].Value] = m.Content[i].Line
				}
				views = append(views, v)
				return nil
			})
		},
	})
	if err != nil {
		return nil, err
	}
	if len(views) == 0 {
		return nil, errors.New("no views: want a list of views under the key views")
	}
	seen := map[string]string{}
	for _, v := range views {
		if v.Name == "" {
			return nil, fmt.Errorf("%s (line %d): name is required", v.key, v.line)
		}
		if other, dup := seen[v.Name]; dup {
			return nil, fmt.Errorf("%s (line %d): view %s is already given as %s", v.key, v.line, v.Name, other)
		}
		seen[v.Name] = v.key
		check := featurestore.View{Name: v.Name, Entities: v.Entities, Features: v.Features, Store: v.Store, Feast: v.Feast}
		for _, d := range []struct {
			key, s string
			to     *featurestore.Duration
		}{{"ttl", v.TTL, &check.TTL}, {"cache_ttl", v.CacheTTL, &check.CacheTTL}} {
			if d.s == "" {
				continue
			}
			if err := d.to.UnmarshalJSON([]byte(strconv.Quote(d.s))); err != nil {
				return nil, fmt.Errorf("%s.%s (line %d): %w", v.key, d.key, v.lines[d.key], err)
			}
		}
		if err := check.Check(); err != nil {
			return nil, fmt.Errorf("%s (line %d): %w", v.key, v.line, err)
		}
	}
	return views, nil
}

// yamlMapping decodes the mapping n, at key path key, calling the field's
// function for each key; a key without one is an error.
func yamlMapping(n *yaml.Node, key string, fields map[string]func(*yaml.Node, string) error) error {
	n = yamlDeref(n)
	if n.Kind != yaml.MappingNode {
		return yamlKindError(n, key, "a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		k := kn.Value
		path := k
		if key != "" {
			path = key + "." + k
		}
		decode, ok := fields[k]
		if kn.Kind != yaml.ScalarNode || !ok {
			return fmt.Errorf("unknown key %q (line %d)", path, kn.Line)
		}
		if seen[k] {
			return fmt.Errorf("duplicate key %q (line %d)", path, kn.Line)
		}
		seen[k] = true
		if err := decode(vn, path); err != nil {
			return err
		}
	}
	return nil
}

// yamlSequence decodes the sequence n item by item; null is an empty one.
func yamlSequence(n *yaml.Node, key string, item func(*yaml.Node, string) error) error {
	n = yamlDeref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return yamlKindError(n, key, "a list")
	}
	for i, c := range n.Content {
		if err := item(c, fmt.Sprintf("%s[%d]", key, i)); err != nil {
			return err
		}
	}
	return nil
}

// yamlString decodes a single value as text; null leaves it empty.
func yamlString(to *string) func(*yaml.Node, string) error {
	return func(n *yaml.Node, key string) error {
		n = yamlDeref(n)
		if n.Kind != yaml.ScalarNode {
			return yamlKindError(n, key, "a single value")
		}
		if n.ShortTag() != "!!null" {
			*to = n.Value
		}
		return nil
	}
}

func yamlDeref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func yamlKindError(n *yaml.Node, key, want string) error {
	got := "a single value"
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	}
	if key == "" {
		key = "the top level"
	}
	return fmt.Errorf("%s (line %d): want %s, got %s", key, n.Line, want, got)
}

const maxBatch = 100000

func featuresIngest(c *client) *cobra.Command {
	var viewName, file, format string
	var batch int
	cmd := &cobra.Command{
		Use:   "ingest --view VIEW --file ROWS.csv|ROWS.parquet",
		Short: "Load the rows of a CSV or Parquet file into a feature view",
		Long: `Load the rows of a CSV or Parquet file into a feature view, in batches; a
failed batch names the file's lines and the rows written before it.`,
		Example: `  mlgate features ingest --view user --file users.csv
  mlgate features ingest --view user --file users.data --format parquet --batch 5000`,
		Args: positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if viewName == "" || file == "" {
				return usageErrorf(cmd, "--view and --file are required")
			}
			if batch < 1 || batch > maxBatch {
				return usageErrorf(cmd, "--batch %d: want 1 to %d rows", batch, maxBatch)
			}
			if format == "" {
				switch strings.ToLower(filepath.Ext(file)) {
				case ".csv":
					format = "csv"
				case ".parquet", ".pq":
					format = "parquet"
				default:
					return usageErrorf(cmd, "cannot tell the format of %s from its extension: give --format csv or --format parquet", file)
				}
			}
			if format != "csv" && format != "parquet" {
				return usageErrorf(cmd, "--format %q: want csv or parquet", format)
			}
			return ingestFile(c, viewName, file, format, batch)
		},
	}
	cmd.Flags().StringVar(&viewName, "view", "", "feature `view` to write into (required)")
	cmd.Flags().StringVar(&file, "file", "", "CSV or Parquet `file` of rows (required)")
	cmd.Flags().StringVar(&format, "format", "", "file `format`, csv or parquet (default: from the file's extension)")
	cmd.Flags().IntVar(&batch, "batch", 1000, "rows per request")
	cmd.RegisterFlagCompletionFunc("view", c.completeNames("/v1/feature-views", "views"))
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"csv", "parquet"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// ingestFile sends the rows of file, of format csv or parquet, to view
// viewName in batches of batch rows.
func ingestFile(c *client, viewName, file, format string, batch int) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	var view featurestore.View
	if err := c.do(http.MethodGet, "/v1/feature-views/"+url.PathEscape(viewName), "", nil, &view); err != nil {
		return fmt.Errorf("view %s: %w", viewName, err)
	}
	if view.Name == "" {
		view.Name = viewName
	}

	in := &ingestRun{c: c, view: viewName, file: file, unit: "line", start: time.Now()}
	var r ingest.Reader
	if format == "csv" {
		cr, err := ingest.NewCSV(f, &view)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		r = cr
		in.progress = func() string {
			if info.Size() == 0 {
				return ""
			}
			return fmt.Sprintf(" (%d%% of the file)", cr.Offset()*100/info.Size())
		}
	} else {
		pr, err := ingest.NewParquet(f, info.Size(), &view)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		defer pr.Close()
		r, in.unit = pr, "row"
		in.progress = func() string {
			if pr.NumRows() == 0 {
				return ""
			}
			return fmt.Sprintf(" of %d (%d%%)", pr.NumRows(), in.sent*100/pr.NumRows())
		}
	}
	if fe, ok := stderr.(*os.File); ok {
		if st, err := fe.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			in.bar = fe
		}
	}
	return in.run(r, batch)
}

// ingestRun sends the rows of a file in batches.
type ingestRun struct {
	c        *client
	view     string
	file     string
	unit     string // "line" or "row": what locates a row in the file
	start    time.Time
	sent     int64 // rows the gateway took
	written  int64 // rows the gateway says it wrote
	lastLine int64 // of the last row sent
	progress func() string
	bar      io.Writer // progress bar, when stderr is a terminal
	barAt    time.Time
	barLen   int
}

func (in *ingestRun) run(r ingest.Reader, batchSize int) error {
	rows := make([]map[string]any, 0, batchSize)
	lines := make([]int64, 0, batchSize)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			in.clearBar()
			return fmt.Errorf("%s: %w; %s", in.file, err, in.sentSoFar())
		}
		rows, lines = append(rows, rec.Values), append(lines, rec.Line)
		if len(rows) == batchSize {
			if err := in.send(rows, lines); err != nil {
				return err
			}
			rows, lines = rows[:0], lines[:0]
		}
	}
	if len(rows) > 0 {
		if err := in.send(rows, lines); err != nil {
			return err
		}
	}
	in.clearBar()
	elapsed := time.Since(in.start)
	rate := float64(in.sent) / max(elapsed.Seconds(), 1e-9)
	if in.written != in.sent {
		fmt.Fprintf(stderr, "note: the gateway reports %d of the %d rows written (a row older than the one it holds is ignored)\n", in.written, in.sent)
	}
	fmt.Fprintf(stdout, "ingested %d rows into view %s in %.2fs (%.0f rows/s)\n", in.sent, in.view, elapsed.Seconds(), rate)
	return nil
}

// sentSoFar says what was written before a failure.
func (in *ingestRun) sentSoFar() string {
	if in.sent == 0 {
		return "no rows were written"
	}
	return fmt.Sprintf("%d rows were written before it (through %s %d), none after", in.sent, in.unit, in.lastLine)
}

// send posts one batch; lines locates its rows in the file.
func (in *ingestRun) send(rows []map[string]any, lines []int64) error {
	var out struct {
		Written int64 `json:"written"`
	}
	err := in.c.doJSON(http.MethodPost, "/v1/feature-views/"+url.PathEscape(in.view)+"/rows", map[string]any{"rows": rows}, &out)
	if err != nil {
		in.clearBar()
		first, last := lines[0], lines[len(lines)-1]
		return fmt.Errorf("%s: the batch of %ss %d to %d failed: %s; %s", in.file, in.unit, first, last, in.mapRows(err.Error(), lines), in.sentSoFar())
	}
	in.sent += int64(len(rows))
	in.written += out.Written
	in.lastLine = lines[len(lines)-1]
	in.drawBar()
	return nil
}

// rowRef matches a reference to a row of a request, and the column after it.
var rowRef = regexp.MustCompile(`rows\[(\d+)\](?:\.([A-Za-z0-9_]+))?(:?)`)

// mapRows rewrites the gateway's references to rows of the batch, rows[i]
// and rows[i].col, as the file's lines: line N, column "col".
func (in *ingestRun) mapRows(msg string, lines []int64) string {
	return rowRef.ReplaceAllStringFunc(msg, func(m string) string {
		sub := rowRef.FindStringSubmatch(m)
		i, err := strconv.Atoi(sub[1])
		if err != nil || i >= len(lines) {
			return m
		}
		s := fmt.Sprintf("%s %d", in.unit, lines[i])
		if sub[2] != "" {
			s += fmt.Sprintf(", column %q", sub[2])
		}
		return s + sub[3]
	})
}

// drawBar redraws the progress bar, at most ten times a second.
func (in *ingestRun) drawBar() {
	if in.bar == nil || time.Since(in.barAt) < 100*time.Millisecond {
		return
	}
	in.barAt = time.Now()
	s := fmt.Sprintf("sent %d rows%s", in.sent, in.progress())
	pad := max(in.barLen-len(s), 0)
	fmt.Fprintf(in.bar, "\r%s%s", s, strings.Repeat(" ", pad))
	in.barLen = len(s)
}

func (in *ingestRun) clearBar() {
	if in.bar != nil && in.barLen > 0 {
		fmt.Fprintf(in.bar, "\r%s\r", strings.Repeat(" ", in.barLen))
		in.barLen = 0
	}
}
