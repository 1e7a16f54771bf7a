// Package mlflow reads an MLflow Model Registry through the tracking
// server's REST API (/api/2.0/mlflow): the registered models, their
// versions with source, run id, tags and description, their aliases, and
// each version's ONNX model file.
//
// A version's files are fetched through the server's artifact proxy
// (mlflow-artifacts:/ URIs, which `mlflow server` serves by default) or
// from an http(s) URI the server gives; the ONNX file is the one the
// MLmodel file's onnx flavor names, or else the only .onnx file of the
// version's artifacts, or the artifact itself when the version's source is
// a .onnx file. A version without one is reported with the reason
// (ErrNoONNX), for the mirror to list and skip.
package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mlgate/mlgate/internal/errkind"
)

// ErrNoONNX: a model version whose artifacts hold no ONNX model mlgate
// can serve. The error's message says why.
var ErrNoONNX = errkind.New(errkind.Invalid, "no ONNX model")

// Client calls one MLflow tracking server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the tracking server at trackingURI
// (http://host:port, with a path prefix if the server has one), sending
// token, when not empty, as a bearer token.
func New(trackingURI, token string) (*Client, error) {
	u, err := url.Parse(trackingURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracking_uri %q: want http(s)://host:port of an MLflow tracking server", trackingURI)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token, http: &http.Client{Timeout: time.Minute}}, nil
}

// Model is a registered model.
type Model struct {
	Name        string
	Description string
	// Aliases map each alias to its version number.
	Aliases map[string]int
}

// Version is a model version.
type Version struct {
	Model       string
	Number      int
	Source      string // where MLflow says its files are: models:/..., runs:/..., mlflow-artifacts:/...
	RunID       string
	Status      string // READY once its files are in place
	Description string
	Tags        map[string]string
}

// Models lists the names of the registered models.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	var names []string
	token := ""
	for {
		var page struct {
			RegisteredModels []struct {
				Name string `json:"name"`
			} `json:"registered_models"`
			NextPageToken string `json:"next_page_token"`
		}
		q := url.Values{"max_results": {"1000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		if err := c.get(ctx, "/api/2.0/mlflow/registered-models/search", q, &page); err != nil {
			return nil, err
		}
		for _, m := range page.RegisteredModels {
			names = append(names, m.Name)
		}
		if token = page.NextPageToken; token == "" {
			return names, nil
		}
	}
}

// Model returns the registered model name with its aliases.
func (c *Client) Model(ctx context.Context, name string) (Model, error) {
	var resp struct {
		RegisteredModel struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Aliases     []struct {
				Alias   string `json:"alias"`
				Version string `json:"version"`
			} `json:"aliases"`
		} `json:"registered_model"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow/registered-models/get", url.Values{"name": {name}}, &resp); err != nil {
		return Model{}, err
	}
	m := Model{Name: resp.RegisteredModel.Name, Description: resp.RegisteredModel.Description, Aliases: map[string]int{}}
	for _, a := range resp.RegisteredModel.Aliases {
		n, err := strconv.Atoi(a.Version)
		if err != nil {
			return Model{}, fmt.Errorf("model %s: alias %s names version %q, not a number", name, a.Alias, a.Version)
		}
		m.Aliases[a.Alias] = n
	}
	return m, nil
}

// Versions lists the versions of the registered model name, oldest first.
func (c *Client) Versions(ctx context.Context, name string) ([]Version, error) {
	var out []Version
	token := ""
	for {
		var page struct {
			ModelVersions []struct {
				Name        string `json:"name"`
				Version     string `json:"version"`
				Source      string `json:"source"`
				RunID       string `json:"run_id"`
				Status      string `json:"status"`
				Description string `json:"description"`
				Tags        []struct {
					Key   string `json:"key"`
					Value string `json:"value"`
				} `json:"tags"`
			} `json:"model_versions"`
			NextPageToken string `json:"next_page_token"`
		}
		q := url.Values{"filter": {"name='" + strings.ReplaceAll(name, "'", `\'`) + "'"}, "max_results": {"1000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		if err := c.get(ctx, "/api/2.0/mlflow/model-versions/search", q, &page); err != nil {
			return nil, err
		}
		for _, v := range page.ModelVersions {
			if v.Name != name {
				continue // the filter matched more (it should not)
			}
			n, err := strconv.Atoi(v.Version)
			if err != nil {
				return nil, fmt.Errorf("model %s: version %q is not a number", name, v.Version)
			}
			tags := make(map[string]string, len(v.Tags))
			for _, t := range v.Tags {
				tags[t.Key] = t.Value
			}
			out = append(out, Version{Model: name, Number: n, Source: v.Source, RunID: v.RunID, Status: v.Status, Description: v.Description, Tags: tags})
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	slices.SortFunc(out, func(a, b Version) int { return a.Number - b.Number })
	return out, nil
}

// MetadataFile is the artifact, beside a version's model file, that may
// hold what mlgate keeps beside it: a JSON object with the registration
// metadata's feature_spec and baseline.
const MetadataFile = "mlgate.json"

// Fetched is what FetchONNX found of a version.
type Fetched struct {
	// From is the artifact the model file came from.
	From string
	// Metadata is the version's MetadataFile, nil when it has none.
	Metadata []byte
}

// FetchONNX writes the ONNX model file of version v of model name to w, at
// most limit bytes of it, and returns where it came from and the version's
// MetadataFile. A version with no ONNX model returns an error matching
// ErrNoONNX that says why.
func (c *Client) FetchONNX(ctx context.Context, name string, v int, w io.Writer, limit int64) (Fetched, error) {
	var resp struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	q := url.Values{"name": {name}, "version": {strconv.Itoa(v)}}
	if err := c.get(ctx, "/api/2.0/mlflow/model-versions/get-download-uri", q, &resp); err != nil {
		return Fetched{}, err
	}
	root, err := c.artifactRoot(resp.ArtifactURI)
	if err != nil {
		return Fetched{}, err
	}
	file, files, err := c.onnxFile(ctx, root)
	if err != nil {
		return Fetched{}, err
	}
	out := Fetched{From: file.display}
	if slices.Contains(files, MetadataFile) {
		var md bytes.Buffer
		if err := c.download(ctx, root.child(MetadataFile), &md, 16<<20); err != nil {
			return Fetched{}, err
		}
		out.Metadata = md.Bytes()
	}
	return out, c.download(ctx, file, w, limit)
}

// artifact is a file or directory of a version's artifacts: its URL, and
// how errors name it.
type artifact struct {
	url     *url.URL
	display string
	proxied bool // behind the artifact proxy, which can list directories
}

// artifactRoot resolves the artifact URI MLflow gives for a version.
func (c *Client) artifactRoot(uri string) (artifact, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return artifact{}, fmt.Errorf("%w: artifact URI %q does not parse", ErrNoONNX, uri)
	}
	switch u.Scheme {
	case "mlflow-artifacts":
		p := strings.TrimPrefix(u.Path, "/")
		proxy := *c.base
		proxy.Path += "/api/2.0/mlflow-artifacts/artifacts/" + p
		return artifact{url: &proxy, display: uri, proxied: true}, nil
	case "http", "https":
		return artifact{url: u, display: uri}, nil
	}
	return artifact{}, errkind.New(ErrNoONNX, "%s: the artifacts are at %q, which mlgate cannot read; run the tracking server so that it serves artifacts (mlflow server's --serve-artifacts, its default)", ErrNoONNX, uri)
}

// onnxFile finds the ONNX model file among the artifacts at root: the
// onnx flavor's file of an MLmodel, else the only .onnx file, else root
// itself when it is a .onnx file. It returns the names of the files
// beside it too.
func (c *Client) onnxFile(ctx context.Context, root artifact) (artifact, []string, error) {
	if strings.HasSuffix(root.url.Path, ".onnx") {
		return root, nil, nil
	}
	if !root.proxied {
		return artifact{}, nil, errkind.New(ErrNoONNX, "%s: %s is not a .onnx file, and mlgate can list artifacts only through the tracking server's artifact proxy", ErrNoONNX, root.display)
	}
	files, err := c.list(ctx, root)
	if err != nil {
		return artifact{}, nil, err
	}
	file, err := c.pickONNX(ctx, root, files)
	return file, files, err
}

// pickONNX is onnxFile's choice among the files of the directory root.
func (c *Client) pickONNX(ctx context.Context, root artifact, files []string) (artifact, error) {
	if slices.Contains(files, "MLmodel") {
		var mlmodel bytes.Buffer
		if err := c.download(ctx, root.child("MLmodel"), &mlmodel, 1<<20); err != nil {
			return artifact{}, err
		}
		var spec struct {
			Flavors map[string]struct {
				Data string `yaml:"data"`
			} `yaml:"flavors"`
		}
		if err := yaml.Unmarshal(mlmodel.Bytes(), &spec); err != nil {
			return artifact{}, errkind.New(ErrNoONNX, "%s: %s/MLmodel is not valid YAML: %v", ErrNoONNX, root.display, err)
		}
		onnxFlavor, ok := spec.Flavors["onnx"]
		if !ok || onnxFlavor.Data == "" {
			return artifact{}, errkind.New(ErrNoONNX, "%s: its MLmodel has the flavors %s, not onnx", ErrNoONNX, flavorNames(spec.Flavors))
		}
		return root.child(onnxFlavor.Data), nil
	}
	var onnxFiles []string
	for _, f := range files {
		if strings.HasSuffix(f, ".onnx") {
			onnxFiles = append(onnxFiles, f)
		}
	}
	switch len(onnxFiles) {
	case 1:
		return root.child(onnxFiles[0]), nil
	case 0:
		return artifact{}, errkind.New(ErrNoONNX, "%s: %s holds neither an MLmodel nor a .onnx file", ErrNoONNX, root.display)
	}
	return artifact{}, errkind.New(ErrNoONNX, "%s: %s holds %d .onnx files and no MLmodel to say which is the model", ErrNoONNX, root.display, len(onnxFiles))
}

func flavorNames[T any](m map[string]T) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// child is the artifact at rel under a.
func (a artifact) child(rel string) artifact {
	u := *a.url
	u.Path = path.Join(u.Path, rel)
	return artifact{url: &u, display: a.display + "/" + rel, proxied: a.proxied}
}

// list returns the names of the files directly under a directory of the
// artifact proxy; none when a is a file.
func (c *Client) list(ctx context.Context, a artifact) ([]string, error) {
	rel := strings.TrimPrefix(a.url.Path, c.base.Path+"/api/2.0/mlflow-artifacts/artifacts/")
	var resp struct {
		Files []struct {
			Path  string `json:"path"`
			IsDir bool   `json:"is_dir"`
		} `json:"files"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow-artifacts/artifacts", url.Values{"path": {rel}}, &resp); err != nil {
		return nil, err
	}
	var names []string
	for _, f := range resp.Files {
		if !f.IsDir {
			names = append(names, path.Base(f.Path))
		}
	}
	return names, nil
}

// download copies the file a to w, failing beyond limit bytes.
func (c *Client) download(ctx context.Context, a artifact, w io.Writer, limit int64) error {
	resp, err := c.open(ctx, a.url.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return errkind.New(errkind.Unavailable, "download %s: %v", a.display, err)
	}
	if n > limit {
		return errkind.New(errkind.TooLarge, "%s is larger than %d bytes (registry.max_model_bytes)", a.display, limit)
	}
	return nil
}

// get calls the REST API at p with query q and decodes the JSON answer
// into out.
func (c *Client) get(ctx context.Context, p string, q url.Values, out any) error {
	u := *c.base
	u.Path += p
	u.RawQuery = q.Encode()
	resp, err := c.open(ctx, u.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return errkind.New(errkind.Unavailable, "MLflow %s: the answer is not the JSON expected: %v", p, err)
	}
	return nil
}

// open GETs u with the token; a failed answer is an error of its kind:
// 404 (RESOURCE_DOES_NOT_EXIST) is NotFound, 401/403 Forbidden, the rest
// Unavailable, each with MLflow's message.
func (c *Client) open(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, errkind.New(errkind.Unavailable, "MLflow at %s: %v", c.base.Host, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
	}
	kind := errkind.Unavailable
	switch {
	case resp.StatusCode == http.StatusNotFound || e.ErrorCode == "RESOURCE_DOES_NOT_EXIST":
		kind = errkind.NotFound
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		kind = errkind.Forbidden
	}
	return nil, errkind.New(kind, "MLflow %s: %d %s", req.URL.Path, resp.StatusCode, e.Message)
}
