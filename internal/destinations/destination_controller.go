package destinations

import (
	"context"
	"fmt"
	"hash/fnv"
	"path"
	"strings"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/shutdown"
)

// DestinationReconciler makes Destinations Ready and applies their cleanup
// policy on deletion.
type DestinationReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Stores   *Stores
	Index    *placement.Index
	Feedback *feedback.Watchers
	// Interval between refreshes of a Ready destination's status.
	Interval time.Duration

	// written holds the router's own status patches the cache has not
	// shown yet.
	written ownstatus.Pending
}

// +kubebuilder:rbac:groups=switchyard.dev,resources=destinations,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=switchyard.dev,resources=destinations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=switchyard.dev,resources=destinations/finalizers,verbs=update

// SetupWithManager registers the reconciler. It also reconciles a
// destination when its store changes and when the placement index says its
// load or last commit changed.
func (r *DestinationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Interval == 0 {
		r.Interval = 5 * time.Minute
	}
	changed := make(chan event.GenericEvent)
	// Runs with the manager (as leader), so it stops when the manager does.
	coalesce := manager.RunnableFunc(func(ctx context.Context) error { r.coalesce(ctx, changed); return nil })
	if err := mgr.Add(coalesce); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Its own status patches do not wake a destination again.
		For(&v1alpha1.Destination{}, builder.WithPredicates(ownstatus.Changed)).
		Named("destination").
		// A store's revision moves with every commit: only its spec and
		// its Ready condition concern its destinations.
		Watches(&v1alpha1.GitStateStore{}, handler.EnqueueRequestsFromMapFunc(r.forStore(v1alpha1.GitStateStoreKind)),
			builder.WithPredicates(storeChanged)).
		Watches(&v1alpha1.BucketStateStore{}, handler.EnqueueRequestsFromMapFunc(r.forStore(v1alpha1.BucketStateStoreKind)),
			builder.WithPredicates(storeChanged)).
		WatchesRawSource(source.Channel(changed, &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Channel(r.Index.Subscribe(), &handler.EnqueueRequestForObject{})).
		// A slow store must not hold up the destinations of other stores.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(shutdown.Quiet(r))
}

// statusRefresh is how often, at most, a destination's status is refreshed
// for load changes (status.placements, status.lastCommit): placements make
// one patch per destination per period instead of one per placement. At 2
// s, 50 requests a second over 100 destinations made one destination patch
// per request, a third of the router's API writes (docs/performance.md).
const statusRefresh = 10 * time.Second

// refreshSlots spreads the refreshes over statusRefresh: each destination
// has a slot, and each slot's turn comes once per period, so 100
// destinations make 10 patches a second rather than 100 at once.
const refreshSlots = 10

// coalesce turns the index's change notices into at most one event per
// destination per statusRefresh, in the destination's slot.
func (r *DestinationReconciler) coalesce(ctx context.Context, out chan<- event.GenericEvent) {
	pending := map[string]bool{}
	tick := time.NewTicker(statusRefresh / refreshSlots)
	defer tick.Stop()
	turn := 0
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-r.Index.Changed():
			pending[name] = true
		case <-tick.C:
			turn = (turn + 1) % refreshSlots
			for name := range pending {
				if refreshSlot(name) != turn {
					continue
				}
				d := &v1alpha1.Destination{}
				d.Name = name
				select {
				case out <- event.GenericEvent{Object: d}:
				case <-ctx.Done():
					return
				}
				delete(pending, name)
			}
		}
	}
}

// refreshSlot is name's slot, from a hash of the name.
func refreshSlot(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % refreshSlots)
}

// storeChanged passes store events that concern its destinations: those
// of ownstatus.Changed, and a change of the store's Ready condition.
var storeChanged = predicate.Or[client.Object](ownstatus.Changed, predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return storeReady(e.ObjectOld) != storeReady(e.ObjectNew)
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
})

func storeReady(o client.Object) metav1.ConditionStatus {
	var conds []metav1.Condition
	switch s := o.(type) {
	case *v1alpha1.GitStateStore:
		conds = s.Status.Conditions
	case *v1alpha1.BucketStateStore:
		conds = s.Status.Conditions
	}
	if c := meta.FindStatusCondition(conds, v1alpha1.ReadyCondition); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
}

// forStore maps a store of kind to the destinations that reference it.
func (r *DestinationReconciler) forStore(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.DestinationList
		if err := r.List(ctx, &list); err != nil {
			return nil
		}
		ref := v1alpha1.StateStoreReference{Kind: kind, Name: o.GetName()}.String()
		var out []reconcile.Request
		for _, d := range list.Items {
			if d.Spec.StateStoreRef.String() == ref {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: d.Name}})
			}
		}
		return out
	}
}

// Reconcile handles one destination.
func (r *DestinationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var d v1alpha1.Destination
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !d.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &d)
	}
	if controllerutil.AddFinalizer(&d, v1alpha1.Finalizer) {
		if err := r.Update(ctx, &d); err != nil {
			return ctrl.Result{}, err
		}
	}
	orig := d.DeepCopy()
	cond, err := r.ready(ctx, &d)
	if err != nil {
		return ctrl.Result{}, err
	}
	d.Status.ObservedGeneration = d.Generation
	d.Status.Placements = int32(r.Index.Load(d.Name))
	if c := r.Index.LastCommit(d.Name); c != "" {
		d.Status.LastCommit = c
	}
	if err := r.observeFlux(ctx, &d); err != nil {
		return ctrl.Result{}, err
	}
	// A refused kubeconfig is the destination's own misconfiguration, and
	// comes first: it takes no new requests until it is fixed. The Secret
	// is read again at the next reconcile (10 s for a destination not Ready).
	if fs := r.Feedback.State(d.Name); fs.Refused {
		cond = notReady(v1alpha1.InsecureKubeConfig, fs.Err)
	}
	cond.Type, cond.ObservedGeneration = v1alpha1.ReadyCondition, d.Generation
	meta.SetStatusCondition(&d.Status.Conditions, cond)
	if err := r.written.Patch(ctx, r.Client, &d, orig, !equality.Semantic.DeepEqual(orig.Status, d.Status)); err != nil {
		if apierrors.IsConflict(err) {
			// Decided from a stale copy: decide again from a fresh one.
			return ctrl.Result{RequeueAfter: ownstatus.ConflictRetry}, nil
		}
		return ctrl.Result{}, err
	}
	if cond.Status != metav1.ConditionTrue {
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: r.Interval}, nil
}

// ready checks the store and the path, and writes the canaries. Only a
// failed read of the API server is returned as an error.
func (r *DestinationReconciler) ready(ctx context.Context, d *v1alpha1.Destination) (metav1.Condition, error) {
	ref := d.Spec.StateStoreRef
	st, err := GetStore(ctx, r.Client, ref)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return notReady(v1alpha1.StateStoreNotReady, fmt.Sprintf("%s %s not found", ref.EffectiveKind(), ref.Name)), nil
		}
		return metav1.Condition{}, err
	}
	d.Status.Path = path.Join(st.Path(), d.EffectivePath())
	w, err := r.Stores.Writer(ref)
	if err != nil {
		return notReady(v1alpha1.StateStoreNotReady, err.Error()), nil
	}
	owner, err := r.pathOwner(ctx, d)
	if err != nil {
		return metav1.Condition{}, err
	}
	if owner != "" {
		return notReady(v1alpha1.PathConflict, fmt.Sprintf("path %q overlaps the path of destination %s in store %s; set a distinct spec.path", d.EffectivePath(), owner, ref.Name)), nil
	}
	res, err := w.Write(ctx, fmt.Sprintf("canaries for destination %s", d.Name), canaries(d.Name, d.EffectivePath())...)
	if err != nil {
		return notReady(v1alpha1.WriteFailed, err.Error()), nil
	}
	if res.Changed {
		r.Index.Committed(d.Name, res.Commit)
	}
	if !d.IsSchedulable() {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.Cordoned,
			Message: "cordoned (spec.schedulable is false): keeps its requests, takes no new ones"}, nil
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.Reconciled,
		Message: fmt.Sprintf("Flux should read %s in %s %s", d.Status.Path, ref.EffectiveKind(), ref.Name)}, nil
}

// observeFlux sets the Applied condition and status.flux from what Flux on
// the destination reports.
func (r *DestinationReconciler) observeFlux(ctx context.Context, d *v1alpha1.Destination) error {
	if err := r.Feedback.Ensure(ctx, d); err != nil {
		return err
	}
	fs := r.Feedback.State(d.Name)
	d.Status.Flux = nil
	if fs.Configured {
		d.Status.Flux = &v1alpha1.FluxStatus{LastAppliedRevision: fs.Resources.Revision}
		if fs.SourceKind == sourcev1.BucketKind {
			d.Status.Flux.Bucket = fs.Source.Name
		} else {
			d.Status.Flux.GitRepository = fs.Source.Name
		}
		for _, k := range []feedback.Object{fs.Dependencies, fs.Resources} {
			if k.Name != "" {
				d.Status.Flux.Kustomizations = append(d.Status.Flux.Kustomizations, k.Name)
			}
		}
	}
	contains := func(head, c string) (bool, error) { return false, nil }
	if w, err := r.Stores.Writer(d.Spec.StateStoreRef); err == nil {
		contains = w.Contains
	}
	status, reason, msg := fs.Applied(d.Status.LastCommit, contains)
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.AppliedCondition, Status: status,
		Reason: reason, Message: msg, ObservedGeneration: d.Generation})
	return nil
}

// pathOwner returns the name of an older destination of the same store
// whose path equals or contains d's path (or is contained by it), or "".
func (r *DestinationReconciler) pathOwner(ctx context.Context, d *v1alpha1.Destination) (string, error) {
	var list v1alpha1.DestinationList
	// Read-only: skip copying every destination on every reconcile.
	if err := r.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return "", err
	}
	for _, o := range list.Items {
		if o.Name == d.Name || o.Spec.StateStoreRef.String() != d.Spec.StateStoreRef.String() || !overlaps(o.EffectivePath(), d.EffectivePath()) {
			continue
		}
		older := o.CreationTimestamp.Before(&d.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&d.CreationTimestamp) && o.Name < d.Name)
		if older {
			return o.Name, nil
		}
	}
	return "", nil
}

func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}
