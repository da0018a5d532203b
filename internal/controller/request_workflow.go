package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/render"
	"github.com/switchyard-dev/switchyard/internal/scheduler"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// reservedStatus are the status fields the router owns: a pipeline's
// status.yaml cannot set them.
var reservedStatus = []string{"observedGeneration", "conditions", "destination", "placementReason", "commit", "outputs", "verified"}

// configurePipelines are a Promise's resource.configure pipelines.
func configurePipelines(p *v1alpha1.Promise) []v1alpha1.Pipeline {
	return p.Pipelines(workflow.TypeResource, workflow.ActionConfigure)
}

// workflowSpec is the request's workflow for action.
func (r *RequestReconciler) workflowSpec(obj *unstructured.Unstructured, p *v1alpha1.Promise, action string, pipelines []v1alpha1.Pipeline) Spec {
	return Spec{
		Type: workflow.TypeResource, Action: action, Promise: p.Name, Pipelines: pipelines,
		Object: workflow.Object{GVK: r.GVK, Plural: r.Plural, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID())},
		// In the router's namespace, not the request's: there its tenants
		// could run Pods as the pipeline's ServiceAccount, exec into the
		// pipeline or make Jobs that look like its, and so write what
		// they like to the destinations.
		Namespace: r.Workflows.Namespace,
	}
}

// configure runs the request's resource.configure workflow, when its
// Promise has one, and returns the output to write with what the
// templates render. done means there is nothing to place or write yet (no
// run completed); res then says when to look again.
func (r *RequestReconciler) configure(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, p *v1alpha1.Promise, extra map[string]any) (*workflow.Output, bool, ctrl.Result, error) {
	pipelines := configurePipelines(p)
	if len(pipelines) == 0 {
		return nil, false, ctrl.Result{}, nil
	}
	if err := workflow.Validate("spec.workflows.resource.configure", pipelines); err != nil {
		setAll(st, obj, metav1.ConditionFalse, v1alpha1.InvalidWorkflow, fmt.Sprintf("Promise %s: %v", p.Name, err))
		return nil, true, ctrl.Result{}, nil
	}
	s := r.workflowSpec(obj, p, workflow.ActionConfigure, pipelines)
	s.Inputs = workflow.InputsOf(string(obj.GetUID()), strconv.FormatInt(obj.GetGeneration(), 10), string(p.UID), strconv.FormatInt(p.Generation, 10))
	manual := obj.GetLabels()[workflow.ManualReconciliationLabel] == "true"
	if manual {
		s.Nonce = obj.GetResourceVersion()
	}
	res, err := r.Workflows.Run(ctx, s)
	if err != nil {
		setCondition(st, obj, v1alpha1.ConfigureWorkflowCompletedCondition, metav1.ConditionFalse, v1alpha1.WorkflowFailed, err.Error())
		return nil, true, ctrl.Result{}, err
	}
	if manual {
		if err := clearManualLabel(ctx, r.Client, obj.DeepCopy()); err != nil {
			return nil, true, ctrl.Result{}, err
		}
	}
	r.workflowCondition(obj, st, res)
	if res.Output == nil {
		setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, res.Reason, res.Message)
		return nil, true, ctrl.Result{RequeueAfter: res.RequeueAfter}, nil
	}
	r.mergeStatus(obj, res.Output.Status, extra)
	return res.Output, false, ctrl.Result{RequeueAfter: res.RequeueAfter}, nil
}

// workflowCondition sets ConfigureWorkflowCompleted, with an event when a
// pipeline starts failing.
func (r *RequestReconciler) workflowCondition(obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, res *Result) {
	status := metav1.ConditionFalse
	if res.Complete {
		status = metav1.ConditionTrue
	}
	prev := meta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition)
	if (res.Reason == v1alpha1.WorkflowFailed || res.Reason == v1alpha1.WorkflowOutputInvalid) && (prev == nil || prev.Reason != res.Reason) {
		r.event(obj, "Warning", res.Reason, "%s", res.Message)
	}
	setCondition(st, obj, v1alpha1.ConfigureWorkflowCompletedCondition, status, res.Reason, res.Message)
}

// mergeStatus puts a pipeline's status.yaml fields into extra, except the
// router's own, which it reports in an event rather than drop silently.
func (r *RequestReconciler) mergeStatus(obj *unstructured.Unstructured, fields, extra map[string]any) {
	var refused []string
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if slices.Contains(reservedStatus, k) {
			refused = append(refused, k)
			continue
		}
		extra[k] = fields[k]
	}
	if len(refused) > 0 {
		cur, _, _ := unstructured.NestedMap(obj.Object, "status")
		if _, shown := cur[reservedNotice]; !shown {
			r.event(obj, "Warning", v1alpha1.WorkflowOutputInvalid, "status.yaml may not set %v: the router owns them; they were left out", refused)
		}
		extra[reservedNotice] = fmt.Sprintf("status.yaml may not set %v", refused)
	}
}

// reservedNotice is the status field that says which status.yaml fields
// were refused.
const reservedNotice = "statusFieldsRefused"

// forJob maps a workflow Job to the request it runs for, when that is of
// r's kind.
func (r *RequestReconciler) forJob(_ context.Context, o client.Object) []reconcile.Request {
	kind, ns, name, ok := workflow.ObjectOf(o.GetAnnotations())
	if !ok || kind != r.GVK.GroupKind().String() {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// clearManualLabel removes kratix.io/manual-reconciliation from obj (a
// request or a Promise) once the run it asked for exists, as Kratix does.
func clearManualLabel(ctx context.Context, c client.Client, obj client.Object) error {
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, workflow.ManualReconciliationLabel))
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("removing label %s: %w", workflow.ManualReconciliationLabel, err)
	}
	return nil
}

// runDelete runs the request's resource.delete workflow before its files
// are removed. done is true when there is none or it completed.
func (r *RequestReconciler) runDelete(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus) (bool, ctrl.Result, error) {
	var p v1alpha1.Promise
	if err := r.Get(ctx, types.NamespacedName{Name: r.Promise}, &p); err != nil {
		// Without its Promise there is no workflow to run.
		return true, ctrl.Result{}, client.IgnoreNotFound(err)
	}
	pipelines := p.Pipelines(workflow.TypeResource, workflow.ActionDelete)
	if len(pipelines) == 0 || workflow.Validate("spec.workflows.resource.delete", pipelines) != nil {
		return true, ctrl.Result{}, nil
	}
	s := r.workflowSpec(obj, &p, workflow.ActionDelete, pipelines)
	// One run per request: a delete runs once, whatever changed since.
	s.Inputs = workflow.InputsOf(string(obj.GetUID()), workflow.ActionDelete)
	res, err := r.Workflows.Run(ctx, s)
	if err != nil {
		return false, ctrl.Result{}, err
	}
	if res.Complete {
		return true, ctrl.Result{}, nil
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition); res.Reason == v1alpha1.WorkflowFailed && (c == nil || c.Reason != res.Reason) {
		r.event(obj, "Warning", res.Reason, "delete workflow: %s", res.Message)
	}
	setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, res.Reason, "delete workflow: "+res.Message)
	return false, ctrl.Result{RequeueAfter: res.RequeueAfter}, nil
}

// requestFiles are the files written for a request on dest: what the
// Promise's templates render, and its workflow's output (out, when not
// nil; see OutputFileName), marked as the request's.
func requestFiles(obj *unstructured.Unstructured, p *v1alpha1.Promise, dest *v1alpha1.Destination, out *workflow.Output) (map[string][]byte, error) {
	in := renderInput(obj, p, dest)
	files, err := render.Request(p.Spec.Resources, in)
	if err != nil || out == nil {
		return files, err
	}
	marked, err := render.Outputs(out.Files, in)
	if err != nil {
		return nil, fmt.Errorf("workflow output: %w", err)
	}
	for name, b := range marked {
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("workflow output file %s has the name of a template's file", name)
		}
		files[name] = b
	}
	return files, nil
}

// withSelectors adds a workflow's destination selectors to s.
func withSelectors(s scheduler.Selector, extra []metav1.LabelSelector) scheduler.Selector {
	for i := range extra {
		sel, err := metav1.LabelSelectorAsSelector(&extra[i])
		if err != nil {
			continue // Unpack checked them
		}
		s.Selectors = append(s.Selectors, sel)
		s.Explicit = true
	}
	return s
}
