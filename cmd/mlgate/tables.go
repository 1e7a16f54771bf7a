package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
)

// tablesCmd runs the `mlgate tables` verbs, on the inference tables of a
// running gateway.
func tablesCmd(args []string) error {
	return runVerb("tables", args,
		verb{"list", tablesList},
		verb{"delete", tablesDelete},
	)
}

// tableFile is a file as GET /v1/tables lists it.
type tableFile struct {
	Path     string `json:"path"`
	Table    string `json:"table"`
	Endpoint string `json:"endpoint"`
	Model    string `json:"model"`
	Date     string `json:"date"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
}

// writerStats are the inference table writer's counters.
type writerStats struct {
	Written, Spilled, Dropped, Recovered, Failed, Skipped int64
}

func tablesList(args []string) error {
	fs := flag.NewFlagSet("tables list", flag.ContinueOnError)
	c := clientFlags(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if rest, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("tables list: unexpected argument %q", rest[0])
	}
	var raw json.RawMessage
	if err := c.do(http.MethodGet, "/v1/tables", "", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(raw)
	}
	var out struct {
		Dir    string      `json:"dir"`
		Files  []tableFile `json:"files"`
		Writer writerStats `json:"writer"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("tables list: cannot read the gateway's answer: %w", err)
	}
	fmt.Fprintf(stdout, "inference tables in %s\n\n", out.Dir)
	if len(out.Files) == 0 {
		fmt.Fprintln(stdout, "no complete files yet (rows reach files when the writer rolls or flushes)")
	} else {
		var rows, size int64
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TABLE\tPATH\tROWS\tBYTES")
		for _, f := range out.Files {
			rows += f.Rows
			size += f.Bytes
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", f.Table, f.Path, f.Rows, byteSize(f.Bytes))
		}
		fmt.Fprintf(w, "total\t%s\t%d\t%s\n", plural(len(out.Files), "file", "files"), rows, byteSize(size))
		if err := w.Flush(); err != nil {
			return err
		}
	}
	s := out.Writer
	fmt.Fprintf(stdout, "\nwriter: written %d, spilled %d, dropped %d, recovered %d, failed %d, skipped %d\n",
		s.Written, s.Spilled, s.Dropped, s.Recovered, s.Failed, s.Skipped)
	return nil
}

func tablesDelete(args []string) error {
	fs := flag.NewFlagSet("tables delete", flag.ContinueOnError)
	c := clientFlags(fs)
	entity := fs.String("entity", "", "the entity whose rows to remove, as `COLUMN=VALUE`, e.g. user_id=u1 (required)")
	if rest, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("tables delete: unexpected argument %q", rest[0])
	}
	if *entity == "" {
		return errors.New("tables delete: --entity COLUMN=VALUE is required, e.g. --entity user_id=u1")
	}
	column, value, ok := strings.Cut(*entity, "=")
	if !ok || column == "" || value == "" {
		return fmt.Errorf("tables delete: --entity %q: want COLUMN=VALUE, e.g. --entity user_id=u1", *entity)
	}
	var out struct {
		Removed int64 `json:"removed"`
	}
	if err := c.doJSON(http.MethodPost, "/v1/tables/delete", map[string]string{"column": column, "value": value}, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %s of %s=%s\n", plural(int(out.Removed), "row", "rows"), column, value)
	return nil
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
