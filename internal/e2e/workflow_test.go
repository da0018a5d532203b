package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/testenv"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

var scriptedGVK = schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1alpha1", Kind: "Scripted"}

// TestWorkflowRunsAndReruns runs a Promise's workflows (a promise.configure
// pipeline making its dependencies; two resource.configure pipelines, the
// first of two containers; one resource.delete pipeline) through the
// Job stand-in, which runs the router's own reader and writer steps and
// cmd/kratix-examples: output written in pipeline order, status.yaml
// merged, a spec change, a Promise change and the manual-reconciliation
// label re-run it, a failing container is reported and removes nothing, an
// output too large for one object is refused whole, retryAfter runs a
// pipeline again, and the delete pipeline runs (and must succeed) before
// the files are removed.
func TestWorkflowRunsAndReruns(t *testing.T) {
	ctx := context.Background()
	applyPromise(t, readPromise(t, "testdata/scripted-promise.yaml"))
	grantFeedback(t, stack.DestinationClient, "", "configmaps")
	// The promise.configure pipeline's output goes to every matching
	// destination, as dependencies, and Flux applies it there.
	for dest := range destinationLabels {
		waitRepoHolds(t, dest, dest+"/dependencies/scripted/deps.dependencies.yaml", "promise: scripted")
	}
	testenv.WaitFor(t, time.Minute, "namespace scripted-deps on the destination", func() (bool, string) {
		err := stack.DestinationClient.Get(ctx, types.NamespacedName{Name: "scripted-deps"}, &corev1.Namespace{})
		return err == nil, fmt.Sprint(err)
	})
	newNamespace(t, "team-wf")
	req := &unstructured.Unstructured{}
	req.SetGroupVersionKind(scriptedGVK)
	req.SetNamespace("team-wf")
	req.SetName("wf")
	req.Object["spec"] = map[string]any{"data": map[string]any{"colour": "blue"}}
	if err := platform.Create(ctx, req); err != nil {
		t.Fatal(err)
	}

	st := waitRequestReady(t, scriptedGVK, "team-wf", "wf", metav1.ConditionTrue, v1alpha1.ResourcesReady, "", 3*time.Minute)
	checkWorkflow(t, st, v1alpha1.WorkflowCompleted)
	dir := fmt.Sprintf("%s/resources/team-wf/scripted/wf/", st.Destination)
	files := repoFiles(t, st.Commit, dir)
	if want := []string{"first.configmap.yaml", "first.scripted.yaml", "second.labels.yaml"}; strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("the request's directory holds %v, want %v", files, want)
	}
	if got := repoFile(t, st.Commit, dir+"first.scripted.yaml"); !strings.Contains(got, "colour: blue") || !strings.Contains(got, v1alpha1.RequestUIDLabel) {
		t.Errorf("first.scripted.yaml lacks the data or the request's label:\n%s", got)
	}
	_, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
	if m, _, _ := unstructured.NestedString(u.Object, "status", "message"); !strings.Contains(m, "copied to configmap") {
		t.Errorf("status.message = %q, want the second pipeline's (later pipelines win)", m)
	}
	if g, _, _ := unstructured.NestedInt64(u.Object, "status", "generation"); g != 1 {
		t.Errorf("status.generation = %d, want 1 (from the first pipeline's status.yaml)", g)
	}
	checkJobContract(t, u, contract{promise: "scripted", pipeline: "first", plural: "scripteds", containers: "configmap,scripted"})

	t.Run("spec change re-runs", func(t *testing.T) {
		patchSpec(t, req, `{"spec":{"data":{"colour":"green"}}}`)
		st := waitStatusField(t, "wf", "generation", int64(2))
		waitRepoHolds(t, st.Destination, dir+"first.scripted.yaml", "colour: green")
	})

	t.Run("failing container is reported and removes nothing", func(t *testing.T) {
		before, _ := requestStatus(t, scriptedGVK, "team-wf", "wf")
		patchSpec(t, req, `{"spec":{"failOn":"configure","failMessage":"quota exceeded for team-wf"}}`)
		c := waitWorkflowReason(t, "wf", v1alpha1.WorkflowFailed)
		for _, want := range []string{"container scripted exited with code 1", "quota exceeded for team-wf"} {
			if !strings.Contains(c.Message, want) {
				t.Errorf("ConfigureWorkflowCompleted message %q lacks %q", c.Message, want)
			}
		}
		testenv.WaitForEvent(t, platform, "team-wf", "wf", v1alpha1.WorkflowFailed)
		after, _ := requestStatus(t, scriptedGVK, "team-wf", "wf")
		if !apimeta.IsStatusConditionTrue(after.Conditions, v1alpha1.WrittenCondition) || after.Commit != before.Commit {
			t.Errorf("after the failure: Written %v, commit %s (was %s); want the last output kept", apimeta.FindStatusCondition(after.Conditions, v1alpha1.WrittenCondition), after.Commit, before.Commit)
		}
		if got := repoFile(t, "HEAD", dir+"first.scripted.yaml"); !strings.Contains(got, "colour: green") {
			t.Errorf("the last good output is gone from the repo:\n%s", got)
		}
		patchSpec(t, req, `{"spec":{"failOn":null,"failMessage":null}}`)
		waitWorkflowReason(t, "wf", v1alpha1.WorkflowCompleted)
	})

	t.Run("retryAfter runs the pipeline again", func(t *testing.T) {
		until := time.Now().Add(15 * time.Second).UTC().Format(time.RFC3339)
		patchSpec(t, req, fmt.Sprintf(`{"spec":{"retryUntil":%q}}`, until))
		waitWorkflowReason(t, "wf", v1alpha1.WorkflowRetrying)
		waitWorkflowReason(t, "wf", v1alpha1.WorkflowCompleted)
		_, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
		attempts := map[string]int{}
		for _, j := range jobsOf(t, u, workflow.ActionConfigure) {
			if j.Labels[workflow.RunLabel] == newestRun(t, u) {
				attempts[j.Labels[workflow.PipelineNameLabel]]++
			}
		}
		if attempts["first"] < 2 || attempts["second"] != 1 {
			t.Errorf("attempts in the last run: %v; want first at least 2 (retried), second once", attempts)
		}
	})

	t.Run("an output too large is refused whole", func(t *testing.T) {
		patchSpec(t, req, `{"spec":{"outputBytes":1200000}}`)
		c := waitWorkflowReason(t, "wf", v1alpha1.WorkflowFailed)
		if !strings.Contains(c.Message, "container writer exited") || !strings.Contains(c.Message, "one object can carry") {
			t.Errorf("ConfigureWorkflowCompleted message %q does not say the output is too large", c.Message)
		}
		if files := repoFiles(t, "HEAD", dir); slices.Contains(files, "first.noise.bin") || !slices.Contains(files, "first.scripted.yaml") {
			t.Errorf("after the refused output the directory holds %v", files)
		}
		patchSpec(t, req, `{"spec":{"outputBytes":null}}`)
		waitWorkflowReason(t, "wf", v1alpha1.WorkflowCompleted)
	})

	t.Run("a Promise change re-runs", func(t *testing.T) {
		_, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
		last := newestRun(t, u)
		patch := `[{"op":"add","path":"/spec/workflows/resource/configure/1/metadata/labels","value":{"revision":"2"}}]`
		if err := platform.Patch(ctx, &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "scripted"}}, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 2*time.Minute, "a new run, complete", func() (bool, string) {
			st, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
			c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition)
			return newestRun(t, u) != last && c != nil && c.Reason == v1alpha1.WorkflowCompleted, fmt.Sprint(c)
		})
		for _, j := range jobsOf(t, u, workflow.ActionConfigure) {
			if j.Labels[workflow.RunLabel] == newestRun(t, u) && j.Labels[workflow.PipelineNameLabel] == "second" && j.Labels["revision"] != "2" {
				t.Errorf("Job %s of the new run lacks the pipeline's new label", j.Name)
			}
		}
	})

	t.Run("manual reconciliation label re-runs", func(t *testing.T) {
		_, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
		last := newestRun(t, u)
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, workflow.ManualReconciliationLabel)
		if err := platform.Patch(ctx, req.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 2*time.Minute, "a new run and the label removed", func() (bool, string) {
			_, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
			_, labelled := u.GetLabels()[workflow.ManualReconciliationLabel]
			return newestRun(t, u) != last && !labelled, fmt.Sprintf("label still there: %v", labelled)
		})
		waitWorkflowReason(t, "wf", v1alpha1.WorkflowCompleted)
	})

	t.Run("delete pipeline runs before the files go", func(t *testing.T) {
		patchSpec(t, req, `{"spec":{"failOn":"delete","failMessage":"backup not taken"}}`)
		_, u := requestStatus(t, scriptedGVK, "team-wf", "wf")
		waitStatusField(t, "wf", "generation", u.GetGeneration())
		if err := platform.Delete(ctx, req.DeepCopy()); err != nil {
			t.Fatal(err)
		}
		waitRequestReady(t, scriptedGVK, "team-wf", "wf", metav1.ConditionFalse, v1alpha1.WorkflowFailed, "backup not taken", time.Minute)
		if got := repoFile(t, "HEAD", dir+"first.scripted.yaml"); got == "" {
			t.Fatal("the files were removed while the delete pipeline failed")
		}
		patchSpec(t, req, `{"spec":{"failOn":null}}`)
		testenv.WaitFor(t, 2*time.Minute, "the request gone", func() (bool, string) {
			err := platform.Get(ctx, client.ObjectKeyFromObject(req), req.DeepCopy())
			return err != nil && client.IgnoreNotFound(err) == nil, fmt.Sprint(err)
		})
		if files := repoFiles(t, "HEAD", dir); len(files) != 0 {
			t.Errorf("after deletion the repo still holds %v", files)
		}
		var jobs batchv1.JobList
		if err := platform.List(ctx, &jobs, client.InNamespace(testenv.SecretsNamespace), client.MatchingLabels{workflow.OwnerUIDLabel: string(u.GetUID())}); err != nil || len(jobs.Items) != 0 {
			t.Errorf("after deletion %d Job(s) are left (%v)", len(jobs.Items), err)
		}
	})
}

// TestPipelinesCannotReachTheRoutersSecrets: pipelines run in the router's
// namespace, beside its credentials; a pipeline naming one of its Secrets
// (not labelled switchyard.dev/pipeline-access=true) is refused, and no Job
// runs.
func TestPipelinesCannotReachTheRoutersSecrets(t *testing.T) {
	ctx := context.Background()
	applyPromise(t, readPromise(t, "testdata/leaky-promise.yaml"))
	newNamespace(t, "team-leaky")
	req := &unstructured.Unstructured{}
	req.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1alpha1", Kind: "Leaky"})
	req.SetNamespace("team-leaky")
	req.SetName("steal")
	req.Object["spec"] = map[string]any{}
	if err := platform.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	var c *metav1.Condition
	testenv.WaitFor(t, time.Minute, "the pipeline refused", func() (bool, string) {
		st, _, err := readStatus(ctx, req.GroupVersionKind(), "team-leaky", "steal")
		if err != nil {
			return false, err.Error()
		}
		c = apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition)
		return c != nil && c.Reason == v1alpha1.WorkflowFailed, fmt.Sprint(c)
	})
	if !strings.Contains(c.Message, "Secret "+testenv.SecretsNamespace+"/state-git, which is not marked for pipelines") {
		t.Errorf("ConfigureWorkflowCompleted message %q does not name the Secret", c.Message)
	}
	_, u, _ := readStatus(ctx, req.GroupVersionKind(), "team-leaky", "steal")
	if jobs := jobsOf(t, u, workflow.ActionConfigure); len(jobs) != 0 {
		t.Errorf("%d Job(s) made for a pipeline naming the router's Secret", len(jobs))
	}
}

// checkWorkflow checks the request's ConfigureWorkflowCompleted reason.
func checkWorkflow(t *testing.T, st *v1alpha1.RequestStatus, reason string) {
	t.Helper()
	c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition)
	if c == nil || c.Reason != reason {
		t.Fatalf("ConfigureWorkflowCompleted = %+v, want reason %s", c, reason)
	}
}

func waitWorkflowReason(t *testing.T, name, reason string) *metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	testenv.WaitFor(t, 2*time.Minute, name+" ConfigureWorkflowCompleted "+reason, func() (bool, string) {
		st, _ := requestStatus(t, scriptedGVK, "team-wf", name)
		c = apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition)
		if c == nil {
			return false, "no condition"
		}
		return c.Reason == reason, c.Reason + ": " + c.Message
	})
	return c
}

// waitStatusField waits until status.<field> of team-wf/name is want, and
// for Written on the commit of that output.
func waitStatusField(t *testing.T, name, field string, want any) *v1alpha1.RequestStatus {
	t.Helper()
	var st *v1alpha1.RequestStatus
	testenv.WaitFor(t, 2*time.Minute, fmt.Sprintf("status.%s = %v", field, want), func() (bool, string) {
		var u *unstructured.Unstructured
		st, u = requestStatus(t, scriptedGVK, "team-wf", name)
		got, _, _ := unstructured.NestedFieldNoCopy(u.Object, "status", field)
		return got == want && apimeta.IsStatusConditionTrue(st.Conditions, v1alpha1.WrittenCondition), fmt.Sprintf("%v", got)
	})
	return st
}

func patchSpec(t *testing.T, req *unstructured.Unstructured, patch string) {
	t.Helper()
	if err := platform.Patch(context.Background(), req.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// repoFiles lists the files under dir (ending in /) at rev of the state
// repo.
func repoFiles(t *testing.T, rev, dir string) []string {
	t.Helper()
	repo := testenv.Clone(t, stack.RepoURL)
	out, err := testenv.GitE(repo, "ls-tree", "--name-only", rev, dir)
	if err != nil {
		return nil
	}
	var files []string
	for _, l := range strings.Fields(out) {
		files = append(files, strings.TrimPrefix(l, dir))
	}
	sort.Strings(files)
	return files
}

// repoFile is the content of path at rev, or "" when it has none.
func repoFile(t *testing.T, rev, path string) string {
	t.Helper()
	repo := testenv.Clone(t, stack.RepoURL)
	out, err := testenv.GitE(repo, "show", rev+":"+path)
	if err != nil {
		return ""
	}
	return out
}

func waitRepoHolds(t *testing.T, dest, path, want string) {
	t.Helper()
	testenv.WaitFor(t, time.Minute, path+" holding "+want, func() (bool, string) {
		got := repoFile(t, "HEAD", path)
		return strings.Contains(got, want), got
	})
}

// jobsOf lists the request's workflow Jobs for action.
func jobsOf(t *testing.T, u *unstructured.Unstructured, action string) []batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	if err := platform.List(context.Background(), &jobs, client.InNamespace(testenv.SecretsNamespace),
		client.MatchingLabels{workflow.OwnerUIDLabel: string(u.GetUID()), workflow.WorkflowActionLabel: action}); err != nil {
		t.Fatal(err)
	}
	return jobs.Items
}

// newestRun is the run of the request's newest configure Job, by the
// run's sequence number.
func newestRun(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	newest, run := -1, ""
	for _, j := range jobsOf(t, u, workflow.ActionConfigure) {
		if seq, _ := strconv.Atoi(j.Annotations[workflow.SeqAnnotation]); seq > newest {
			newest, run = seq, j.Labels[workflow.RunLabel]
		}
	}
	if run == "" {
		t.Fatal("no Jobs")
	}
	return run
}

// contract is what checkJobContract expects of a request's Job: its
// Promise, pipeline, request kind's plural and the pipeline's containers.
type contract struct{ promise, pipeline, plural, containers string }

// checkJobContract checks a Job of the request against Kratix's contract:
// the router's steps around the pipeline's containers, the KRATIX_
// variables, the directories, the restricted security context, and the
// ServiceAccount with exactly the contract's rights.
func checkJobContract(t *testing.T, u *unstructured.Unstructured, c contract) {
	t.Helper()
	var job *batchv1.Job
	for _, j := range jobsOf(t, u, workflow.ActionConfigure) {
		if j.Labels[workflow.PipelineNameLabel] == c.pipeline {
			job = &j
			break
		}
	}
	if job == nil {
		t.Fatalf("no Job of pipeline %s", c.pipeline)
	}
	gvk := u.GroupVersionKind()
	pod := job.Spec.Template.Spec
	var names []string
	for _, c := range pod.InitContainers {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "reader,"+c.containers || len(pod.Containers) != 1 || pod.Containers[0].Name != "writer" {
		t.Errorf("init containers %s and containers %v, want reader,%s then writer", got, pod.Containers, c.containers)
	}
	want := map[string]string{
		"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_WORKFLOW_ACTION": "configure", "KRATIX_PROMISE_NAME": c.promise,
		"KRATIX_PIPELINE_NAME": c.pipeline, "KRATIX_OBJECT_KIND": gvk.Kind, "KRATIX_OBJECT_GROUP": gvk.Group,
		"KRATIX_OBJECT_VERSION": gvk.Version, "KRATIX_OBJECT_NAME": u.GetName(), "KRATIX_OBJECT_NAMESPACE": u.GetNamespace(),
		"KRATIX_CRD_PLURAL": c.plural, "KRATIX_CLUSTER_SCOPED": "false",
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("container %s: %s=%q, want %q", c.Name, k, env[k], v)
			}
		}
		mounts := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = true
		}
		if !mounts[workflow.InputDir] || !mounts[workflow.OutputDir] || !mounts[workflow.MetadataDir] {
			t.Errorf("container %s mounts %v, want the three /kratix directories", c.Name, mounts)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("container %s security context %+v is not restricted", c.Name, sc)
		}
		if c.Resources.Limits.Memory().String() != "256Mi" || c.Resources.Requests.Cpu().String() != "100m" {
			t.Errorf("container %s resources %+v, want the defaults", c.Name, c.Resources)
		}
	}
	sa := workflow.ServiceAccountName(c.promise, "resource", "configure", c.pipeline)
	if pod.ServiceAccountName != sa {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, sa)
	}
	// The Job runs in the router's namespace, out of the tenants' reach;
	// its ServiceAccount's rights are the contract's and nothing else.
	if job.Namespace != testenv.SecretsNamespace || len(job.OwnerReferences) != 0 {
		t.Errorf("Job %s/%s owned by %v; want it in the router's namespace, owned by nothing", job.Namespace, job.Name, job.OwnerReferences)
	}
	router, tenant := testenv.SecretsNamespace, u.GetNamespace()
	for _, check := range []struct {
		verb, group, resource, namespace string
		allowed                          bool
	}{
		{"get", gvk.Group, c.plural, tenant, true},
		{"create", "switchyard.dev", "workflowoutputs", router, true},
		{"create", "switchyard.dev", "workflowoutputs", tenant, false},
		{"create", "", "configmaps", router, false},
		{"list", gvk.Group, c.plural, tenant, false},
		{"get", gvk.Group, c.plural, "other", false},
		{"get", "", "secrets", router, false},
		{"get", "", "secrets", tenant, false},
		{"delete", "switchyard.dev", "workflowoutputs", router, false},
		{"create", "batch", "jobs", router, false},
	} {
		if got := testenv.Can(t, platform, "system:serviceaccount:"+router+":"+sa, check.verb, check.group, check.resource, check.namespace); got != check.allowed {
			t.Errorf("pipeline ServiceAccount may %s %s.%s in %s: %v, want %v", check.verb, check.resource, check.group, check.namespace, got, check.allowed)
		}
	}
}
