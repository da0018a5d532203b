package workflow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// PipelinesAnnotation is on every Job with the number of pipelines its run
// has, so a run can be judged complete after the Promise changed.
const PipelinesAnnotation = "switchyard.dev/pipelines"

// Attempt is one Job of a workflow, as Next reads it.
type Attempt struct {
	Name, UID string
	// Pipeline is the pipeline's name; its output is written under it.
	Pipeline  string
	Run       string
	Inputs    string
	Index     int
	Number    int
	Pipelines int
	Created   time.Time
	// Finished is zero while the Job runs.
	Finished  time.Time
	Succeeded bool
}

// AttemptOf reads j, a Job the router created; false for any other Job.
func AttemptOf(j *batchv1.Job) (Attempt, bool) {
	a := Attempt{Name: j.Name, UID: string(j.UID), Pipeline: j.Labels[PipelineNameLabel], Run: j.Labels[RunLabel], Inputs: j.Annotations[InputsAnnotation], Created: j.CreationTimestamp.Time}
	var err1, err2, err3 error
	a.Index, err1 = strconv.Atoi(j.Annotations[PipelineIndexAnnotation])
	a.Number, err2 = strconv.Atoi(j.Annotations[AttemptAnnotation])
	a.Pipelines, err3 = strconv.Atoi(j.Annotations[PipelinesAnnotation])
	if a.Run == "" || err1 != nil || err2 != nil || err3 != nil {
		return a, false
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			a.Finished, a.Succeeded = c.LastTransitionTime.Time, true
		case batchv1.JobFailed:
			a.Finished = c.LastTransitionTime.Time
		}
	}
	return a, true
}

// Workflow is what Next decides for.
type Workflow struct {
	// Pipelines is the number of pipelines in the workflow.
	Pipelines int
	// Inputs is the digest of what a run works from (InputsOf).
	Inputs string
	// Nonce, when set, asks for a run of its own (manual reconciliation):
	// a value seen once, such as the object's resourceVersion.
	Nonce string
}

// InputsOf digests what a workflow run works from: a new digest means a
// new run.
func InputsOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Step is what to do next.
type Step struct {
	// Create, when set, is the attempt to start: its run, pipeline index
	// and number; the controller builds the Job (Run, Job).
	Create *Attempt
	// RequeueAfter is when to look again, without a Job event.
	RequeueAfter time.Duration
	// Reason and Message describe the current run, for the
	// ConfigureWorkflowCompleted condition.
	Reason, Message string
	// Failed is the last failed attempt, when the current run waits on
	// one, for the controller to say which container failed.
	Failed *Attempt
	// Use are the final attempts, in pipeline order, of the run whose
	// output is written: the current run when complete, else the newest
	// complete one; nil when no run completed yet.
	Use []Attempt
	// Complete is true when Use is the current run.
	Complete bool
}

// Outputs reads the output of a succeeded attempt.
type Outputs func(Attempt) (*Output, error)

// Backoff is the wait before attempt n+1 of a pipeline whose n-th attempt
// failed: 10 s doubling, at most 5 min.
func Backoff(failures int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < failures && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// Next decides, from the attempts that exist, what the workflow does now.
func Next(w Workflow, attempts []Attempt, now time.Time, outputs Outputs) Step {
	runs := byRun(attempts)
	current := currentRun(w, attempts)
	st := walk(w, current, runs[current], now, outputs)
	if st.Complete {
		return st
	}
	st.Use = newestComplete(runs, current, outputs)
	return st
}

// currentRun is the run for w: the nonce's own run, or the newest run from
// w.Inputs, or a new one.
func currentRun(w Workflow, attempts []Attempt) string {
	if w.Nonce != "" {
		return InputsOf(w.Inputs, w.Nonce)
	}
	var newest *Attempt
	for i := range attempts {
		a := &attempts[i]
		if a.Inputs == w.Inputs && (newest == nil || a.Created.After(newest.Created)) {
			newest = a
		}
	}
	if newest != nil {
		return newest.Run
	}
	return InputsOf(w.Inputs, "")
}

func byRun(attempts []Attempt) map[string][]Attempt {
	out := map[string][]Attempt{}
	for _, a := range attempts {
		out[a.Run] = append(out[a.Run], a)
	}
	return out
}

// last is the newest attempt of pipeline index in a run's attempts.
func last(run []Attempt, index int) *Attempt {
	var l *Attempt
	for i := range run {
		a := &run[i]
		if a.Index == index && (l == nil || a.Number > l.Number) {
			l = a
		}
	}
	return l
}

// failures counts the failed attempts of pipeline index in a run: a Job
// that failed, or one that succeeded with an output that is not valid.
func failures(run []Attempt, index int, outputs Outputs) int {
	n := 0
	for _, a := range run {
		if a.Index != index || a.Finished.IsZero() {
			continue
		}
		if !a.Succeeded {
			n++
		} else if _, err := outputs(a); err != nil {
			n++
		}
	}
	return n
}

// walk goes through the current run's pipelines in order.
func walk(w Workflow, id string, run []Attempt, now time.Time, outputs Outputs) Step {
	var use []Attempt
	for i := 0; i < w.Pipelines; i++ {
		a := last(run, i)
		start := func(n int) Step {
			return Step{Create: &Attempt{Run: id, Inputs: w.Inputs, Index: i, Number: n, Pipelines: w.Pipelines},
				Reason: "WorkflowRunning", Message: fmt.Sprintf("starting pipeline %d of %d (attempt %d)", i+1, w.Pipelines, n)}
		}
		switch {
		case a == nil:
			return start(1)
		case a.Finished.IsZero():
			return Step{Reason: "WorkflowRunning", Message: fmt.Sprintf("pipeline %d of %d is running (Job %s)", i+1, w.Pipelines, a.Name)}
		case !a.Succeeded:
			at := a.Finished.Add(Backoff(failures(run, i, outputs)))
			if now.Before(at) {
				return Step{Reason: "WorkflowFailed", Failed: a, RequeueAfter: at.Sub(now),
					Message: fmt.Sprintf("pipeline %d of %d failed (Job %s); attempt %d starts in %s", i+1, w.Pipelines, a.Name, a.Number+1, at.Sub(now).Round(time.Second))}
			}
			return start(a.Number + 1)
		}
		out, err := outputs(*a)
		if err != nil {
			// A bad output is the pipeline's failure: the same backoff,
			// counting this attempt and earlier bad outputs.
			at := a.Finished.Add(Backoff(failures(run, i, outputs)))
			if now.Before(at) {
				return Step{Reason: "WorkflowOutputInvalid", RequeueAfter: at.Sub(now),
					Message: fmt.Sprintf("pipeline %d of %d (Job %s): %v; it runs again in %s", i+1, w.Pipelines, a.Name, err, at.Sub(now).Round(time.Second))}
			}
			return start(a.Number + 1)
		}
		if d := out.Control.RetryAfter; d > 0 {
			at := a.Finished.Add(d)
			if now.Before(at) {
				return Step{Reason: "WorkflowRetrying", RequeueAfter: at.Sub(now),
					Message: fmt.Sprintf("pipeline %d of %d asked to run again after %s (workflow-control.yaml); attempt %d starts in %s", i+1, w.Pipelines, d, a.Number+1, at.Sub(now).Round(time.Second))}
			}
			return start(a.Number + 1)
		}
		use = append(use, *a)
		if out.Control.Suspend && i < w.Pipelines-1 {
			return Step{Reason: "WorkflowSuspended",
				Message: fmt.Sprintf("pipeline %d of %d suspended the workflow (workflow-control.yaml); it resumes on a change or the %s label", i+1, w.Pipelines, ManualReconciliationLabel)}
		}
	}
	return Step{Reason: "WorkflowCompleted", Message: fmt.Sprintf("%d pipeline(s) succeeded", w.Pipelines), Use: use, Complete: true}
}

// newestComplete returns the final attempts of the newest run, other than
// current, whose every pipeline succeeded and asked for nothing more.
func newestComplete(runs map[string][]Attempt, current string, outputs Outputs) []Attempt {
	type done struct {
		at  time.Time
		use []Attempt
	}
	var best *done
	for id, run := range runs {
		if id == current || len(run) == 0 {
			continue
		}
		n := run[0].Pipelines
		var use []Attempt
		var end time.Time
		for i := 0; i < n; i++ {
			a := last(run, i)
			if a == nil || !a.Succeeded {
				use = nil
				break
			}
			out, err := outputs(*a)
			if err != nil || out.Control.RetryAfter > 0 || (out.Control.Suspend && i < n-1) {
				use = nil
				break
			}
			use = append(use, *a)
			end = a.Finished
		}
		if use != nil && (best == nil || end.After(best.at)) {
			best = &done{end, use}
		}
	}
	if best == nil {
		return nil
	}
	return best.use
}

// Prune returns the attempts to delete: all but the newest keep, sparing
// every attempt of the runs named in spare.
func Prune(attempts []Attempt, keep int, spare ...string) []Attempt {
	sorted := append([]Attempt(nil), attempts...)
	sort.Slice(sorted, func(i, j int) bool {
		if !sorted[i].Created.Equal(sorted[j].Created) {
			return sorted[i].Created.After(sorted[j].Created)
		}
		return sorted[i].Name > sorted[j].Name
	})
	var out []Attempt
	for i, a := range sorted {
		if i >= keep && !slices.Contains(spare, a.Run) {
			out = append(out, a)
		}
	}
	return out
}
