// Command mlgate is the mlgate gateway and its command-line client.
//
//	mlgate serve [--config FILE] [--demo]    run the gateway
//	mlgate models register|list|show|alias   manage the registry of a running gateway
//	mlgate features apply|ingest|import-feast  define feature views and load rows into them
//	mlgate traffic show|set|canary|history   split, canary and inspect an endpoint's traffic
//	mlgate tables list|delete                list the inference tables, delete an entity's rows
//	mlgate drift report|run|put|list|delete  watch inputs and predictions for drift
//	mlgate version                           print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Where the client verbs write; tests replace them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

const usage = `mlgate: a model-serving and feature-store gateway

Usage:
  mlgate serve [--config FILE] [--demo]
  mlgate models register --name NAME --file MODEL.onnx [--metadata META.json] [--alias ALIAS]
        [--baseline TRAIN.csv|TRAIN.parquet]
  mlgate models list
  mlgate models show NAME
  mlgate models alias NAME ALIAS VERSION
  mlgate features apply -f VIEWS.yaml
  mlgate features ingest --view VIEW --file ROWS.csv|ROWS.parquet [--format csv|parquet] [--batch 1000]
  mlgate features import-feast --registry registry.db --project P [--cache-ttl 1m]
  mlgate traffic show [ENDPOINT] [--json]
  mlgate traffic set ENDPOINT VARIANT=WEIGHT...
  mlgate traffic canary ENDPOINT --model REF --steps 5,25,50,100 --interval 30s
        [--max-error-rate 0.01] [--max-p99-ms 50] [--min-requests 200]
        [--max-prediction-shift 0.2] [--promote-alias champion]
  mlgate traffic canary ENDPOINT pause|resume|promote|abort
  mlgate traffic history ENDPOINT [--json]
  mlgate tables list [--json]
  mlgate tables delete --entity COLUMN=VALUE
  mlgate drift put MONITOR -f MONITOR.json
  mlgate drift list [--json]
  mlgate drift report MONITOR [--json] [--windows 12]
  mlgate drift run --monitor MONITOR --from TIME [--to TIME] [--json]
        (TIME: RFC 3339, now, or a time ago such as -1h)
  mlgate drift delete MONITOR
  mlgate version

Client commands talk to a running gateway: --server URL (default
http://127.0.0.1:8080, or $MLGATE_SERVER) and --api-key KEY (or $MLGATE_API_KEY).
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mlgate:", err)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "models":
		return models(args[1:])
	case "features":
		return features(args[1:])
	case "traffic":
		return traffic(args[1:])
	case "tables":
		return tablesCmd(args[1:])
	case "drift":
		return driftCmd(args[1:])
	case "version":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
