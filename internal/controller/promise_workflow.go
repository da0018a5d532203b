package controller

import (
	"context"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// validateWorkflows checks every pipeline list of p.
func validateWorkflows(p *v1alpha1.Promise) error {
	w := p.Spec.Workflows
	if w == nil {
		return nil
	}
	lists := map[string]*v1alpha1.WorkflowActions{"resource": w.Resource, "promise": w.Promise}
	for _, typ := range []string{"resource", "promise"} {
		a := lists[typ]
		if a == nil {
			continue
		}
		if err := workflow.Validate("spec.workflows."+typ+".configure", a.Configure); err != nil {
			return err
		}
		if err := workflow.Validate("spec.workflows."+typ+".delete", a.Delete); err != nil {
			return err
		}
	}
	return nil
}

// runPromiseWorkflow runs p's promise workflow for action in the router's
// namespace, reading the Promise itself as its object. It returns nil when
// p has none.
func (r *PromiseReconciler) runPromiseWorkflow(ctx context.Context, p *v1alpha1.Promise, action string) (*Result, error) {
	pipelines := p.Pipelines(workflow.TypePromise, action)
	if len(pipelines) == 0 {
		return nil, nil
	}
	gvk := v1alpha1.GroupVersion.WithKind("Promise")
	s := Spec{
		Type: workflow.TypePromise, Action: action, Promise: p.Name, Pipelines: pipelines,
		Object: workflow.Object{GVK: gvk, Plural: "promises", Name: p.Name, UID: string(p.UID), ClusterScoped: true},
		Owner:  metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: p.Name, UID: p.UID, Controller: ptr(true)},
		// Promise workflows run beside the router, as Kratix runs them in
		// its own namespace.
		Namespace: r.Workflows.Namespace,
		Inputs:    workflow.InputsOf(string(p.UID), action, strconv.FormatInt(p.Generation, 10)),
	}
	if action == workflow.ActionDelete {
		s.Inputs = workflow.InputsOf(string(p.UID), action)
	}
	manual := action == workflow.ActionConfigure && p.Labels[workflow.ManualReconciliationLabel] == "true"
	if manual {
		s.Nonce = p.ResourceVersion
	}
	res, err := r.Workflows.Run(ctx, s)
	if err != nil {
		return nil, err
	}
	if manual {
		if err := clearManualLabel(ctx, r.Client, &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: p.Name}}); err != nil {
			return nil, err
		}
	}
	return res, nil
}
