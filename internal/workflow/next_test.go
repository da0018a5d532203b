package workflow

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus s seconds.
func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// state is how an attempt ended.
type state int

const (
	running state = iota
	succeeded
	failed
)

// att is attempt number of pipeline index in run (of inputs), created at
// second created, finished at second finished unless running.
func att(run, inputs string, index, number int, st state, created, finished int) Attempt {
	a := Attempt{
		Name: fmt.Sprintf("%s-p%d-a%d", run, index, number), UID: fmt.Sprintf("uid-%s-%d-%d", run, index, number),
		Run: run, Inputs: inputs, Index: index, Number: number, Pipelines: 2, Created: at(created),
	}
	if st != running {
		a.Finished, a.Succeeded = at(finished), st == succeeded
	}
	return a
}

// outputsOf answers by attempt name; an attempt not named has an empty
// output.
func outputsOf(m map[string]any) Outputs {
	return func(a Attempt) (*Output, error) {
		switch v := m[a.Name].(type) {
		case nil:
			return &Output{}, nil
		case Control:
			return &Output{Control: v}, nil
		case error:
			return nil, v
		default:
			panic(fmt.Sprintf("outputsOf: %T", v))
		}
	}
}

func TestNext(t *testing.T) {
	const in, in2 = "inputs-1", "inputs-2"
	run, run2 := InputsOf(in, ""), InputsOf(in2, "")
	nonceRun := InputsOf(in, "rv-7")
	badOutput := errors.New("status.yaml must be a YAML map")
	type want struct {
		create  *Attempt // Run, Inputs, Index, Number, Pipelines compared
		reason  string
		requeue time.Duration
		failed  string   // name of Step.Failed
		use     []string // names, in order
		done    bool
	}
	tests := []struct {
		name     string
		w        Workflow
		attempts []Attempt
		now      int
		outputs  map[string]any
		want     want
	}{
		{"no attempts", Workflow{Pipelines: 2, Inputs: in}, nil, 0, nil,
			want{create: &Attempt{Run: run, Inputs: in, Index: 0, Number: 1, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"first running", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, running, 0, 0)}, 100, nil,
			want{reason: "WorkflowRunning"}},
		{"first succeeded", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10)}, 11, nil,
			want{create: &Attempt{Run: run, Inputs: in, Index: 1, Number: 1, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"second running", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, running, 11, 0)}, 20, nil,
			want{reason: "WorkflowRunning"}},
		{"all succeeded", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 1, 1, succeeded, 11, 20), att(run, in, 0, 1, succeeded, 0, 10)}, 30, nil,
			want{reason: "WorkflowCompleted", use: []string{run + "-p0-a1", run + "-p1-a1"}, done: true}},
		{"failed, in backoff", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, failed, 0, 10)}, 13, nil,
			want{reason: "WorkflowFailed", requeue: 7 * time.Second, failed: run + "-p0-a1"}},
		{"failed, after backoff", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, failed, 0, 10)}, 20, nil,
			want{create: &Attempt{Run: run, Inputs: in, Index: 0, Number: 2, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"failed twice, in backoff", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, failed, 0, 10), att(run, in, 0, 2, failed, 20, 30)}, 45, nil,
			want{reason: "WorkflowFailed", requeue: 5 * time.Second, failed: run + "-p0-a2"}},
		{"failed twice, after backoff", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, failed, 0, 10), att(run, in, 0, 2, failed, 20, 30)}, 50, nil,
			want{create: &Attempt{Run: run, Inputs: in, Index: 0, Number: 3, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"second pipeline failed", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, failed, 11, 20)}, 21, nil,
			want{reason: "WorkflowFailed", requeue: 9 * time.Second, failed: run + "-p1-a1"}},
		{"retryAfter, waiting", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10)}, 40,
			map[string]any{run + "-p0-a1": Control{RetryAfter: time.Minute}},
			want{reason: "WorkflowRetrying", requeue: 30 * time.Second}},
		{"retryAfter, due", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10)}, 70,
			map[string]any{run + "-p0-a1": Control{RetryAfter: time.Minute}},
			want{create: &Attempt{Run: run, Inputs: in, Index: 0, Number: 2, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"retryAfter, retried attempt succeeded", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 0, 2, succeeded, 70, 80)}, 81,
			map[string]any{run + "-p0-a1": Control{RetryAfter: time.Minute}},
			want{create: &Attempt{Run: run, Inputs: in, Index: 1, Number: 1, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"suspend", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10)}, 1000,
			map[string]any{run + "-p0-a1": Control{Suspend: true}},
			want{reason: "WorkflowSuspended"}},
		{"suspend by the last pipeline completes", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20)}, 30,
			map[string]any{run + "-p1-a1": Control{Suspend: true}},
			want{reason: "WorkflowCompleted", use: []string{run + "-p0-a1", run + "-p1-a1"}, done: true}},
		{"nonce starts a new run", Workflow{Pipelines: 2, Inputs: in, Nonce: "rv-7"},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20)}, 30, nil,
			want{create: &Attempt{Run: nonceRun, Inputs: in, Index: 0, Number: 1, Pipelines: 2}, reason: "WorkflowRunning",
				use: []string{run + "-p0-a1", run + "-p1-a1"}}},
		{"nonce run completes", Workflow{Pipelines: 2, Inputs: in, Nonce: "rv-7"},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20),
				att(nonceRun, in, 0, 1, succeeded, 30, 40), att(nonceRun, in, 1, 1, succeeded, 41, 50)}, 60, nil,
			want{reason: "WorkflowCompleted", use: []string{nonceRun + "-p0-a1", nonceRun + "-p1-a1"}, done: true}},
		{"nonce gone, its run stays current", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20),
				att(nonceRun, in, 0, 1, running, 30, 0)}, 35, nil,
			want{reason: "WorkflowRunning", use: []string{run + "-p0-a1", run + "-p1-a1"}}},
		{"inputs changed", Workflow{Pipelines: 2, Inputs: in2},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20)}, 30, nil,
			want{create: &Attempt{Run: run2, Inputs: in2, Index: 0, Number: 1, Pipelines: 2}, reason: "WorkflowRunning",
				use: []string{run + "-p0-a1", run + "-p1-a1"}}},
		{"inputs changed, new run failing", Workflow{Pipelines: 2, Inputs: in2},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20),
				att(run2, in2, 0, 1, succeeded, 30, 40), att(run2, in2, 1, 1, failed, 41, 50)}, 51, nil,
			want{reason: "WorkflowFailed", requeue: 9 * time.Second, failed: run2 + "-p1-a1", use: []string{run + "-p0-a1", run + "-p1-a1"}}},
		{"inputs changed twice, newest complete older run used", Workflow{Pipelines: 2, Inputs: "inputs-3"},
			[]Attempt{
				att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20),
				att(run2, in2, 0, 1, succeeded, 30, 40), att(run2, in2, 1, 1, succeeded, 41, 50),
				// Newer, but never completed: not used.
				att("abandoned", "inputs-x", 0, 1, succeeded, 60, 70), att("abandoned", "inputs-x", 1, 1, failed, 71, 80),
				// Newer and complete, but its output asks for a retry: not used.
				att("retrying", "inputs-y", 0, 1, succeeded, 90, 95), att("retrying", "inputs-y", 1, 1, succeeded, 96, 99),
			}, 100, map[string]any{"retrying-p1-a1": Control{RetryAfter: time.Hour}},
			want{create: &Attempt{Run: InputsOf("inputs-3", ""), Inputs: "inputs-3", Index: 0, Number: 1, Pipelines: 2}, reason: "WorkflowRunning",
				use: []string{run2 + "-p0-a1", run2 + "-p1-a1"}}},
		{"inputs changed back to a complete run", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{
				att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20),
				att(run2, in2, 0, 1, succeeded, 30, 40), att(run2, in2, 1, 1, succeeded, 41, 50),
			}, 60, nil,
			want{reason: "WorkflowCompleted", use: []string{run + "-p0-a1", run + "-p1-a1"}, done: true}},
		{"output error, in backoff", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10)}, 14,
			map[string]any{run + "-p0-a1": badOutput},
			want{reason: "WorkflowOutputInvalid", requeue: 6 * time.Second}},
		{"output error, after backoff", Workflow{Pipelines: 2, Inputs: in}, []Attempt{att(run, in, 0, 1, succeeded, 0, 10)}, 20,
			map[string]any{run + "-p0-a1": badOutput},
			want{create: &Attempt{Run: run, Inputs: in, Index: 0, Number: 2, Pipelines: 2}, reason: "WorkflowRunning"}},
		{"output error twice, backoff doubles", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 0, 2, succeeded, 20, 30)}, 45,
			map[string]any{run + "-p0-a1": badOutput, run + "-p0-a2": badOutput},
			want{reason: "WorkflowOutputInvalid", requeue: 5 * time.Second}},
		{"output error then failure, backoff doubles", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 0, 2, failed, 20, 30)}, 45,
			map[string]any{run + "-p0-a1": badOutput},
			want{reason: "WorkflowFailed", requeue: 5 * time.Second, failed: run + "-p0-a2"}},
		{"retryAfter then failure is one failure", Workflow{Pipelines: 2, Inputs: in},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 0, 2, failed, 70, 80)}, 85,
			map[string]any{run + "-p0-a1": Control{RetryAfter: time.Minute}},
			want{reason: "WorkflowFailed", requeue: 5 * time.Second, failed: run + "-p0-a2"}},
		{"complete run with a bad output is not used", Workflow{Pipelines: 2, Inputs: in2},
			[]Attempt{att(run, in, 0, 1, succeeded, 0, 10), att(run, in, 1, 1, succeeded, 11, 20)}, 30,
			map[string]any{run + "-p1-a1": badOutput},
			want{create: &Attempt{Run: run2, Inputs: in2, Index: 0, Number: 1, Pipelines: 2}, reason: "WorkflowRunning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := Next(tt.w, tt.attempts, at(tt.now), outputsOf(tt.outputs))
			if st.Reason != tt.want.reason {
				t.Errorf("Reason = %s (%s), want %s", st.Reason, st.Message, tt.want.reason)
			}
			if st.Message == "" {
				t.Error("no Message")
			}
			if st.RequeueAfter != tt.want.requeue {
				t.Errorf("RequeueAfter = %s, want %s", st.RequeueAfter, tt.want.requeue)
			}
			switch {
			case tt.want.create == nil && st.Create != nil:
				t.Errorf("Create = %+v, want none", *st.Create)
			case tt.want.create != nil && st.Create == nil:
				t.Errorf("Create = none, want %+v (%s: %s)", *tt.want.create, st.Reason, st.Message)
			case tt.want.create != nil:
				c, w := *st.Create, *tt.want.create
				if c.Run != w.Run || c.Inputs != w.Inputs || c.Index != w.Index || c.Number != w.Number || c.Pipelines != w.Pipelines {
					t.Errorf("Create = %+v, want %+v", c, w)
				}
			}
			failedName := ""
			if st.Failed != nil {
				failedName = st.Failed.Name
			}
			if failedName != tt.want.failed {
				t.Errorf("Failed = %q, want %q", failedName, tt.want.failed)
			}
			var use []string
			for _, a := range st.Use {
				use = append(use, a.Name)
			}
			if !reflect.DeepEqual(use, tt.want.use) {
				t.Errorf("Use = %v, want %v", use, tt.want.use)
			}
			if st.Complete != tt.want.done {
				t.Errorf("Complete = %v, want %v", st.Complete, tt.want.done)
			}
		})
	}
}

// TestNextUseOnceComplete walks a workflow through an input change, a
// failing new run and its recovery: once a run completed, Use is never
// empty.
func TestNextUseOnceComplete(t *testing.T) {
	w := Workflow{Pipelines: 2, Inputs: "a"}
	var attempts []Attempt
	outputs := outputsOf(nil)
	now := t0
	completed := false
	finish := func(ok bool) {
		for i := range attempts {
			if attempts[i].Finished.IsZero() {
				attempts[i].Finished, attempts[i].Succeeded = now, ok
			}
		}
	}
	for step := 0; step < 40; step++ {
		now = now.Add(7 * time.Second)
		if step == 10 {
			w.Inputs = "b"
		}
		if step == 25 {
			w.Inputs, w.Nonce = "b", "rv-1"
		}
		st := Next(w, attempts, now, outputs)
		if st.Complete {
			completed = true
		}
		if completed && len(st.Use) != w.Pipelines {
			t.Fatalf("step %d: Use = %v after a run completed (%s: %s)", step, st.Use, st.Reason, st.Message)
		}
		if st.Create != nil {
			a := *st.Create
			a.Name, a.Created = fmt.Sprintf("job-%d", step), now
			attempts = append(attempts, a)
			continue
		}
		// Jobs of run "b" fail three times, then succeed.
		failures := 0
		for _, a := range attempts {
			if a.Inputs == "b" && !a.Finished.IsZero() && !a.Succeeded {
				failures++
			}
		}
		finish(w.Inputs != "b" || failures >= 3)
	}
	if !completed {
		t.Fatal("no run completed")
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{
		0: 10 * time.Second, 1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 4: 80 * time.Second,
		5: 160 * time.Second, 6: 5 * time.Minute, 7: 5 * time.Minute, 100: 5 * time.Minute,
	} {
		if got := Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestPrune(t *testing.T) {
	var attempts []Attempt
	for i, run := range []string{"r1", "r1", "r2", "r2", "r3", "r3"} {
		attempts = append(attempts, Attempt{Name: fmt.Sprintf("j%d", i), Run: run, Created: at(i)})
	}
	// Shuffled, to show Prune sorts.
	attempts[0], attempts[5] = attempts[5], attempts[0]
	attempts[1], attempts[3] = attempts[3], attempts[1]
	tests := []struct {
		keep  int
		spare []string
		want  string
	}{
		{2, nil, "j3,j2,j1,j0"},
		{2, []string{"r1"}, "j3,j2"},
		{2, []string{"r1", "r2"}, ""},
		{4, nil, "j1,j0"},
		{0, nil, "j5,j4,j3,j2,j1,j0"},
		{0, []string{"r3"}, "j3,j2,j1,j0"},
		{6, nil, ""},
		{10, nil, ""},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range Prune(attempts, tt.keep, tt.spare...) {
			got = append(got, a.Name)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("Prune(keep %d, spare %v) = %v, want %s", tt.keep, tt.spare, got, tt.want)
		}
	}
}

func TestAttemptOf(t *testing.T) {
	job := func(conds ...batchv1.JobCondition) *batchv1.Job {
		j := Job(testRun())
		j.UID = "job-uid"
		j.CreationTimestamp = metav1.NewTime(at(0))
		j.Status.Conditions = conds
		return j
	}
	cond := func(typ batchv1.JobConditionType, s corev1.ConditionStatus, sec int) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: s, LastTransitionTime: metav1.NewTime(at(sec))}
	}
	tests := []struct {
		name      string
		job       *batchv1.Job
		ok        bool
		finished  time.Time
		succeeded bool
	}{
		{"running", job(), true, time.Time{}, false},
		{"complete", job(cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, 9), cond(batchv1.JobComplete, corev1.ConditionTrue, 10)), true, at(10), true},
		{"failed", job(cond(batchv1.JobFailureTarget, corev1.ConditionTrue, 9), cond(batchv1.JobFailed, corev1.ConditionTrue, 11)), true, at(11), false},
		{"failed false", job(cond(batchv1.JobFailed, corev1.ConditionFalse, 11)), true, time.Time{}, false},
		{"foreign", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, false, time.Time{}, false},
		{"bad annotation", func() *batchv1.Job { j := job(); j.Annotations[AttemptAnnotation] = "x"; return j }(), false, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := AttemptOf(tt.job)
			if ok != tt.ok {
				t.Fatalf("AttemptOf ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if !a.Finished.Equal(tt.finished) || a.Succeeded != tt.succeeded || a.UID != "job-uid" || !a.Created.Equal(at(0)) {
				t.Errorf("AttemptOf = %+v", a)
			}
		})
	}
}
