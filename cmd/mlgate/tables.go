package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// tablesCommand is `mlgate tables`: the inference tables of a running
// gateway.
func tablesCommand() *cobra.Command {
	return clientGroup("tables", "List the inference tables of a running gateway, delete an entity's rows", `  mlgate tables list
  mlgate tables delete --entity user_id=u1`,
		tablesList, tablesDelete)
}

// tableFile is a file as GET /v1/tables lists it.
type tableFile struct {
	Path  string `json:"path"`
	Table string `json:"table"`
	Date  string `json:"date"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// writerStats are the inference table writer's counters.
type writerStats struct {
	Written, Spilled, Dropped, Recovered, Failed, Skipped int64
}

func tablesList(c *client) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the files of the inference tables, and the writer's counters",
		Example: "  mlgate tables list\n  mlgate tables list -o json",
		Args:    positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Dir    string      `json:"dir"`
				Files  []tableFile `json:"files"`
				Writer writerStats `json:"writer"`
			}
			return c.get(cmd, o, "/v1/tables", &out, func() error { return writeTables(out.Dir, out.Files, out.Writer) })
		},
	}
	outputFlags(cmd, &o)
	return cmd
}

// writeTables writes the files of the inference tables in dir as a table,
// then the writer's counters.
func writeTables(dir string, files []tableFile, s writerStats) error {
	fmt.Fprintf(stdout, "inference tables in %s\n\n", dir)
	if len(files) == 0 {
		fmt.Fprintln(stdout, "no complete files yet (rows reach files when the writer rolls or flushes)")
	} else {
		var rows, size int64
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TABLE\tPATH\tROWS\tBYTES")
		for _, f := range files {
			rows += f.Rows
			size += f.Bytes
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", f.Table, f.Path, f.Rows, byteSize(f.Bytes))
		}
		fmt.Fprintf(w, "total\t%s\t%d\t%s\n", plural(len(files), "file", "files"), rows, byteSize(size))
		if err := w.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nwriter: written %d, spilled %d, dropped %d, recovered %d, failed %d, skipped %d\n",
		s.Written, s.Spilled, s.Dropped, s.Recovered, s.Failed, s.Skipped)
	return nil
}

func tablesDelete(c *client) *cobra.Command {
	var entity string
	cmd := &cobra.Command{
		Use:   "delete --entity COLUMN=VALUE",
		Short: "Delete an entity's rows from the inference tables",
		Long: `Delete an entity's rows from the inference tables: the files holding them are
rewritten without them.`,
		Example: "  mlgate tables delete --entity user_id=u1",
		Args:    positional(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if entity == "" {
				return usageErrorf(cmd, "--entity COLUMN=VALUE is required, e.g. --entity user_id=u1")
			}
			column, value, ok := strings.Cut(entity, "=")
			if !ok || column == "" || value == "" {
				return usageErrorf(cmd, "--entity %q: want COLUMN=VALUE, e.g. --entity user_id=u1", entity)
			}
			var out struct {
				Removed int64 `json:"removed"`
			}
			if err := c.doJSON(http.MethodPost, "/v1/tables/delete", map[string]string{"column": column, "value": value}, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "removed %s of %s=%s\n", plural(int(out.Removed), "row", "rows"), column, value)
			return nil
		},
	}
	cmd.Flags().StringVar(&entity, "entity", "", "the entity whose rows to remove, as `COLUMN=VALUE`, e.g. user_id=u1 (required)")
	return cmd
}

// byteSize writes a size in bytes, KiB, MiB or GiB.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB"} {
		f /= unit
		if f < unit || u == "GiB" {
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + u
		}
	}
	panic("unreachable")
}
