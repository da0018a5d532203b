package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/testenv"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

var singleGVK = schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1alpha1", Kind: "Single"}

var singleOnce sync.Once

// applySingle applies the one-pipeline Promise once for the tests here.
func applySingle(t *testing.T) {
	singleOnce.Do(func() {
		applyPromise(t, readPromise(t, "testdata/single-promise.yaml"))
		grantFeedback(t, stack.DestinationClient, "", "configmaps")
	})
}

func single(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(singleGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	u.Object["spec"] = map[string]any{"size": name}
	return u
}

// namespaceJobs counts the workflow Jobs of the requests in namespace ns
// (they run in the router's namespace).
func namespaceJobs(t *testing.T, ns string) int {
	t.Helper()
	var jobs batchv1.JobList
	if err := platform.List(context.Background(), &jobs, client.InNamespace(testenv.SecretsNamespace)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range jobs.Items {
		if _, jobNs, _, ok := workflow.ObjectOf(j.Annotations); ok && jobNs == ns {
			n++
		}
	}
	return n
}

// TestOldJobsAreCleanedUp: re-running a request's workflow over and over
// keeps only the newest Jobs (and their WorkflowOutputs), and deleting
// the request removes all of them.
func TestOldJobsAreCleanedUp(t *testing.T) {
	ctx := context.Background()
	applySingle(t)
	newNamespace(t, "team-jobs")
	req := single("team-jobs", "rerun")
	if err := platform.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, "team-jobs", "rerun")
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, workflow.ManualReconciliationLabel)
	for i := 0; i < 8; i++ {
		_, u := requestStatus(t, singleGVK, "team-jobs", "rerun")
		last := newestRun(t, u)
		if err := platform.Patch(ctx, req.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, time.Minute, "the re-run done", func() (bool, string) {
			st, u := requestStatus(t, singleGVK, "team-jobs", "rerun")
			c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition)
			_, labelled := u.GetLabels()[workflow.ManualReconciliationLabel]
			return !labelled && c != nil && c.Reason == v1alpha1.WorkflowCompleted && newestRun(t, u) != last, fmt.Sprintf("%v, labelled %v", c, labelled)
		})
	}
	testenv.WaitFor(t, time.Minute, "old Jobs removed", func() (bool, string) {
		n := namespaceJobs(t, "team-jobs")
		return n <= controller.DefaultJobsKept, fmt.Sprintf("%d Jobs", n)
	})
	var outs v1alpha1.WorkflowOutputList
	if err := platform.List(ctx, &outs, client.InNamespace(testenv.SecretsNamespace)); err != nil {
		t.Fatal(err)
	}
	var jobs batchv1.JobList
	if err := platform.List(ctx, &jobs, client.InNamespace(testenv.SecretsNamespace)); err != nil {
		t.Fatal(err)
	}
	if len(outs.Items) > len(jobs.Items) {
		t.Errorf("%d WorkflowOutputs left for %d Jobs", len(outs.Items), len(jobs.Items))
	}
	if err := platform.Delete(ctx, req); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "no Jobs after the request is gone", func() (bool, string) {
		n := namespaceJobs(t, "team-jobs")
		return n == 0, fmt.Sprintf("%d Jobs", n)
	})
}

func waitWritten(t *testing.T, ns, name string) {
	t.Helper()
	testenv.WaitFor(t, 2*time.Minute, ns+"/"+name+" Written", func() (bool, string) {
		st, _ := requestStatus(t, singleGVK, ns, name)
		return apimeta.IsStatusConditionTrue(st.Conditions, v1alpha1.WrittenCondition), fmt.Sprint(st.Conditions)
	})
}

// TestWorkflowFigures measures, through the Job stand-in, the time from
// create to Written for a one-container pipeline (20 requests, one after
// the other) and the Jobs left after 100 requests. SWITCHYARD_MEASURE=1
// runs it.
func TestWorkflowFigures(t *testing.T) {
	if os.Getenv("SWITCHYARD_MEASURE") == "" {
		t.Skip("a measurement; SWITCHYARD_MEASURE=1 runs it")
	}
	ctx := context.Background()
	applySingle(t)
	newNamespace(t, "team-figures")
	var took []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if err := platform.Create(ctx, single("team-figures", fmt.Sprintf("seq-%d", i))); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, time.Minute, "Written", func() (bool, string) {
			st, _ := requestStatus(t, singleGVK, "team-figures", fmt.Sprintf("seq-%d", i))
			return apimeta.IsStatusConditionTrue(st.Conditions, v1alpha1.WrittenCondition), ""
		})
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("create to Written through a one-container pipeline, 20 requests: median %s, min %s, max %s",
		took[10].Round(time.Millisecond), took[0].Round(time.Millisecond), took[19].Round(time.Millisecond))

	start := time.Now()
	for i := 0; i < 80; i++ {
		if err := platform.Create(ctx, single("team-figures", fmt.Sprintf("burst-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 80; i++ {
		waitWritten(t, "team-figures", fmt.Sprintf("burst-%d", i))
	}
	t.Logf("80 more at once: all Written in %s; Jobs left for the 100 requests: %d", time.Since(start).Round(time.Millisecond), namespaceJobs(t, "team-figures"))
}
