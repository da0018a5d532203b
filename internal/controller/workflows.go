package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// The router's rights for workflows: it runs Jobs, reads their Pods when
// one fails, reads and removes their WorkflowOutputs, and gives each
// Pipeline its ServiceAccount and RBAC. Creating WorkflowOutputs is the
// Pipelines' right; the router holds it only to grant it (RBAC lets no one
// grant what they do not hold).
// All of it happens in the router's own namespace, but the Pipelines' Roles
// in the requests' namespaces.
// +kubebuilder:rbac:groups=batch,namespace=switchyard-system,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",namespace=switchyard-system,resources=pods,verbs=get;list
// +kubebuilder:rbac:groups=switchyard.dev,namespace=switchyard-system,resources=workflowoutputs,verbs=get;create;delete
// +kubebuilder:rbac:groups="",namespace=switchyard-system,resources=serviceaccounts,verbs=get;create;update
// +kubebuilder:rbac:groups="",namespace=switchyard-system,resources=configmaps,verbs=get
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings;clusterroles;clusterrolebindings,verbs=get;create;update

// Workflows runs Promise workflows as Jobs (internal/workflow) for the
// request and Promise reconcilers.
type Workflows struct {
	// Client reads Jobs from the cache (labelled by the router) and writes.
	Client client.Client
	// Reader reads WorkflowOutputs and Pods, which are not cached.
	Reader client.Reader
	// Image is the router's image, for the reader and writer containers.
	Image string
	// Namespace is where every workflow Job runs: the router's.
	Namespace string
	// Keep is how many Jobs to keep per object and action, beyond those of
	// the run in use.
	Keep int

	outputsOnce sync.Once
	outputs     *lru.Cache // by Job UID; a Job's output never changes
}

// DefaultJobsKept is Workflows.Keep when unset: Kratix keeps five.
const DefaultJobsKept = 5

// outputsCached bounds the unpacked outputs held; each is at most
// workflow.MaxUnpacked, most a few KiB.
const outputsCached = 256

// Spec is one workflow to run for an object.
type Spec struct {
	Type, Action string
	Promise      string
	Pipelines    []v1alpha1.Pipeline
	Object       workflow.Object
	Owner        metav1.OwnerReference
	// Namespace is where the Jobs run.
	Namespace string
	// Inputs digests what a run works from; Nonce asks for a new run.
	Inputs, Nonce string
}

// Result is a workflow's state after Run.
type Result struct {
	workflow.Step
	// Output merges the used run's pipelines: files (OutputFileName),
	// selectors, and status fields (later pipelines win); nil when no run
	// completed.
	Output *workflow.Output
}

// Run looks at the workflow's Jobs, starts the next one if it is due,
// removes old ones, and returns where the workflow stands.
func (w *Workflows) Run(ctx context.Context, s Spec) (*Result, error) {
	var jobs batchv1.JobList
	if err := w.Client.List(ctx, &jobs, client.InNamespace(s.Namespace), client.MatchingLabels{
		workflow.OwnerUIDLabel: s.Object.UID, workflow.WorkflowTypeLabel: s.Type, workflow.WorkflowActionLabel: s.Action}); err != nil {
		return nil, fmt.Errorf("listing the workflow's Jobs: %w", err)
	}
	var attempts []workflow.Attempt
	for i := range jobs.Items {
		if a, ok := workflow.AttemptOf(&jobs.Items[i]); ok {
			attempts = append(attempts, a)
		}
	}
	wf := workflow.Workflow{Pipelines: len(s.Pipelines), Inputs: s.Inputs, Nonce: s.Nonce}
	step := workflow.Next(wf, attempts, time.Now(), func(a workflow.Attempt) (*workflow.Output, error) {
		return w.output(ctx, s.Namespace, a)
	})
	res := &Result{Step: step}
	if c := step.Create; c != nil {
		if err := w.start(ctx, s, *c); err != nil {
			return nil, err
		}
	}
	if step.Failed != nil {
		res.Message += ": " + w.describeFailure(ctx, s.Namespace, step.Failed.Name)
	}
	if step.Use != nil {
		out, err := w.merge(ctx, s, step.Use)
		if err != nil {
			return nil, err
		}
		res.Output = out
	}
	w.prune(ctx, s.Namespace, attempts, step)
	return res, nil
}

// start gives the Pipeline its ServiceAccount and RBAC and creates the
// attempt's Job.
func (w *Workflows) start(ctx context.Context, s Spec, a workflow.Attempt) error {
	// The cache may still hold an object that is gone (its finalizer just
	// removed, its Jobs with it): a Job for it would be left behind.
	if live, err := w.exists(ctx, s.Object); err != nil || !live {
		return err
	}
	if err := w.checkRefs(ctx, s.Pipelines[a.Index]); err != nil {
		return err
	}
	run := workflow.Run{Type: s.Type, Action: s.Action, Promise: s.Promise, Object: s.Object,
		Pipeline: s.Pipelines[a.Index], Index: a.Index, Pipelines: len(s.Pipelines), Attempt: a.Number,
		ID: a.Run, Seq: a.Seq, Inputs: a.Inputs, Namespace: s.Namespace, Image: w.Image, Owner: s.Owner}
	if err := workflow.CheckPermissions(run); err != nil {
		return err
	}
	for _, o := range workflow.Access(run) {
		if err := w.apply(ctx, o); err != nil {
			return fmt.Errorf("giving pipeline %s its ServiceAccount and RBAC (%s %s): %w; `router rbac %s` prints the rights the router needs to grant",
				run.Pipeline.Metadata.Name, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err, s.Promise)
		}
	}
	if err := w.Client.Create(ctx, workflow.Job(run)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the Job of pipeline %s: %w", run.Pipeline.Metadata.Name, err)
	}
	return nil
}

// checkRefs refuses a pipeline that names a Secret or ConfigMap of the
// router's namespace not marked for pipelines (workflow.PipelineAccessLabel):
// that namespace holds the router's own credentials.
func (w *Workflows) checkRefs(ctx context.Context, p v1alpha1.Pipeline) error {
	refs, err := workflow.References(p)
	if err != nil {
		return err
	}
	check := func(o client.Object, kind, name string) error {
		err := w.Reader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: name}, o)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading %s %s/%s that pipeline %s names: %w", kind, w.Namespace, name, p.Metadata.Name, err)
		}
		if err == nil && o.GetLabels()[workflow.PipelineAccessLabel] != "true" {
			return fmt.Errorf("pipeline %s names %s %s/%s, which is not marked for pipelines: label it %s=true to let pipelines read it",
				p.Metadata.Name, kind, w.Namespace, name, workflow.PipelineAccessLabel)
		}
		return nil // a missing one: the Pod waits for it, as in any namespace
	}
	for _, n := range refs.Secrets {
		if err := check(&corev1.Secret{}, "Secret", n); err != nil {
			return err
		}
	}
	for _, n := range refs.ConfigMaps {
		if err := check(&corev1.ConfigMap{}, "ConfigMap", n); err != nil {
			return err
		}
	}
	return nil
}

// exists reads o from the API server, not the cache.
func (w *Workflows) exists(ctx context.Context, o workflow.Object) (bool, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(o.GVK)
	err := w.Reader.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, u)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s %s before starting its workflow: %w", o.GVK.Kind, o.Name, err)
	}
	return string(u.GetUID()) == o.UID, nil
}

// apply creates o, or updates it to o when it differs. The objects are few
// and change only with the Promise, so they are read uncached.
func (w *Workflows) apply(ctx context.Context, o client.Object) error {
	err := w.Client.Create(ctx, o)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := o.DeepCopyObject().(client.Object)
	if err := w.Reader.Get(ctx, client.ObjectKeyFromObject(o), cur); err != nil {
		return err
	}
	o.SetResourceVersion(cur.GetResourceVersion())
	return w.Client.Update(ctx, o)
}

// output reads and unpacks a succeeded attempt's WorkflowOutput, which
// must be that very Job's (one of the name made by anyone else is
// refused).
func (w *Workflows) output(ctx context.Context, ns string, a workflow.Attempt) (*workflow.Output, error) {
	w.outputsOnce.Do(func() { w.outputs = lru.New(outputsCached) })
	if v, ok := w.outputs.Get(a.UID); ok {
		return v.(*workflow.Output), nil
	}
	var wo v1alpha1.WorkflowOutput
	if err := w.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: a.Name}, &wo); err != nil {
		return nil, fmt.Errorf("reading its WorkflowOutput %s: %w", a.Name, err)
	}
	if owner := metav1.GetControllerOf(&wo); owner == nil || string(owner.UID) != a.UID || wo.Job.UID != a.UID {
		return nil, fmt.Errorf("WorkflowOutput %s is not the output of Job %s (its owner is not that Job)", a.Name, a.Name)
	}
	out, err := workflow.Unpack(wo.Data)
	if err != nil {
		return nil, err
	}
	w.outputs.Add(a.UID, out)
	return out, nil
}

// merge joins the outputs of a run's final attempts, in pipeline order.
func (w *Workflows) merge(ctx context.Context, s Spec, use []workflow.Attempt) (*workflow.Output, error) {
	merged := &workflow.Output{Files: map[string][]byte{}, Status: map[string]any{}}
	for _, a := range use {
		out, err := w.output(ctx, s.Namespace, a)
		if err != nil {
			return nil, err
		}
		for p, b := range out.Files {
			name := OutputFileName(a.Pipeline, p)
			if _, dup := merged.Files[name]; dup {
				return nil, fmt.Errorf("pipeline %s writes two files that are both written as %s: rename one", a.Pipeline, name)
			}
			merged.Files[name] = b
		}
		merged.Selectors = append(merged.Selectors, out.Selectors...)
		for k, v := range out.Status {
			merged.Status[k] = v
		}
	}
	return merged, nil
}

// OutputFileName is the name under which a pipeline's output file p (a
// path under /kratix/output) is written in the request's directory, which
// holds files only: <pipeline>.<p with each / as .>, for example
// configure-table.table.yaml. Pipeline names hold no dots, so no output
// file takes a template's name (<template>.yaml) unless a pipeline shares
// the template's name and writes a file named "yaml".
func OutputFileName(pipeline, p string) string {
	return pipeline + "." + strings.ReplaceAll(p, "/", ".")
}

// describeFailure says which container of a failed Job's Pod failed and
// why, from the Pod's status: its name, exit code, reason and termination
// message (which the container chose to write; its logs are not read).
func (w *Workflows) describeFailure(ctx context.Context, ns, job string) string {
	var pods corev1.PodList
	if err := w.Reader.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{batchv1.JobNameLabel: job}); err != nil {
		return fmt.Sprintf("its Pod could not be read: %v", err)
	}
	for _, p := range pods.Items {
		statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
		for _, c := range statuses {
			t := c.State.Terminated
			if t == nil || t.ExitCode == 0 {
				continue
			}
			msg := fmt.Sprintf("container %s exited with code %d (%s)", c.Name, t.ExitCode, t.Reason)
			if m := strings.TrimSpace(t.Message); m != "" {
				msg += ": " + truncate(m, 512)
			}
			return msg
		}
	}
	return "no container reported a failure (see the Job's events)"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// prune deletes old Jobs and their WorkflowOutputs, keeping the newest
// and every Job of the run in use and of the current run.
func (w *Workflows) prune(ctx context.Context, ns string, attempts []workflow.Attempt, step workflow.Step) {
	keep := w.Keep
	if keep <= 0 {
		keep = DefaultJobsKept
	}
	var spare []string
	for _, a := range step.Use {
		spare = append(spare, a.Run)
	}
	if step.Create != nil {
		spare = append(spare, step.Create.Run)
	}
	for _, a := range workflow.Prune(attempts, keep, spare...) {
		w.remove(ctx, ns, a.Name)
	}
}

// Remove deletes every Job of an object's workflows and their outputs, for
// an object going away (in a cluster its garbage collector would; the
// router does not count on one).
func (w *Workflows) Remove(ctx context.Context, uid string) error {
	if w == nil {
		return nil
	}
	ns := w.Namespace
	var jobs batchv1.JobList
	if err := w.Client.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{workflow.OwnerUIDLabel: uid}); err != nil {
		return err
	}
	names := make([]string, 0, len(jobs.Items))
	for _, j := range jobs.Items {
		names = append(names, j.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		w.remove(ctx, ns, n)
	}
	return nil
}

// remove deletes a Job (its Pods with it) and its WorkflowOutput; a
// failure is left for the next prune.
func (w *Workflows) remove(ctx context.Context, ns, name string) {
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	_ = client.IgnoreNotFound(w.Client.Delete(ctx, &batchv1.Job{ObjectMeta: meta}, client.PropagationPolicy(metav1.DeletePropagationBackground)))
	_ = client.IgnoreNotFound(w.Client.Delete(ctx, &v1alpha1.WorkflowOutput{ObjectMeta: meta}))
}
