package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// apiRequests reads the API server's apiserver_request_total, summed by
// verb and resource (with its subresource): what every client asked of it
// so far. Keys ending in " seconds" hold the matching
// apiserver_request_duration_seconds sums (time spent answering), and
// "wait <priority level>" the time requests queued in API Priority and
// Fairness, with "waited <priority level>" their count.
func apiRequests(ctx context.Context, cfg *rest.Config) (map[string]float64, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's /metrics: %w", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var key string
		switch {
		case strings.HasPrefix(line, "apiserver_request_total{"):
			key = verbResource(line)
		case strings.HasPrefix(line, "apiserver_request_duration_seconds_sum{"):
			key = verbResource(line) + " seconds"
		case strings.HasPrefix(line, "apiserver_request_duration_seconds_bucket{") && label(line, "le") == "1":
			key = verbResource(line) + " within 1s"
		case strings.HasPrefix(line, "apiserver_flowcontrol_request_wait_duration_seconds_sum{"):
			key = "wait " + label(line, "priority_level")
		case strings.HasPrefix(line, "apiserver_flowcontrol_request_wait_duration_seconds_count{"):
			key = "waited " + label(line, "priority_level")
		default:
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %q: %w", line, err)
		}
		out[key] += v
	}
	return out, sc.Err()
}

// verbResource is "VERB resource[/subresource]" of a sample line.
func verbResource(line string) string {
	resource := label(line, "resource")
	if sub := label(line, "subresource"); sub != "" {
		resource += "/" + sub
	}
	return label(line, "verb") + " " + resource
}

// answerTimes lists, for the calls of at least 0.01 per request, the
// API server's mean time to answer one (and how many took over a
// second), and the mean time requests of
// each priority level queued: where the API server's time went.
func answerTimes(before, after map[string]float64, n int) string {
	var parts []string
	for k, v := range after {
		calls := v - before[k]
		switch {
		case strings.HasSuffix(k, " seconds"), strings.HasSuffix(k, " within 1s"), strings.HasPrefix(k, "wait"):
			continue
		case strings.HasPrefix(k, "waited "):
			level := strings.TrimPrefix(k, "waited ")
			if calls > 0 {
				parts = append(parts, fmt.Sprintf("queued (%s) %.0f ms", level, 1000*(after["wait "+level]-before["wait "+level])/calls))
			}
		case calls/float64(n) >= 0.01:
			part := fmt.Sprintf("%s %.0f ms", k, 1000*(after[k+" seconds"]-before[k+" seconds"])/calls)
			if slow := calls - (after[k+" within 1s"] - before[k+" within 1s"]); slow > 0 {
				part += fmt.Sprintf(" (%.0f over 1 s)", slow)
			}
			parts = append(parts, part)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// label is the value of label name in a Prometheus sample line, or "".
func label(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

// perRequest is after minus before, divided by n, without the series that
// did not move.
func perRequest(before, after map[string]float64, n int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if strings.HasSuffix(k, " seconds") || strings.HasSuffix(k, " within 1s") || strings.HasPrefix(k, "wait") {
			continue
		}
		if d := v - before[k]; d > 0 {
			out[k] = d / float64(n)
		}
	}
	return out
}

// formatPerRequest lists counts per request, largest first, those of at
// least 0.01 per request.
func formatPerRequest(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	var total float64
	for k, v := range m {
		total += v
		if v >= 0.01 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || (m[keys[i]] == m[keys[j]] && keys[i] < keys[j]) })
	var b strings.Builder
	fmt.Fprintf(&b, "%.2f in all:", total)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %.2f;", k, m[k])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// saveProfile writes the router's pprof profile at endpoint (a path under
// /debug/pprof/ with its query) to path.
func (r *routerProcess) saveProfile(endpoint, path string) error {
	if r.pprof == "" {
		return fmt.Errorf("the router was started without --pprof-bind-address")
	}
	resp, err := http.Get(r.pprof + "/debug/pprof/" + endpoint)
	if err != nil {
		return fmt.Errorf("reading the router's profile %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading the router's profile %s: %s", endpoint, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
