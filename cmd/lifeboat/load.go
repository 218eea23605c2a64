package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/load"
)

// errFailedRequests is the exit-1 error of a load run that had failures;
// the report is already printed.
var errFailedRequests = errors.New("requests failed")

// loadFlags are `lifeboat load`'s settings besides load.Config's.
type loadFlags struct {
	csv, output string
}

// newLoadCmd is `lifeboat load`: the open-loop load generator that
// measures failed requests, the client-visible stall and latency. It
// exits 0 with no failed requests, 1 with some, 2 on bad flags.
func newLoadCmd() *cobra.Command {
	cfg := load.DefaultConfig()
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load --target URL [--rate R] [--duration D]",
		Short: "Send HTTP requests at a constant rate; report failures, the stall and latency",
		Long: "Send --rate requests per second to --target for --duration, open-loop: request i\n" +
			"leaves at start + i/rate however slow the earlier ones are, so a stalled server\n" +
			"shows as latency and a stall rather than as fewer requests. Then report:\n\n" +
			"  sent          every request the schedule issued\n" +
			"  ok            2xx responses\n" +
			"  backpressure  503 responses, with and without Retry-After\n" +
			"  failed        anything else: other statuses, transport errors, timeouts, and\n" +
			"                requests not sent because --max-inflight were already out\n" +
			"  latency       p50, p99, p99.9 and max of the ok requests\n" +
			"  stall         the longest time without an ok response completing, and when\n\n" +
			"Exit status 0 when no request failed, 1 when some did, 2 on bad flags. Ctrl-C\n" +
			"stops early and still reports. --csv writes one row per request.",
		Example: "  lifeboat load --target http://127.0.0.1:8080/ --rate 500 --duration 30s\n" +
			"  lifeboat load --target https://app.internal/healthz --rate 100 --duration 1m -o json --csv run.csv",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runLoad(cmd, cfg, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Target, "target", "", "URL to send requests to (http:// or https://)")
	fl.Float64Var(&cfg.Rate, "rate", cfg.Rate, "requests per second")
	fl.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to send")
	fl.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per-request limit, send to end of body; also how long requests in flight get after the end")
	fl.StringVar(&cfg.Method, "method", cfg.Method, "HTTP method (requests carry no body)")
	fl.IntVar(&cfg.MaxInflight, "max-inflight", cfg.MaxInflight, "most requests in flight; a request due beyond it fails as 'client overloaded'")
	fl.BoolVar(&cfg.H2C, "h2c", false, "speak HTTP/2 without TLS to an http:// target (default HTTP/1.1 keep-alive; https uses HTTP/2 when offered)")
	fl.StringVar(&f.csv, "csv", "", "write one row per request to FILE: start_unix_ns,latency_ns,status,error")
	fl.StringVarP(&f.output, "output", "o", "text", "text|json")
	return cmd
}

// runLoad checks every flag and the CSV file before sending anything,
// runs, prints the report and then writes the CSV.
func runLoad(cmd *cobra.Command, cfg load.Config, f loadFlags) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("%w: -o %q: want text or json", errUsage, f.output)
	}
	if err := cfg.Validate(); err != nil {
		var ce *load.ConfigError
		if errors.As(err, &ce) {
			return fmt.Errorf("%w: --%v", errUsage, ce)
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var csvFile *os.File
	if f.csv != "" {
		var err error
		if csvFile, err = os.Create(f.csv); err != nil {
			return fmt.Errorf("%w: --csv: %v", errUsage, err)
		}
		defer csvFile.Close()
	}
	res, err := load.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if err := printLoad(cmd.OutOrStdout(), res, f.output); err != nil {
		return err
	}
	if csvFile != nil {
		if err := res.WriteCSV(csvFile); err != nil {
			return fmt.Errorf("writing %s: %w", f.csv, err)
		}
		if err := csvFile.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", f.csv, err)
		}
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d of %d %w", res.Failed, res.Sent, errFailedRequests)
	}
	return nil
}

func printLoad(w io.Writer, res *load.Result, output string) error {
	if output == "json" {
		return printJSON(w, res)
	}
	return res.WriteText(w)
}
