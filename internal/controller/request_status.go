package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/readiness"
	"github.com/switchyard-dev/switchyard/internal/render"
)

// compiledRules are one Promise generation's compiled status rules. The
// UID tells a Promise from one deleted and created again under its name,
// which starts at generation 1 again.
type compiledRules struct {
	uid        types.UID
	generation int64
	rules      *readiness.Rules
	err        error
}

// Rules compiles p's status rules against its resource templates and
// configure pipelines.
func Rules(p *v1alpha1.Promise) (*readiness.Rules, error) {
	names := make([]string, 0, len(p.Spec.Resources))
	for _, t := range p.Spec.Resources {
		names = append(names, t.Name)
	}
	// A configure pipeline's objects go by its name.
	for _, pl := range configurePipelines(p) {
		if !slices.Contains(names, pl.Metadata.Name) {
			names = append(names, pl.Metadata.Name)
		}
	}
	return readiness.Compile(p.Spec.Status, names)
}

// rules returns the compiled rules of p, compiling once per Promise and
// generation.
func (r *RequestReconciler) rules(p *v1alpha1.Promise) (*readiness.Rules, error) {
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	if r.compiled == nil || r.compiled.uid != p.UID || r.compiled.generation != p.Generation {
		rules, err := Rules(p)
		r.compiled = &compiledRules{uid: p.UID, generation: p.Generation, rules: rules, err: err}
	}
	return r.compiled.rules, r.compiled.err
}

// renderedObjects lists the objects in a request's files, in the order of
// the Promise's templates, then those of its workflow's output files, by
// name; an output object's template is its pipeline. An object without a
// namespace is left so; the watch knows which kinds are namespaced.
func renderedObjects(p *v1alpha1.Promise, files map[string][]byte) []readiness.Object {
	var out []readiness.Object
	add := func(template, file string) {
		objs, _ := render.Objects(files[file]) // the router rendered or checked them
		for _, u := range objs {
			out = append(out, readiness.Object{Template: template, GVK: u.GroupVersionKind(), Namespace: u.GetNamespace(), Name: u.GetName()})
		}
	}
	templates := map[string]bool{}
	for _, t := range p.Spec.Resources {
		templates[t.Name+".yaml"] = true
		add(t.Name, t.Name+".yaml")
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !templates[name] && render.IsManifest(name) {
			pipeline, _, _ := strings.Cut(name, ".")
			add(pipeline, name)
		}
	}
	return out
}

// objectsReady computes the outputs and, unless ready, sets the Ready
// condition from the objects the request rendered, read through the
// destination's watch. It reports whether they are ready and returns the
// outputs, which it sets in st too unless hold: a Promise with a
// verification step publishes outputs only once the step confirmed that
// the resource behind the objects is the request's (an ACK Table reports
// the ARN of a table ACK adopted as readily as of one it created).
func (r *RequestReconciler) objectsReady(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, promise *v1alpha1.Promise, dest string, files map[string][]byte, hold bool) (bool, string, map[string]string, ctrl.Result) {
	rules, _ := r.rules(promise) // reconcile stopped before here on an error
	objs := renderedObjects(promise, files)
	if why, retry := r.Feedback.ReadObjects(ctx, dest, string(obj.GetUID()), objs); why != "" {
		setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.AwaitingWatch, why)
		return false, "", nil, ctrl.Result{RequeueAfter: retry}
	}
	res := rules.Evaluate(ctx, objs)
	if !hold || st.Verified[verifiedTableARN] != "" {
		st.Outputs = res.Outputs
	} else {
		st.Outputs = nil
	}
	if !res.Ready {
		// A change of any of the objects wakes the request (Track).
		setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, res.Reason, res.Message)
		return false, "", res.Outputs, ctrl.Result{}
	}
	return true, res.Message, res.Outputs, ctrl.Result{}
}

func readyMessage(objects, verified string) string {
	if objects == "" {
		return verified
	}
	return fmt.Sprintf("%s; %s", verified, objects)
}
