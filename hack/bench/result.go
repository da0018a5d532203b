package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
)

type result struct {
	Mode                string          `json:"mode"`
	Store               string          `json:"store"`
	Requests            int             `json:"requests"`
	Destinations        int             `json:"destinations"`
	Workers             int             `json:"routerWorkers"`
	Clients             int             `json:"clients"`
	RouterGOMEMLIMIT    string          `json:"routerGOMEMLIMIT,omitempty"`
	ReferenceRate       float64         `json:"referenceRatePerSecond"`
	ElapsedSeconds      float64         `json:"elapsedSeconds"`
	Rate                float64         `json:"writtenPerSecond"`
	FractionOfReference float64         `json:"fractionOfReference"`
	P50                 float64         `json:"p50Ms"`
	P90                 float64         `json:"p90Ms"`
	P99                 float64         `json:"p99Ms"`
	Max                 float64         `json:"maxMs"`
	Commits             int             `json:"commits"`
	ObjectWrites        int             `json:"objectWrites,omitempty"`
	PushRetries         float64         `json:"pushRetries"`
	RouterPeakRSSMiB    float64         `json:"routerPeakRSSMiB"`
	RouterCPUSeconds    float64         `json:"routerCPUSeconds"`
	RouterHeapInuseMiB  float64         `json:"routerHeapInuseMiB"`
	RepoSizeKiB         int64           `json:"repoSizeKiB"`
	RepoFiles           int             `json:"repoFiles"`
	Restart             *restartResult  `json:"restart,omitempty"`
	Feedback            *feedbackResult `json:"feedback,omitempty"`
	CPUs                int             `json:"cpus"`

	// APIPerRequest is the API server's requests by "VERB resource" during
	// the run, per request created, from every client (the bench's own
	// create and watch included).
	APIPerRequest map[string]float64 `json:"apiRequestsPerRequest"`
	// APIAnswerTimes is the API server's mean time to answer each kind of
	// call during the run, and how long requests queued per priority level.
	APIAnswerTimes string `json:"apiAnswerTimes"`
}

type restartResult struct {
	ConvergeSeconds float64 `json:"convergeSeconds"`
	// FirstReconcileSeconds is when the first request's reconcile was
	// counted (the bench polls every 200 ms): the start before any work.
	FirstReconcileSeconds float64 `json:"firstReconcileSeconds"`
	NewCommits            int     `json:"newCommits"`
	PeakRSSMiB            float64 `json:"peakRSSMiB"`
}

func (r *result) print(out io.Writer) {
	r.CPUs = runtime.NumCPU()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("mode", "%s on a %s store (%d requests, %d destinations, %d router workers, %d clients, %d CPUs)", r.Mode, r.Store, r.Requests, r.Destinations, r.Workers, r.Clients, r.CPUs)
	row("API server reference", "%.0f creates+status patches/s", r.ReferenceRate)
	row("create to Written", "%.0f requests/s over %.1fs (%.0f%% of reference)", r.Rate, r.ElapsedSeconds, 100*r.FractionOfReference)
	row("latency p50/p90/p99/max", "%.0f / %.0f / %.0f / %.0f ms", r.P50, r.P90, r.P99, r.Max)
	if r.Store == "bucket" {
		row("revisions (batches), retries", "%d, %.0f", r.Commits, r.PushRetries)
		row("objects written", "%d (%.2f per request, version markers included)", r.ObjectWrites, float64(r.ObjectWrites)/float64(r.Requests))
	} else {
		row("commits, push retries", "%d, %.0f", r.Commits, r.PushRetries)
	}
	row("router peak RSS, CPU", "%.0f MiB, %.1f s (heap in use at the end %.0f MiB; GOMEMLIMIT %q)", r.RouterPeakRSSMiB, r.RouterCPUSeconds, r.RouterHeapInuseMiB, r.RouterGOMEMLIMIT)
	row("API requests per request", "%s", formatPerRequest(r.APIPerRequest))
	row("API server answer times", "%s", r.APIAnswerTimes)
	row("state store", "%d files, %d KiB", r.RepoFiles, r.RepoSizeKiB)
	if r.Restart != nil {
		row("restart", "converged in %.1fs (first request reconciled at %.1fs), %d new commits or object writes, peak RSS %.0f MiB", r.Restart.ConvergeSeconds, r.Restart.FirstReconcileSeconds, r.Restart.NewCommits, r.Restart.PeakRSSMiB)
	}
	if f := r.Feedback; f != nil {
		row("all destinations watched", "%.1fs after their kubeConfigSecretRefs were set", f.WatchSeconds)
		row("router, no destination watched", "%s", f.Before)
		row(fmt.Sprintf("router, %d destinations watched", r.Destinations), "%s", f.Watched)
		row(fmt.Sprintf("router, %d requests applied", r.Requests), "%s (their rendered kinds watched too)", f.AfterRequests)
		row("per watched destination", "%s (watched minus none, / %d)", f.PerDestination.perDestination(), r.Destinations)
		row("per destination, requests applied", "%s", f.PerDestinationAfterRequests.perDestination())
	}
	w.Flush()
	r.printTargets(out)
}

// printTargets prints issue 16's rows this mode measures, against their
// targets.
func (r *result) printTargets(out io.Writer) {
	if r.Mode != "burst" && r.Mode != "steady" {
		return // no targets
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nfigure\tmeasured\ttarget\tmet")
	row := func(k, measured, target string, met bool) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k, measured, target, map[bool]string{true: "yes", false: "no"}[met])
	}
	switch r.Mode {
	case "burst":
		row("create to Written, share of the reference rate", fmt.Sprintf("%.0f/s against %.0f/s: %.0f%%", r.Rate, r.ReferenceRate, 100*r.FractionOfReference), ">= 60%", r.FractionOfReference >= 0.6)
		row(fmt.Sprintf("router peak RSS at %d requests", r.Requests), fmt.Sprintf("%.0f MiB", r.RouterPeakRSSMiB), "< 200 MiB", r.RouterPeakRSSMiB < 200)
		if r.Restart != nil {
			row("restart, converged / commits", fmt.Sprintf("%.1f s / %d", r.Restart.ConvergeSeconds, r.Restart.NewCommits), "< 5 s / 0", r.Restart.ConvergeSeconds < 5 && r.Restart.NewCommits == 0)
		}
	case "steady":
		row("steady create to Written p50 / p99", fmt.Sprintf("%.0f / %.0f ms", r.P50, r.P99), "< 250 / < 1,000 ms", r.P50 < 250 && r.P99 < 1000)
	}
	w.Flush()
}

func (s routerSample) String() string {
	return fmt.Sprintf("RSS %.0f MiB, heap in use %.1f MiB, %.0f goroutines", s.RSSMiB, s.HeapInuseMiB, s.Goroutines)
}

func (s routerSample) perDestination() string {
	return fmt.Sprintf("RSS %.0f KiB, heap in use %.0f KiB, %.1f goroutines", s.RSSMiB*1024, s.HeapInuseMiB*1024, s.Goroutines)
}

func (r *result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
