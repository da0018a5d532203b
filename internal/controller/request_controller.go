package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/claims"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/probe"
	"github.com/switchyard-dev/switchyard/internal/render"
	"github.com/switchyard-dev/switchyard/internal/scheduler"
	"github.com/switchyard-dev/switchyard/internal/shutdown"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// RequestReconciler places, renders and writes the requests of one
// Promise's kind.
type RequestReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Stores   *destinations.Stores
	Index    *placement.Index
	// Claims is shared by every request reconciler: claims compete
	// across kinds.
	Claims   *claims.Index
	Feedback *feedback.Watchers
	Prober   *probe.Prober
	// Workflows runs the Promise's workflows.
	Workflows *Workflows
	// GVK and Plural are the request kind; Promise is the Promise that
	// serves it.
	GVK     schema.GroupVersionKind
	Plural  string
	Promise string

	rulesMu  sync.Mutex
	compiled *compiledRules
	// written holds the router's own status patches the cache has not
	// shown yet.
	written ownstatus.Pending
}

// Rights on the request kinds themselves are granted per Promise (see
// RequestRBAC): the router's own role names no request kind.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager starts a controller for r.GVK on a running manager.
func (r *RequestReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if err := r.watchIndexes(mgr.GetCache()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("request-"+r.GVK.GroupKind().String()).
		// The router's own status patches do not wake the request again: a
		// reconcile decides from the spec and the state store, and reads
		// status only as its memory of what it wrote.
		For(r.newObject(), builder.WithPredicates(ownstatus.Changed)).
		// A workflow Job of the request started or finished.
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(r.forJob)).
		// A destination event wakes only the requests it concerns, and only
		// when something scheduling reads changed.
		Watches(&v1alpha1.Destination{}, handler.EnqueueRequestsFromMapFunc(r.forDestinationChange),
			builder.WithPredicates(DestinationSchedulingChanged)).
		// A new Promise generation re-renders every request of the kind.
		Watches(&v1alpha1.Promise{}, handler.EnqueueRequestsFromMapFunc(r.forPromise),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A namespace's labels decide which destinations take its
		// requests (spec.namespaceSelector): a relabel wakes them.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.forNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// Flux on a destination applied something, or its files in the
		// store changed under the router: wake its requests.
		WatchesRawSource(source.Channel(r.Index.Subscribe(), handler.EnqueueRequestsFromMapFunc(r.forDestination))).
		// A claim this kind's requests wait for was released.
		WatchesRawSource(source.Channel(r.Claims.Subscribe(r.GVK.GroupKind()), &handler.EnqueueRequestForObject{})).
		// An object a request rendered changed on its destination.
		WatchesRawSource(source.Channel(r.Feedback.ObjectEvents(r.GVK.GroupKind()), &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: workers,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 30*time.Second),
		}).
		Complete(shutdown.Quiet(r))
}

// waitingRecheck is how often a request with no destination looks again
// without being woken.
const waitingRecheck = time.Minute

// DestinationSchedulingChanged passes destination events that can change
// placement: creation, deletion, spec or label changes, the start of
// deletion and a change of the Ready condition. Status refreshes (load,
// last commit) do not pass, so they never wake every request placed there.
var DestinationSchedulingChanged = predicate.Or[client.Object](
	predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, ownstatus.DeletionStarted, fluxConfirmed,
	predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*v1alpha1.Destination)
			n, ok2 := e.ObjectNew.(*v1alpha1.Destination)
			return ok1 && ok2 && meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ReadyCondition) !=
				meta.IsStatusConditionTrue(n.Status.Conditions, v1alpha1.ReadyCondition)
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	})

// fluxConfirmed passes a change of the revision a person confirmed Flux
// applied (FluxAppliedAnnotation), which moves wait for.
var fluxConfirmed = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetAnnotations()[v1alpha1.FluxAppliedAnnotation] != e.ObjectNew.GetAnnotations()[v1alpha1.FluxAppliedAnnotation]
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func (r *RequestReconciler) newObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.GVK)
	return u
}

func (r *RequestReconciler) key(nn types.NamespacedName) placement.Key {
	return placement.Key{GroupKind: r.GVK.GroupKind(), NamespacedName: nn}
}

func (r *RequestReconciler) forDestination(_ context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, nn := range r.Index.Concerned(r.GVK.GroupKind(), o.GetName()) {
		out = append(out, reconcile.Request{NamespacedName: nn})
	}
	return out
}

// forDestinationChange is forDestination for a change that can change
// placement. It counts the change before it wakes anyone, so that the
// requests it wakes rebuild the scheduler's view of the destinations
// (placement.Index.Decide) from a list holding it.
func (r *RequestReconciler) forDestinationChange(ctx context.Context, o client.Object) []reconcile.Request {
	r.Index.DestinationsChanged()
	return r.forDestination(ctx, o)
}

func (r *RequestReconciler) forNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	return r.requests(ctx, nil, client.InNamespace(o.GetName()))
}

func (r *RequestReconciler) forPromise(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetName() != r.Promise {
		return nil
	}
	// Its claims may have changed: index every request with the new ones
	// before any of them decides.
	p, _ := o.(*v1alpha1.Promise)
	return r.requests(ctx, func(u *unstructured.Unstructured) {
		if p != nil {
			r.observeClaimsOf(u, p)
		}
	})
}

// requests lists the requests of r's kind (from the cache) as work items,
// calling each, when not nil, with every one.
func (r *RequestReconciler) requests(ctx context.Context, each func(*unstructured.Unstructured), opts ...client.ListOption) []reconcile.Request {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(r.GVK.GroupVersion().WithKind(r.GVK.Kind + "List"))
	if err := r.List(ctx, list, opts...); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for k := range list.Items {
		if each != nil {
			each(&list.Items[k])
		}
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[k])})
	}
	return out
}

// Reconcile handles one request.
func (r *RequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.newObject()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Feedback.UntrackKey(r.GVK.GroupKind(), req.NamespacedName)
			r.written.Forget(req.NamespacedName)
			r.Index.Forget(r.key(req.NamespacedName))
			r.Claims.Release(claims.ID{GroupKind: r.GVK.GroupKind(), NamespacedName: req.NamespacedName})
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before, err := readStatus(obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Before the list: the scheduler's view may be rebuilt from it only if
	// it holds every destination change counted (placement.Index.Decide).
	seen := r.Index.DestinationsSeen()
	// Read-only use: skip copying every destination on every reconcile.
	var dests v1alpha1.DestinationList
	if err := r.List(ctx, &dests, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return r.finalize(ctx, obj, before, dests.Items)
	}
	r.Feedback.Track(string(obj.GetUID()), r.GVK.GroupKind(), req.NamespacedName)
	if err := r.setFinalizer(ctx, obj, true); err != nil {
		return ctrl.Result{}, err
	}
	st := before.DeepCopy()
	// extra are status fields a workflow's pipelines set (status.yaml).
	extra := map[string]any{}
	result, err := r.reconcile(ctx, obj, st, extra, dests.Items, seen)
	st.ObservedGeneration = obj.GetGeneration()
	if perr := r.patchStatus(ctx, obj, before, st, extra); perr != nil {
		if apierrors.IsConflict(perr) && err == nil {
			// Decided from a stale copy: decide again from a fresh one.
			return ctrl.Result{RequeueAfter: ownstatus.ConflictRetry}, nil
		}
		return ctrl.Result{}, errors.Join(err, perr)
	}
	return result, err
}

// setFinalizer adds (want) or removes the router's finalizer, when that
// changes something, with a patch of the finalizers alone, guarded by
// resourceVersion as an update is. Not an update: the cached request lacks
// what the cache dropped (kubectl's last-applied-configuration), which an
// update would remove from the object.
func (r *RequestReconciler) setFinalizer(ctx context.Context, obj *unstructured.Unstructured, want bool) error {
	if controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) == want {
		return nil
	}
	orig := obj.DeepCopy()
	if want {
		controllerutil.AddFinalizer(obj, v1alpha1.Finalizer)
	} else {
		controllerutil.RemoveFinalizer(obj, v1alpha1.Finalizer)
	}
	if err := r.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("setting finalizer %s: %w", v1alpha1.Finalizer, err)
	}
	return nil
}

// reconcile schedules, renders and writes, recording each step in st.
func (r *RequestReconciler) reconcile(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, extra map[string]any, dests []v1alpha1.Destination, seen uint64) (ctrl.Result, error) {
	var promise v1alpha1.Promise
	if err := r.Get(ctx, types.NamespacedName{Name: r.Promise}, &promise); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		setAll(st, obj, metav1.ConditionFalse, v1alpha1.PromiseNotReady, fmt.Sprintf("Promise %s not found", r.Promise))
		return ctrl.Result{}, nil
	}
	if _, err := r.rules(&promise); err != nil {
		// The Promise is Ready=False (InvalidStatusExpression); its
		// requests stay as they are until it is fixed.
		return ctrl.Result{}, nil
	}
	// A workflow runs before placement: its output may add selectors.
	out, waiting, res, err := r.configure(ctx, obj, st, &promise, extra)
	if waiting || err != nil {
		return res, err
	}
	sel, err := requestSelector(&promise, obj)
	if err != nil {
		setAll(st, obj, metav1.ConditionFalse, v1alpha1.NoMatchingDestination, err.Error())
		return ctrl.Result{}, nil
	}
	if out != nil {
		sel = withSelectors(sel, out.Selectors)
	}
	current, err := r.current(obj, st, dests)
	if err != nil {
		return ctrl.Result{}, err
	}
	// A request leaves a deleted destination only safely (move.go).
	current, handled, res, err := r.leaving(ctx, obj, st, &promise, current, dests)
	if handled || err != nil {
		return res, err
	}
	nsLabels, err := r.namespaceLabels(ctx, obj.GetNamespace(), dests)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Choosing a destination reads loads; keeping one does not.
	if d := find(dests, current); d == nil || !d.DeletionTimestamp.IsZero() {
		if wait, err := r.waitForPlacements(ctx, obj, st); wait || err != nil {
			return ctrl.Result{RequeueAfter: claimsLoading}, err
		}
	}
	key := r.key(client.ObjectKeyFromObject(obj))
	// The view of the destinations is rebuilt only when one changed; loads
	// come from the placement index, so a decision matches no selector
	// against every destination.
	view := func() []scheduler.Destination { return schedulerView(dests) }
	decision := r.Index.Decide(key, seen, view, func(x *scheduler.Index) scheduler.Decision {
		start := time.Now()
		defer func() { metrics.ScheduleSeconds.Observe(time.Since(start).Seconds()) }()
		return x.Schedule(scheduler.Request{Key: schedulerKey(r.GVK.Kind, key.NamespacedName), Selector: sel, Current: current,
			Namespace: obj.GetNamespace(), NamespaceLabels: nsLabels})
	})
	if decision.Moved {
		how := "after its copy there was pruned"
		if obj.GetAnnotations()[v1alpha1.ReleasedFromAnnotation] == current {
			how = "released by " + v1alpha1.ReleasedFromAnnotation
		}
		r.event(obj, "Warning", v1alpha1.Rescheduled, "Left destination %s (deleted) %s: %s", current, how, decision.Message)
	}
	if decision.Destination == "" {
		st.Destination, st.Commit, st.PlacementReason = "", "", ""
		setAll(st, obj, metav1.ConditionFalse, v1alpha1.NoMatchingDestination, decision.Message)
		// Destination events wake waiting requests at once; this catches
		// room freed on a full destination, which makes no such event.
		return ctrl.Result{RequeueAfter: waitingRecheck}, nil
	}
	// Routine placements make no event (the status says where, and an
	// event per request would double the API writes of a burst); moves,
	// misplacements and failures do.
	if st.Destination != decision.Destination {
		st.Destination, st.Commit, st.PlacementReason = decision.Destination, "", decision.Message
	}
	scheduled := metav1.ConditionTrue
	msg := st.PlacementReason
	if decision.Reason == v1alpha1.Misplaced {
		msg = decision.Message
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ScheduledCondition); c == nil || c.Reason != v1alpha1.Misplaced {
			r.event(obj, "Warning", v1alpha1.Misplaced, "%s", msg)
		}
	}
	setCondition(st, obj, v1alpha1.ScheduledCondition, scheduled, decision.Reason, msg)
	if res, done, err := r.claim(ctx, obj, st, &promise, decision.Destination, dests); done {
		return res, err
	}
	wres, err := r.write(ctx, obj, st, &promise, find(dests, decision.Destination), out)
	return sooner(wres, res), err
}

// sooner is a with the earlier of the two requeues.
func sooner(a, b ctrl.Result) ctrl.Result {
	if b.RequeueAfter > 0 && (a.RequeueAfter == 0 || b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

// write renders the request for dest, adds what its workflow output (out,
// when not nil) and commits it.
func (r *RequestReconciler) write(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, promise *v1alpha1.Promise, dest *v1alpha1.Destination, out *workflow.Output) (ctrl.Result, error) {
	files, err := requestFiles(obj, promise, dest, out)
	if err != nil {
		setWritten(st, obj, metav1.ConditionFalse, v1alpha1.RenderFailed, fmt.Sprintf("rendering Promise %s: %v", promise.Name, err))
		return ctrl.Result{}, nil
	}
	dir, err := statestore.RequestDir(dest.EffectivePath(), obj.GetNamespace(), promise.Name, obj.GetName())
	if err != nil {
		setWritten(st, obj, metav1.ConditionFalse, v1alpha1.RenderFailed, err.Error())
		return ctrl.Result{}, nil
	}
	w, err := r.Stores.Writer(dest.Spec.StateStoreRef)
	if err != nil {
		setWritten(st, obj, metav1.ConditionFalse, v1alpha1.StateStoreNotReady, err.Error())
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	note := fmt.Sprintf("write %s/%s %s (%s) on %s", obj.GetNamespace(), obj.GetName(), r.GVK.Kind, promise.Name, dest.Name)
	res, err := w.Write(ctx, note, statestore.Change{Dir: dir, Files: files, Replace: true})
	if err != nil {
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.WrittenCondition); c == nil || c.Reason != v1alpha1.WriteFailed {
			r.event(obj, "Warning", v1alpha1.WriteFailed, "Writing to %s: %v", dest.Spec.StateStoreRef.Name, err)
		}
		setWritten(st, obj, metav1.ConditionFalse, v1alpha1.WriteFailed, err.Error())
		return ctrl.Result{}, err
	}
	if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.WrittenCondition) && st.Commit == "" {
		metrics.WrittenSeconds.Observe(time.Since(obj.GetCreationTimestamp().Time).Seconds())
	}
	// An unchanged write keeps the commit that carried the content first.
	if res.Changed || st.Commit == "" {
		st.Commit = res.Commit
	}
	if res.Changed {
		r.Index.Committed(dest.Name, res.Commit)
	}
	setCondition(st, obj, v1alpha1.WrittenCondition, metav1.ConditionTrue, v1alpha1.Committed,
		fmt.Sprintf("committed to %s at %s", dest.Spec.StateStoreRef.Name, statestore.Short(st.Commit)))
	return r.observe(ctx, obj, st, promise, dest, w, files), nil
}

// afterFlux is how often a request waiting for Flux looks again without
// being woken by a change on its destination.
const afterFlux = 30 * time.Second

// observe sets Applied from what Flux on the destination reports, then
// the outputs and Ready from the objects the request rendered, read on the
// destination (objectsReady), and, when the Promise has a table probe and
// the destination an AWS endpoint, from the table (probeTable). Without a
// view of the destination Ready means written (or the table is ACTIVE,
// which is not enough: see probeTable).
func (r *RequestReconciler) observe(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, promise *v1alpha1.Promise, dest *v1alpha1.Destination, w statestore.Writer, files map[string][]byte) ctrl.Result {
	fs := r.Feedback.State(dest.Name)
	status, reason, msg := fs.Applied(st.Commit, w.Contains)
	setCondition(st, obj, v1alpha1.AppliedCondition, status, reason, msg)
	target, err := r.tableTarget(obj, promise, dest)
	switch {
	case err != nil:
		setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ProbeFailed, err.Error())
		return ctrl.Result{}
	case fs.Configured && status != metav1.ConditionTrue:
		// Nothing to read before Flux applied.
		setCondition(st, obj, v1alpha1.ReadyCondition, status, reason, msg)
		return ctrl.Result{RequeueAfter: afterFlux}
	case !fs.Configured && target != nil:
		return r.probeTable(ctx, obj, st, promise, dest, *target, false, files, "")
	case !fs.Configured:
		st.Outputs = nil
		setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed,
			fmt.Sprintf("committed at %s; the router cannot see the destination (no spec.kubeConfigSecretRef), so Ready means written", statestore.Short(st.Commit)))
		return ctrl.Result{}
	}
	ok, objMsg, outputs, res := r.objectsReady(ctx, obj, st, promise, dest.Name, files, target != nil)
	switch {
	case !ok:
		return res
	case target != nil:
		res := r.probeTable(ctx, obj, st, promise, dest, *target, true, files, objMsg)
		if st.Verified[verifiedTableARN] != "" {
			st.Outputs = outputs
		}
		return res
	}
	setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.ResourcesReady, objMsg)
	return ctrl.Result{}
}

// probeTable sets Ready from the table probe, a verification step on top
// of the objects' readiness. A table of the name is not enough: ACK adopts
// an existing table for a new Table object, so the table must be the one
// ACK reports for the Table object the router rendered for this request,
// read on the destination (probe.Own). Without a view of the destination
// that cannot be checked, and the request is not Ready. Only a table found
// to be the request's is recorded in status.verified; outputs read from a
// Table object that holds someone else's table are withdrawn.
func (r *RequestReconciler) probeTable(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, promise *v1alpha1.Promise, dest *v1alpha1.Destination, target probe.Target, visible bool, files map[string][]byte, objMsg string) ctrl.Result {
	if visible {
		ns, name, ok := tableObject(files, target.Table)
		if !ok {
			setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ProbeFailed, fmt.Sprintf(
				"Promise %s renders no %s with spec.tableName %s for this request: the router cannot check that the table is the request's", promise.Name, probe.TableGVK.Kind, target.Table))
			return ctrl.Result{}
		}
		target.Owner = probe.Owner{Destination: dest.Name, Namespace: ns, Name: name, UID: string(obj.GetUID()), Recorded: st.Verified[verifiedTableARN]}
	}
	res := r.Prober.Table(ctx, target)
	switch {
	case res.Owned:
		st.Verified = map[string]string{verifiedTableARN: res.ARN}
	case res.Reason == v1alpha1.TableNotOwned:
		st.Verified, st.Outputs = nil, nil
	case res.Reason == v1alpha1.TableNotFound:
		st.Verified = nil
	}
	if !visible && res.Active() {
		setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.NoFeedback, fmt.Sprintf(
			"table %s is ACTIVE, but the router cannot see destination %s (no spec.kubeConfigSecretRef) to check that this request's Table object made it", target.Table, dest.Name))
		return ctrl.Result{RequeueAfter: res.RetryAfter}
	}
	ready := metav1.ConditionFalse
	msg := res.Message
	if res.Active() {
		ready, msg = metav1.ConditionTrue, readyMessage(objMsg, res.Message)
	}
	setCondition(st, obj, v1alpha1.ReadyCondition, ready, res.Reason, msg)
	return ctrl.Result{RequeueAfter: res.RetryAfter}
}

// verifiedTableARN is the key of status.verified under which the table
// probe records the ARN of the table it found to be the request's.
const verifiedTableARN = "tableArn"

// tableObject finds, in a request's rendered files, the ACK Table for
// table and returns its namespace and name.
func tableObject(files map[string][]byte, table string) (string, string, bool) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		objs, _ := render.Objects(files[n]) // the router rendered them
		for _, u := range objs {
			if u.GroupVersionKind() != probe.TableGVK {
				continue
			}
			if name, _, _ := unstructured.NestedString(u.Object, "spec", "tableName"); name == table {
				ns := u.GetNamespace()
				if ns == "" {
					ns = metav1.NamespaceDefault
				}
				return ns, u.GetName(), true
			}
		}
	}
	return "", "", false
}

// tableTarget is the request's table probe, or nil when the Promise has none
// or the destination has no AWS endpoint.
func (r *RequestReconciler) tableTarget(obj *unstructured.Unstructured, promise *v1alpha1.Promise, dest *v1alpha1.Destination) (*probe.Target, error) {
	if promise.Spec.Health == nil || promise.Spec.Health.DynamoDBTable == nil || dest.Spec.AWS == nil {
		return nil, nil
	}
	table, err := render.Value("tableName", promise.Spec.Health.DynamoDBTable.TableName, renderInput(obj, promise, dest))
	if err != nil {
		return nil, fmt.Errorf("health.dynamoDBTable.tableName of Promise %s: %v", promise.Name, err)
	}
	return &probe.Target{Key: r.probeKey(obj), AWS: *dest.Spec.AWS, Table: table}, nil
}

// finalize removes the request's files and, when the router can see the
// destination, waits until Flux pruned them and the table is gone; then it
// removes the finalizer. Each step shows in the Ready condition.
func (r *RequestReconciler) finalize(ctx context.Context, obj *unstructured.Unstructured, before *v1alpha1.RequestStatus, dests []v1alpha1.Destination) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	skip := v1alpha1.SkipCleanup(obj.GetAnnotations())
	st := before.DeepCopy()
	// The delete workflow runs first, while the files are still there.
	if !skip {
		if done, res, err := r.runDelete(ctx, obj, st); !done {
			return res, errors.Join(err, r.patchStatus(ctx, obj, before, st, nil))
		}
	}
	dest, w, commit, changed, err := r.removeFiles(ctx, obj, st, dests)
	if err != nil {
		if !skip {
			setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.Deleting,
				fmt.Sprintf("removing files: %v; annotate %s=true to delete without removing them", err, v1alpha1.SkipCleanupAnnotation))
			return ctrl.Result{}, errors.Join(err, r.patchStatus(ctx, obj, before, st, nil))
		}
		r.event(obj, "Warning", v1alpha1.Deleting, "Files left in the state store (%s=true): %v", v1alpha1.SkipCleanupAnnotation, err)
	}
	// A request never written (waiting for a claim, say) has nothing on
	// the destination to wait for; the table of its name is someone
	// else's.
	if dest != nil && !skip && (changed || before.Commit != "") {
		if wait, msg := r.removalPending(ctx, obj, dest, w, commit); wait != 0 {
			st.Commit = commit
			setCondition(st, obj, v1alpha1.WrittenCondition, metav1.ConditionFalse, v1alpha1.Deleting, "files removed at "+statestore.Short(commit))
			setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.Deleting,
				msg+fmt.Sprintf("; annotate %s=true to stop waiting", v1alpha1.SkipCleanupAnnotation))
			return ctrl.Result{RequeueAfter: wait}, r.patchStatus(ctx, obj, before, st, nil)
		}
	}
	// Its Jobs go before it: nothing else removes them where no garbage
	// collector runs, and they hold its pipelines' outputs.
	if err := r.Workflows.Remove(ctx, string(obj.GetUID())); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.setFinalizer(ctx, obj, false); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.Index.Forget(r.key(client.ObjectKeyFromObject(obj)))
	// Its claims go with it: whoever waits for them is woken.
	r.Claims.Release(r.claimID(obj))
	r.Prober.Forget(r.probeKey(obj))
	r.Prober.Forget(r.probeKey(obj) + deletingKey)
	r.Feedback.Untrack(string(obj.GetUID()))
	return ctrl.Result{}, nil
}

// removalPending says how long to wait before looking again (0: done) for
// Flux to prune a removed request and for its table to go, and what is
// pending. Without a view of the destination there is nothing to wait for.
func (r *RequestReconciler) removalPending(ctx context.Context, obj *unstructured.Unstructured, dest *v1alpha1.Destination, w statestore.Writer, commit string) (time.Duration, string) {
	fs := r.Feedback.State(dest.Name)
	if !fs.Configured || fs.Err != "" {
		return 0, ""
	}
	status, _, msg := fs.Applied(commit, w.Contains)
	if status != metav1.ConditionTrue {
		return afterFlux, fmt.Sprintf("files removed at %s; waiting for Flux to prune them: %s", statestore.Short(commit), msg)
	}
	var promise v1alpha1.Promise
	if err := r.Get(ctx, types.NamespacedName{Name: r.Promise}, &promise); err != nil {
		return 0, ""
	}
	target, err := r.tableTarget(obj, &promise, dest)
	if err != nil || target == nil {
		return 0, ""
	}
	// Its own backoff: the last answer before deletion (ACTIVE, recheck in
	// minutes) says nothing about the table going, and an ACTIVE table now
	// is not final either (ACK may be waiting for an update to finish).
	target.Key += deletingKey
	target.AwaitGone = true
	res := r.Prober.Table(ctx, *target)
	if res.Gone() {
		return 0, ""
	}
	return res.RetryAfter, fmt.Sprintf("pruned by Flux (%s); waiting for table %s to be deleted: %s", fs.Resources.Revision, target.Table, res.Message)
}

// removeFiles removes the request's directory and returns where it was,
// the commit that no longer has it and whether that commit removed
// anything; dest is nil when there was none.
func (r *RequestReconciler) removeFiles(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, dests []v1alpha1.Destination) (*v1alpha1.Destination, statestore.Writer, string, bool, error) {
	current, err := r.current(obj, st, dests)
	if err != nil || current == "" {
		return nil, nil, "", false, err
	}
	dest := find(dests, current)
	if dest == nil {
		return nil, nil, "", false, nil // the destination is gone; its cleanup policy decided
	}
	dir, err := statestore.RequestDir(dest.EffectivePath(), obj.GetNamespace(), r.Promise, obj.GetName())
	if err != nil {
		return nil, nil, "", false, err
	}
	w, err := r.Stores.Writer(dest.Spec.StateStoreRef)
	if err != nil {
		return nil, nil, "", false, err
	}
	note := fmt.Sprintf("remove %s/%s %s (%s) from %s", obj.GetNamespace(), obj.GetName(), r.GVK.Kind, r.Promise, dest.Name)
	res, err := w.Write(ctx, note, statestore.Change{Dir: dir, Replace: true})
	if err != nil {
		return nil, nil, "", false, err
	}
	if res.Changed {
		r.Index.Committed(dest.Name, res.Commit)
	}
	return dest, w, res.Commit, res.Changed, nil
}

// deletingKey marks the probe key of a request being deleted.
const deletingKey = "#deleting"

func (r *RequestReconciler) probeKey(obj client.Object) string {
	return r.GVK.GroupKind().String() + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

// current is the request's destination: from its status, or, when the
// status was lost, from where its files are in the state store. Placement
// is therefore sticky across restarts and status loss.
func (r *RequestReconciler) current(obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, dests []v1alpha1.Destination) (string, error) {
	if st.Destination != "" {
		return st.Destination, nil
	}
	sorted := append([]v1alpha1.Destination(nil), dests...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := range sorted {
		ok, err := r.holdsFiles(obj, &sorted[i])
		if err != nil {
			return "", err
		}
		if ok {
			return sorted[i].Name, nil
		}
	}
	return "", nil
}

// holdsFiles reports whether d's store holds the request's directory; a
// store that is not ready counts as no.
func (r *RequestReconciler) holdsFiles(obj *unstructured.Unstructured, d *v1alpha1.Destination) (bool, error) {
	w, err := r.Stores.Writer(d.Spec.StateStoreRef)
	if err != nil {
		return false, nil
	}
	dir, err := statestore.RequestDir(d.EffectivePath(), obj.GetNamespace(), r.Promise, obj.GetName())
	if err != nil {
		return false, err
	}
	return w.Exists(dir)
}

// namespaceLabels returns the labels of namespace ns when a destination
// restricts namespaces (and nil otherwise, to skip the lookup).
func (r *RequestReconciler) namespaceLabels(ctx context.Context, ns string, dests []v1alpha1.Destination) (labels.Set, error) {
	for i := range dests {
		if dests[i].Spec.NamespaceSelector != nil {
			var n corev1.Namespace
			if err := r.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
				return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
			}
			return labels.Set(n.Labels), nil
		}
	}
	return nil, nil
}

// schedulerView is dests as the scheduler sees them, without loads: where
// loads matter they come from the placement index's own view.
func schedulerView(dests []v1alpha1.Destination) []scheduler.Destination {
	out := make([]scheduler.Destination, len(dests))
	for i := range dests {
		out[i] = schedulerDestination(&dests[i], 0)
	}
	return out
}

func schedulerDestination(d *v1alpha1.Destination, load int) scheduler.Destination {
	capacity := -1
	if d.Spec.Capacity != nil {
		capacity = int(*d.Spec.Capacity)
	}
	var namespaces labels.Selector
	if d.Spec.NamespaceSelector != nil {
		var err error
		if namespaces, err = metav1.LabelSelectorAsSelector(d.Spec.NamespaceSelector); err != nil {
			namespaces = labels.Nothing() // the API validates it; refuse rather than admit all
		}
	}
	return scheduler.Destination{
		Namespaces:  namespaces,
		Name:        d.Name,
		Labels:      labels.Set(d.Labels),
		Ready:       meta.IsStatusConditionTrue(d.Status.Conditions, v1alpha1.ReadyCondition),
		Schedulable: d.IsSchedulable(),
		Deleting:    !d.DeletionTimestamp.IsZero(),
		Strict:      d.Spec.StrictMatchLabels,
		Capacity:    capacity,
		Load:        load,
	}
}

// promiseSelector is the AND of a Promise's destinationSelectors.
func promiseSelector(p *v1alpha1.Promise) (scheduler.Selector, error) {
	var s scheduler.Selector
	for i := range p.Spec.DestinationSelectors {
		ls := &p.Spec.DestinationSelectors[i]
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return s, fmt.Errorf("promise %s: destinationSelectors[%d]: %v", p.Name, i, err)
		}
		s.Selectors = append(s.Selectors, sel)
		s.Explicit = s.Explicit || len(ls.MatchLabels) > 0 || len(ls.MatchExpressions) > 0
	}
	return s, nil
}

// requestSelector adds the request's spec.destinationSelector to the
// Promise's selectors.
func requestSelector(p *v1alpha1.Promise, obj *unstructured.Unstructured) (scheduler.Selector, error) {
	s, err := promiseSelector(p)
	if err != nil {
		return s, err
	}
	m, _, err := unstructured.NestedStringMap(obj.Object, "spec", v1alpha1.DestinationSelectorField)
	if err != nil {
		return s, fmt.Errorf("spec.%s: %v", v1alpha1.DestinationSelectorField, err)
	}
	if len(m) > 0 {
		sel, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: m})
		if err != nil {
			return s, fmt.Errorf("spec.%s: %v", v1alpha1.DestinationSelectorField, err)
		}
		s.Selectors = append(s.Selectors, sel)
		s.Explicit = true
	}
	return s, nil
}

func (r *RequestReconciler) event(obj runtime.Object, kind, reason, format string, args ...any) {
	r.Recorder.Eventf(obj, nil, kind, reason, "Reconcile", format, args...)
}

// Status helpers.

func readStatus(obj *unstructured.Unstructured) (*v1alpha1.RequestStatus, error) {
	st := &v1alpha1.RequestStatus{}
	raw, ok := obj.Object["status"].(map[string]any)
	if !ok {
		return st, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, st); err != nil {
		return nil, fmt.Errorf("reading status: %w", err)
	}
	return st, nil
}

// patchStatus writes st when it differs from before, or when obj may
// predate the router's own last status patch (ownstatus.Pending): one
// patch per reconcile at most. The patch carries the resourceVersion of
// obj, the copy st was computed from, so a status decided from a stale
// copy is refused with a conflict instead of overwriting a newer one.
// extra are more status fields to set (a workflow's status.yaml), patched
// only when they differ from obj's.
func (r *RequestReconciler) patchStatus(ctx context.Context, obj *unstructured.Unstructured, before, st *v1alpha1.RequestStatus, extra map[string]any) error {
	cur, _, _ := unstructured.NestedMap(obj.Object, "status")
	changed := map[string]any{}
	for k, v := range extra {
		if !equality.Semantic.DeepEqual(cur[k], v) {
			changed[k] = v
		}
	}
	if equality.Semantic.DeepEqual(before, st) && len(changed) == 0 && r.written.Seen(obj) {
		return nil
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
	if err != nil {
		return err
	}
	for k, v := range changed {
		raw[k] = v
	}
	patch := &unstructured.Unstructured{Object: map[string]any{"status": raw}}
	patch.SetResourceVersion(obj.GetResourceVersion())
	data, err := patch.MarshalJSON()
	if err != nil {
		return err
	}
	if err := r.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, data)); err != nil {
		return err
	}
	r.written.Wrote(obj)
	return nil
}

func setCondition(st *v1alpha1.RequestStatus, obj client.Object, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration()})
}

// setWritten sets Written and the Ready summary that follows from it.
func setWritten(st *v1alpha1.RequestStatus, obj client.Object, status metav1.ConditionStatus, reason, msg string) {
	setCondition(st, obj, v1alpha1.WrittenCondition, status, reason, msg)
	setCondition(st, obj, v1alpha1.ReadyCondition, status, reason, msg)
}

// setAll sets every condition, for a request that could not be scheduled.
func setAll(st *v1alpha1.RequestStatus, obj client.Object, status metav1.ConditionStatus, reason, msg string) {
	setCondition(st, obj, v1alpha1.ScheduledCondition, status, reason, msg)
	setWritten(st, obj, status, reason, msg)
}

func find(dests []v1alpha1.Destination, name string) *v1alpha1.Destination {
	for i := range dests {
		if dests[i].Name == name {
			return &dests[i]
		}
	}
	return nil
}
