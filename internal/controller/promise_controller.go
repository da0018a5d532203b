package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/claims"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/probe"
	"github.com/switchyard-dev/switchyard/internal/render"
	"github.com/switchyard-dev/switchyard/internal/scheduler"
	"github.com/switchyard-dev/switchyard/internal/shutdown"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// dependenciesFile is the file holding a Promise's dependencies in each
// destination's dependencies/<promise>/ directory.
const dependenciesFile = "dependencies.yaml"

// PromiseReconciler installs request APIs, starts their controllers and
// sends dependencies to destinations.
type PromiseReconciler struct {
	client.Client
	// APIReader lists requests without a cache, to decide whether a
	// Promise may go.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Stores    *destinations.Stores
	Index     *placement.Index
	Claims    *claims.Index
	Feedback  *feedback.Watchers
	Prober    *probe.Prober
	// Workflows runs the Promises' workflows.
	Workflows *Workflows
	// Manager gets a request controller per kind at run time.
	Manager ctrl.Manager
	// RequestWorkers is each request controller's concurrency.
	RequestWorkers int

	mu      sync.Mutex
	started map[schema.GroupVersionKind]string
	schemas *schemaClock // made on first use (admission.go)
	// The router's rights on MutatingAdmissionPolicies, as last asked
	// (admission.go): when, and what was missing.
	rightsAsked   time.Time
	rightsMissing []string
}

// +kubebuilder:rbac:groups=switchyard.dev,resources=promises,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=switchyard.dev,resources=promises/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=switchyard.dev,resources=promises/finalizers,verbs=update
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler.
func (r *PromiseReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.started = map[schema.GroupVersionKind]string{}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Promise{}).
		Named("promise").
		// A promise workflow's Job started or finished.
		Owns(&batchv1.Job{}).
		Watches(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(forCRD)).
		Watches(&v1alpha1.Destination{}, handler.EnqueueRequestsFromMapFunc(r.allPromises),
			builder.WithPredicates(DestinationSchedulingChanged)).
		// A destination's files changed under the router: rewrite what
		// the dependencies lack.
		WatchesRawSource(source.Channel(r.Index.Subscribe(), handler.EnqueueRequestsFromMapFunc(r.allPromises))).
		Complete(shutdown.Quiet(r))
}

func forCRD(_ context.Context, o client.Object) []reconcile.Request {
	if name := o.GetLabels()[v1alpha1.PromiseLabel]; name != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	return nil
}

func (r *PromiseReconciler) allPromises(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.PromiseList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}}
	}
	return out
}

// Reconcile handles one Promise.
func (r *PromiseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p v1alpha1.Promise
	if err := r.Get(ctx, req.NamespacedName, &p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := p.DeepCopy()
	cond, result, err := r.reconcile(ctx, &p)
	if cond.Type != "" {
		cond.ObservedGeneration = p.Generation
		meta.SetStatusCondition(&p.Status.Conditions, cond)
		if cond.Status == metav1.ConditionTrue {
			p.Status.ObservedGeneration = p.Generation
		}
	}
	if !equality.Semantic.DeepEqual(orig.Status, p.Status) {
		// NotFound: finalize let the Promise go.
		if uerr := r.Status().Patch(ctx, &p, client.MergeFrom(orig)); uerr != nil && !apierrors.IsNotFound(uerr) {
			err = errors.Join(err, uerr)
		}
	}
	if apierrors.IsConflict(err) {
		// Changed under this reconcile (the API server writes a new CRD's
		// status while the router updates it): decide again, quietly.
		return ctrl.Result{RequeueAfter: ownstatus.ConflictRetry}, nil
	}
	return result, err
}

func ready(reason, msg string) metav1.Condition {
	return metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: reason, Message: msg}
}

func notReady(reason, msg string) metav1.Condition {
	return metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
}

func (r *PromiseReconciler) reconcile(ctx context.Context, p *v1alpha1.Promise) (metav1.Condition, ctrl.Result, error) {
	crd, gvk, err := RequestCRD(p)
	if !p.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, p, crd, gvk, err)
	}
	if err != nil {
		return notReady(v1alpha1.InvalidAPI, err.Error()), ctrl.Result{}, nil
	}
	// Checked before anything is installed or written: the request
	// reconcilers leave requests alone while this fails.
	if _, err := Rules(p); err != nil {
		r.Recorder.Eventf(p, nil, "Warning", v1alpha1.InvalidStatusExpression, "Validate", "%v", err)
		return notReady(v1alpha1.InvalidStatusExpression, err.Error()), ctrl.Result{}, nil
	}
	if err := validateWorkflows(p); err != nil {
		r.Recorder.Eventf(p, nil, "Warning", v1alpha1.InvalidWorkflow, "Validate", "%v", err)
		return notReady(v1alpha1.InvalidWorkflow, err.Error()), ctrl.Result{}, nil
	}
	if controllerutil.AddFinalizer(p, v1alpha1.Finalizer) {
		if err := r.Update(ctx, p); err != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
	}
	p.Status.APIVersion, p.Status.Kind = gvk.GroupVersion().String(), gvk.Kind
	established, cond, err := r.installCRD(ctx, p, crd)
	if err != nil || cond.Type != "" {
		return cond, ctrl.Result{}, err
	}
	if !established {
		return notReady(v1alpha1.APINotEstablished, fmt.Sprintf("waiting for CRD %s to be established", crd.Name)), ctrl.Result{RequeueAfter: time.Second}, nil
	}
	policyWait := r.ensureFinalizerPolicy(ctx, p, crd)
	if !r.serving(gvk) {
		missing, err := missingPermissions(ctx, r.Client, gvk.Group, crd.Spec.Names.Plural)
		if err != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
		if len(missing) > 0 {
			// RBAC changes make no event here: look again shortly.
			return notReady(v1alpha1.MissingPermissions, missingMessage(p, gvk.Group, missing)), ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
	}
	if err := r.startRequests(p, gvk, crd.Spec.Names.Plural); err != nil {
		return notReady(v1alpha1.APIConflict, err.Error()), ctrl.Result{}, nil
	}
	// The promise.configure workflow's output joins the dependencies.
	wf, err := r.runPromiseWorkflow(ctx, p, workflow.ActionConfigure)
	if err != nil {
		return notReady(v1alpha1.WorkflowFailed, err.Error()), ctrl.Result{}, err
	}
	var out *workflow.Output
	if wf != nil {
		if wf.Output == nil {
			return notReady(wf.Reason, "promise.configure workflow: "+wf.Message), ctrl.Result{RequeueAfter: wf.RequeueAfter}, nil
		}
		out = wf.Output
	}
	targets, pending, err := r.writeDependencies(ctx, p, out)
	if err != nil {
		return notReady(v1alpha1.WriteFailed, err.Error()), ctrl.Result{}, err
	}
	p.Status.Destinations = targets
	msg := fmt.Sprintf("serving %s; dependencies on %d destination(s)", gvk.Kind, len(targets))
	if len(pending) > 0 {
		msg += fmt.Sprintf("; pending until their store is ready: %s", strings.Join(pending, ", "))
	}
	return ready(v1alpha1.Reconciled, msg), ctrl.Result{RequeueAfter: policyWait}, nil
}

// installCRD creates or updates the request CRD. A CRD of the same name
// that another Promise (or someone else) owns is a conflict.
func (r *PromiseReconciler) installCRD(ctx context.Context, p *v1alpha1.Promise, want *apiextensionsv1.CustomResourceDefinition) (bool, metav1.Condition, error) {
	var have apiextensionsv1.CustomResourceDefinition
	err := r.Get(ctx, types.NamespacedName{Name: want.Name}, &have)
	if apierrors.IsNotFound(err) {
		// The cache holds only the CRDs Promises installed: ask the API
		// server whether someone else's holds the name.
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: want.Name}, &have)
	}
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Create(ctx, want); err != nil {
			return false, notReady(v1alpha1.InvalidAPI, fmt.Sprintf("creating CRD %s: %v", want.Name, err)), nil
		}
		r.Recorder.Eventf(p, nil, "Normal", "APIInstalled", "Install", "Installed CRD %s", want.Name)
		return false, metav1.Condition{}, nil
	case err != nil:
		return false, metav1.Condition{}, err
	case have.Labels[v1alpha1.PromiseLabel] != p.Name:
		return false, notReady(v1alpha1.APIConflict, fmt.Sprintf("CRD %s exists and does not belong to this Promise", want.Name)), nil
	}
	if !equality.Semantic.DeepEqual(have.Spec, want.Spec) || !equality.Semantic.DeepEqual(have.Labels, want.Labels) {
		have.Spec, have.Labels = want.Spec, want.Labels
		if err := r.Update(ctx, &have); err != nil {
			if apierrors.IsInvalid(err) {
				return false, notReady(v1alpha1.InvalidAPI, fmt.Sprintf("updating CRD %s: %v", want.Name, err)), nil
			}
			return false, metav1.Condition{}, err
		}
	}
	for _, c := range have.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true, metav1.Condition{}, nil
		}
	}
	return false, metav1.Condition{}, nil
}

// serving reports whether the request controller for gvk runs.
func (r *PromiseReconciler) serving(gvk schema.GroupVersionKind) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.started[gvk]
	return ok
}

// startRequests starts the request controller for gvk once per process.
// Controllers cannot be stopped, so a kind stays bound to its first
// Promise until the router restarts.
func (r *PromiseReconciler) startRequests(p *v1alpha1.Promise, gvk schema.GroupVersionKind, plural string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if owner, ok := r.started[gvk]; ok {
		if owner != p.Name {
			return fmt.Errorf("kind %s is served by Promise %s", gvk.Kind, owner)
		}
		return nil
	}
	rr := &RequestReconciler{Client: r.Client, Recorder: r.Recorder, Stores: r.Stores, Index: r.Index, Claims: r.Claims,
		Feedback: r.Feedback, Prober: r.Prober, Workflows: r.Workflows, GVK: gvk, Plural: plural, Promise: p.Name}
	if err := rr.SetupWithManager(r.Manager, r.RequestWorkers); err != nil {
		return err
	}
	r.started[gvk] = p.Name
	return nil
}

// writeDependencies puts the Promise's dependencies into every matching
// destination and removes them from the others. It returns the matching
// destinations, and those skipped because their store is not ready (they
// get the dependencies when it is). A failed list returns before anything
// is removed.
func (r *PromiseReconciler) writeDependencies(ctx context.Context, p *v1alpha1.Promise, out *workflow.Output) (targets, pending []string, err error) {
	var dests v1alpha1.DestinationList
	if err := r.List(ctx, &dests); err != nil {
		return nil, nil, err
	}
	sel, err := promiseSelector(p)
	if err != nil {
		return nil, nil, err
	}
	var content []byte
	if len(p.Spec.Dependencies) > 0 {
		if content, err = render.Manifests(p.Spec.Dependencies, p.Name); err != nil {
			return nil, nil, err
		}
	}
	files := map[string][]byte{}
	if content != nil {
		files[dependenciesFile] = content
	}
	if out != nil {
		for name, b := range out.Files {
			files[name] = b
		}
	}
	targets = scheduler.Targets(sel, schedulerView(dests.Items))
	want := map[string]bool{}
	for _, t := range targets {
		want[t] = len(files) > 0
	}
	pending, err = r.writeEach(ctx, p, dests.Items, true, func(d *v1alpha1.Destination) map[string][]byte {
		if want[d.Name] {
			return files
		}
		return nil
	})
	return targets, pending, err
}

// writeEach writes, per store, the dependencies directory of p in every
// destination not being deleted, with the files files(d) returns (none
// removes the directory). With skipUnready, destinations whose store is not
// ready are skipped and returned instead of failing the write.
func (r *PromiseReconciler) writeEach(ctx context.Context, p *v1alpha1.Promise, dests []v1alpha1.Destination, skipUnready bool, files func(*v1alpha1.Destination) map[string][]byte) ([]string, error) {
	byStore := map[v1alpha1.StateStoreReference][]statestore.Change{}
	for i := range dests {
		d := &dests[i]
		if !d.DeletionTimestamp.IsZero() {
			continue
		}
		dir, err := statestore.DependencyDir(d.EffectivePath(), p.Name)
		if err != nil {
			return nil, err
		}
		ref := d.Spec.StateStoreRef
		ref.Kind = ref.EffectiveKind()
		byStore[ref] = append(byStore[ref], statestore.Change{Dir: dir, Files: files(d), Replace: true})
	}
	var errs []error
	var skipped []string
	for store, changes := range byStore {
		w, err := r.Stores.Writer(store)
		if err != nil && skipUnready {
			for i := range dests {
				if dests[i].Spec.StateStoreRef.String() == store.String() && dests[i].DeletionTimestamp.IsZero() {
					skipped = append(skipped, dests[i].Name)
				}
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res, err := w.Write(ctx, fmt.Sprintf("dependencies of Promise %s", p.Name), changes...)
		if err != nil {
			errs = append(errs, fmt.Errorf("writing dependencies to %s: %w", store.Name, err))
			continue
		}
		if res.Changed {
			for i := range dests {
				if dests[i].Spec.StateStoreRef.String() == store.String() && dests[i].DeletionTimestamp.IsZero() {
					r.Index.Committed(dests[i].Name, res.Commit)
				}
			}
		}
	}
	sort.Strings(skipped)
	return skipped, errors.Join(errs...)
}

// finalize lets a Promise go only when no request of its kind is left:
// then it removes its dependencies and its CRD.
func (r *PromiseReconciler) finalize(ctx context.Context, p *v1alpha1.Promise, crd *apiextensionsv1.CustomResourceDefinition, gvk schema.GroupVersionKind, crdErr error) (metav1.Condition, ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(p, v1alpha1.Finalizer) {
		return metav1.Condition{}, ctrl.Result{}, nil
	}
	if crdErr == nil {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		err := r.APIReader.List(ctx, list, client.Limit(1))
		switch {
		case err == nil && len(list.Items) > 0:
			return notReady(v1alpha1.RequestsExist, fmt.Sprintf("deletion waits until no %s is left; delete them first (kubectl delete %s --all -A)", gvk.Kind, crd.Spec.Names.Plural)),
				ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		case apierrors.IsForbidden(err):
			// Requests may exist that the router cannot see: keep waiting.
			return notReady(v1alpha1.MissingPermissions, fmt.Sprintf("deletion waits until the router can list %s to see that none is left: %v", crd.Spec.Names.Plural, err)),
				ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		case err != nil && !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err):
			return metav1.Condition{}, ctrl.Result{}, err
		}
	}
	if !v1alpha1.SkipCleanup(p.Annotations) {
		// The promise.delete workflow runs while the dependencies are
		// still there.
		wf, err := r.runPromiseWorkflow(ctx, p, workflow.ActionDelete)
		if err != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
		if wf != nil && !wf.Complete {
			return notReady(wf.Reason, "promise.delete workflow: "+wf.Message), ctrl.Result{RequeueAfter: wf.RequeueAfter}, nil
		}
		var dests v1alpha1.DestinationList
		if err := r.List(ctx, &dests); err != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
		if _, err := r.writeEach(ctx, p, dests.Items, false, func(*v1alpha1.Destination) map[string][]byte { return nil }); err != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
	}
	if err := r.deleteFinalizerPolicy(ctx, p); err != nil {
		return metav1.Condition{}, ctrl.Result{}, err
	}
	if crdErr == nil {
		var have apiextensionsv1.CustomResourceDefinition
		err := r.Get(ctx, types.NamespacedName{Name: crd.Name}, &have)
		if err == nil && have.Labels[v1alpha1.PromiseLabel] == p.Name {
			err = r.Delete(ctx, &have)
		}
		if client.IgnoreNotFound(err) != nil {
			return metav1.Condition{}, ctrl.Result{}, err
		}
	}
	if err := r.Workflows.Remove(ctx, string(p.UID)); err != nil {
		return metav1.Condition{}, ctrl.Result{}, err
	}
	controllerutil.RemoveFinalizer(p, v1alpha1.Finalizer)
	return metav1.Condition{}, ctrl.Result{}, r.Update(ctx, p)
}
