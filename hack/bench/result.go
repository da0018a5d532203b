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
	Mode                string         `json:"mode"`
	Store               string         `json:"store"`
	Requests            int            `json:"requests"`
	Destinations        int            `json:"destinations"`
	Workers             int            `json:"routerWorkers"`
	Clients             int            `json:"clients"`
	ReferenceRate       float64        `json:"referenceRatePerSecond"`
	ElapsedSeconds      float64        `json:"elapsedSeconds"`
	Rate                float64        `json:"writtenPerSecond"`
	FractionOfReference float64        `json:"fractionOfReference"`
	P50                 float64        `json:"p50Ms"`
	P90                 float64        `json:"p90Ms"`
	P99                 float64        `json:"p99Ms"`
	Max                 float64        `json:"maxMs"`
	Commits             int            `json:"commits"`
	ObjectWrites        int            `json:"objectWrites,omitempty"`
	PushRetries         float64        `json:"pushRetries"`
	RouterPeakRSSMiB    float64        `json:"routerPeakRSSMiB"`
	RouterCPUSeconds    float64        `json:"routerCPUSeconds"`
	RepoSizeKiB         int64          `json:"repoSizeKiB"`
	RepoFiles           int            `json:"repoFiles"`
	Restart             *restartResult `json:"restart,omitempty"`
	CPUs                int            `json:"cpus"`
}

type restartResult struct {
	ConvergeSeconds float64 `json:"convergeSeconds"`
	NewCommits      int     `json:"newCommits"`
	PeakRSSMiB      float64 `json:"peakRSSMiB"`
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
	row("router peak RSS, CPU", "%.0f MiB, %.1f s", r.RouterPeakRSSMiB, r.RouterCPUSeconds)
	row("state store", "%d files, %d KiB", r.RepoFiles, r.RepoSizeKiB)
	if r.Restart != nil {
		row("restart", "converged in %.1fs, %d new commits or object writes, peak RSS %.0f MiB", r.Restart.ConvergeSeconds, r.Restart.NewCommits, r.Restart.PeakRSSMiB)
	}
	w.Flush()
}

func (r *result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
