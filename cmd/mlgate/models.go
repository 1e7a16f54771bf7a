package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mlgate/mlgate/registry"
)

// client calls a running gateway's API.
type client struct {
	server string
	apiKey string
	http   *http.Client
}

// clientFlags adds --server and --api-key to fs.
func clientFlags(fs *pflag.FlagSet) *client {
	c := &client{http: &http.Client{Timeout: 10 * time.Minute}}
	server := os.Getenv("MLGATE_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.server, "server", server, "gateway `URL` ($MLGATE_SERVER)")
	fs.StringVar(&c.apiKey, "api-key", os.Getenv("MLGATE_API_KEY"), "API `key` sent as a bearer token ($MLGATE_API_KEY)")
	return c
}

// do sends a request and decodes a JSON answer into out (when not nil). An
// error answer becomes an error carrying the server's message.
func (c *client) do(method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, strings.TrimRight(c.server, "/")+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the gateway at %s (is `mlgate serve` running? set --server): %w", c.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func (c *client) doJSON(method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(method, path, "application/json", bytes.NewReader(body), out)
}

// clientGroup returns a group of commands that call a running gateway,
// with the persistent flags --server and --api-key; each of subs makes a
// command that calls it with the client those flags set.
func clientGroup(use, short, example string, subs ...func(*client) *cobra.Command) *cobra.Command {
	g := group(use, short, example)
	c := clientFlags(g.PersistentFlags())
	for _, sub := range subs {
		g.AddCommand(sub(c))
	}
	return g
}

// modelsCommand is `mlgate models`: the model registry of a running gateway.
func modelsCommand() *cobra.Command {
	return clientGroup("models", "Manage the model registry of a running gateway", `  mlgate models register --name churn --file churn.onnx --alias challenger
  mlgate models list
  mlgate models alias churn champion 2`,
		modelsRegister, modelsList, modelsShow, modelsAlias)
}

// specString writes a tensor as name DATATYPE[d0,d1].
func specString(t registry.TensorSpec) string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.FormatInt(d, 10)
	}
	return fmt.Sprintf("%s %s[%s]", t.Name, t.Datatype, strings.Join(dims, ","))
}

func modelsRegister(c *client) *cobra.Command {
	var name, file, metadata, alias, baseline string
	cmd := &cobra.Command{
		Use:   "register --name NAME --file MODEL.onnx",
		Short: "Upload an ONNX model as a new version of a model",
		Example: `  mlgate models register --name churn --file churn.onnx
  mlgate models register --name churn --file churn.onnx --metadata meta.json --alias challenger --baseline train.parquet`,
		Args: positional(0, 0),
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "model `name` (required)")
	f.StringVar(&file, "file", "", "ONNX model `file` (required)")
	f.StringVar(&metadata, "metadata", "", "JSON metadata `file`: description, tags, lineage")
	f.StringVar(&alias, "alias", "", "point this `alias` at the new version")
	f.StringVar(&baseline, "baseline", "", "training data `file` (.csv or .parquet) to compute the drift baseline from: a column per feature, \"prediction:NAME\" for an output")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if name == "" || file == "" {
			return usageErrorf(cmd, "--name and --file are required")
		}
		return registerModel(c, name, file, metadata, alias, baseline)
	}
	return cmd
}

// registerModel uploads the model file as a new version of model name,
// with its metadata and the drift baseline of the training data at
// baseline when given, and points alias at it when not "".
func registerModel(c *client, name, file, metadata, alias, baseline string) error {
	var meta []byte
	if baseline != "" {
		var err error
		if meta, err = metadataWithBaseline(metadata, baseline); err != nil {
			return err
		}
	}
	body, contentType, err := registrationBody(file, metadata, meta)
	if err != nil {
		return err
	}
	var v registry.Version
	if err := c.do(http.MethodPost, "/v1/models/"+name+"/versions", contentType, body, &v); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registered %s version %d (sha256 %s, %d bytes)\n", v.Name, v.Version, v.SHA256, v.Size)
	if alias != "" {
		if err := c.doJSON(http.MethodPut, "/v1/models/"+name+"/aliases/"+alias, map[string]int{"version": v.Version}, nil); err != nil {
			return fmt.Errorf("set alias %s: %w", alias, err)
		}
		fmt.Fprintf(stdout, "alias %s -> version %d\n", alias, v.Version)
	}
	return nil
}

// registrationBody streams a multipart body with the model file and, when
// given, the metadata: metadata, else the metadata file.
func registrationBody(modelPath, metadataPath string, metadata []byte) (io.Reader, string, error) {
	model, err := os.Open(modelPath)
	if err != nil {
		return nil, "", err
	}
	if metadata == nil && metadataPath != "" {
		if metadata, err = os.ReadFile(metadataPath); err != nil {
			model.Close()
			return nil, "", err
		}
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		defer model.Close()
		err := func() error {
			if metadata != nil {
				if err := mw.WriteField("metadata", string(metadata)); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("model", filepath.Base(modelPath))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, model); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType(), nil
}

type modelSummary struct {
	Name          string         `json:"name"`
	UpdatedAt     time.Time      `json:"updated_at"`
	LatestVersion int            `json:"latest_version"`
	Versions      int            `json:"versions"`
	Aliases       map[string]int `json:"aliases"`
}

func modelsList(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the models with their latest version and aliases",
		Example: "  mlgate models list\n  mlgate models list -o json",
		Args:    positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Models []modelSummary `json:"models"`
			}
			return c.get(cmd, o, "/v1/models", &out, func() error {
				w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tLATEST\tVERSIONS\tALIASES\tUPDATED")
				for _, m := range out.Models {
					fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\n", m.Name, m.LatestVersion, m.Versions, aliasList(m.Aliases), m.UpdatedAt.Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
	outputFlags(cmd, &o)
	return cmd
}

func aliasList(aliases map[string]int) string {
	if len(aliases) == 0 {
		return "-"
	}
	names := make([]string, 0, len(aliases))
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	for i, a := range names {
		names[i] = fmt.Sprintf("%s=%d", a, aliases[a])
	}
	return strings.Join(names, ",")
}

func modelsShow(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:               "show NAME",
		Short:             "Show a model's versions, their status, aliases and signatures",
		Example:           "  mlgate models show churn\n  mlgate models show churn -o json",
		Args:              positional(1, 1),
		ValidArgsFunction: c.completeNames("/v1/models", "models"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m struct {
				Name     string              `json:"name"`
				Aliases  map[string]int      `json:"aliases"`
				Versions []*registry.Version `json:"versions"`
			}
			return c.get(cmd, o, "/v1/models/"+args[0], &m, func() error {
				fmt.Fprintf(stdout, "model %s   aliases: %s\n\n", m.Name, aliasList(m.Aliases))
				w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "VERSION\tSTATUS\tALIASES\tCREATED\tBY\tINPUTS\tOUTPUTS")
				for _, v := range m.Versions {
					aliases := strings.Join(v.Aliases, ",")
					if aliases == "" {
						aliases = "-"
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Status, aliases, v.CreatedAt.Format(time.RFC3339), v.CreatedBy,
						specList(v.Signature.Inputs), specList(v.Signature.Outputs))
				}
				return w.Flush()
			})
		},
	}
	outputFlags(cmd, &o)
	return cmd
}

func specList(specs []registry.TensorSpec) string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = specString(s)
	}
	return strings.Join(out, "; ")
}

func modelsAlias(c *client) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "alias NAME ALIAS VERSION",
		Short: "Point an alias of a model at one of its versions",
		Example: `  mlgate models alias churn champion 2
  mlgate models alias churn champion 3 --force   # past the alias's protection (admin)`,
		Args:              positional(3, 3),
		ValidArgsFunction: c.completeNames("/v1/models", "models"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, alias := args[0], args[1]
			n, err := strconv.Atoi(args[2])
			if err != nil {
				return usageErrorf(cmd, "version %q is not a number", args[2])
			}
			body := map[string]any{"version": n}
			if force {
				body["force"] = true
			}
			if err := c.doJSON(http.MethodPut, "/v1/models/"+name+"/aliases/"+alias, body, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: alias %s -> version %d\n", name, alias, n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "move a protected alias to a version without the validation status it requires (admin only; audited as forced)")
	return cmd
}
