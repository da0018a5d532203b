package destinations

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// cleanupRecheck is how often a destination whose cleanup waits looks
// again without being woken (by its requests leaving or Flux there).
const cleanupRecheck = 15 * time.Second

// Prefixes of the Cleaning messages, one per step: a new step makes an
// event.
const (
	waitingForRequests = "waiting for its requests to leave"
	waitingForPrune    = "waiting for Flux on the destination to prune"
)

// finalize applies the cleanup policy and lets the destination go.
//
// cleanup: none (or skip-cleanup) lets it go at once: the cluster keeps
// what it runs, and the requests there stay (DestinationLost) until a
// person releases them.
//
// cleanup: all keeps Flux there in view and, in order: waits until every
// request placed there has left (each moves itself: retain annotations,
// prune, new copy; see internal/controller/move.go); removes the
// dependencies' and any remaining files but keeps the canaries, so the
// Kustomizations' paths exist; waits until Flux there applied that
// revision, which prunes what it applied from them; then removes the rest
// of the directory and the finalizer. Each wait shows in Ready (reason
// Cleaning); the end in an event and Ready reason CleanupDone.
func (r *DestinationReconciler) finalize(ctx context.Context, d *v1alpha1.Destination) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(d, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if d.Spec.Cleanup != v1alpha1.CleanupAll || v1alpha1.SkipCleanup(d.Annotations) {
		return ctrl.Result{}, r.release(ctx, d)
	}
	if err := r.Feedback.Ensure(ctx, d); err != nil {
		return ctrl.Result{}, err
	}
	staying, err := r.requestsOn(ctx, d)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(staying) > 0 {
		return r.cleaning(ctx, d, v1alpha1.Cleaning, fmt.Sprintf("%s: %d request(s) still placed here (each moves once Flux here pruned its copy; a request of a Promise with reschedule policy Stay stays until it is deleted): %s",
			waitingForRequests, len(staying), list(staying, 5)))
	}
	// Nothing left to clean (the directory went in an earlier pass, whose
	// finalizer removal this pass, reading a stale cache, does not see
	// yet): writing the canaries again would bring the directory back.
	if w, err := r.Stores.Writer(d.Spec.StateStoreRef); err == nil {
		if ok, err := w.Exists(d.EffectivePath()); err == nil && !ok {
			return ctrl.Result{}, r.release(ctx, d)
		}
	}
	done, msg, err := r.prune(ctx, d)
	if err != nil {
		_, _ = r.cleaning(ctx, d, v1alpha1.WriteFailed, fmt.Sprintf("cleanup: all could not remove the files: %v; annotate %s=true to delete without cleanup",
			err, v1alpha1.SkipCleanupAnnotation))
		return ctrl.Result{}, err
	}
	if !done {
		return r.cleaning(ctx, d, v1alpha1.Cleaning, waitingForPrune+": "+msg)
	}
	if err := r.removeDirectory(ctx, d); err != nil {
		_, _ = r.cleaning(ctx, d, v1alpha1.WriteFailed, fmt.Sprintf("cleanup: all could not remove the directory: %v; annotate %s=true to delete without cleanup",
			err, v1alpha1.SkipCleanupAnnotation))
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(d, nil, "Normal", v1alpha1.CleanupDone, "Cleanup", "%s; directory removed", msg)
	if _, err := r.cleaning(ctx, d, v1alpha1.CleanupDone, msg+"; directory removed"); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.release(ctx, d)
}

// release stops watching the destination and removes the finalizer.
func (r *DestinationReconciler) release(ctx context.Context, d *v1alpha1.Destination) error {
	r.Feedback.Forget(d.Name)
	controllerutil.RemoveFinalizer(d, v1alpha1.Finalizer)
	return client.IgnoreNotFound(r.Update(ctx, d))
}

// cleaning sets Ready=False with reason and msg, and makes an event when
// the cleanup reaches a new step.
func (r *DestinationReconciler) cleaning(ctx context.Context, d *v1alpha1.Destination, reason, msg string) (ctrl.Result, error) {
	orig := d.DeepCopy()
	prev := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ReadyCondition)
	step, _, _ := strings.Cut(msg, ":")
	if reason == v1alpha1.Cleaning && (prev == nil || prev.Reason != reason || !strings.HasPrefix(prev.Message, step)) {
		r.Recorder.Eventf(d, nil, "Normal", v1alpha1.Cleaning, "Cleanup", "%s", msg)
	}
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: d.Generation})
	d.Status.Placements = int32(r.Index.Load(d.Name))
	if c := r.Index.LastCommit(d.Name); c != "" {
		d.Status.LastCommit = c
	}
	if err := r.written.Patch(ctx, r.Client, d, orig, !equality.Semantic.DeepEqual(orig.Status, d.Status)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{RequeueAfter: cleanupRecheck}, nil
}

// requestsOn lists, as namespace/name (kind), the requests still placed on
// d: those whose status names it, and those without a destination in
// their status whose files are in d's directory (a status lost).
func (r *DestinationReconciler) requestsOn(ctx context.Context, d *v1alpha1.Destination) ([]string, error) {
	var promises v1alpha1.PromiseList
	if err := r.List(ctx, &promises); err != nil {
		return nil, err
	}
	w, _ := r.Stores.Writer(d.Spec.StateStoreRef)
	var out []string
	for _, p := range promises.Items {
		if p.Status.Kind == "" {
			continue
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.FromAPIVersionAndKind(p.Status.APIVersion, p.Status.Kind+"List"))
		if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, err
		}
		for _, u := range list.Items {
			dest, _, _ := unstructured.NestedString(u.Object, "status", "destination")
			on := dest == d.Name
			if dest == "" && w != nil {
				dir, err := statestore.RequestDir(d.EffectivePath(), u.GetNamespace(), p.Name, u.GetName())
				if err != nil {
					continue
				}
				if on, err = w.Exists(dir); err != nil {
					return nil, err
				}
			}
			if on {
				policy := ""
				if p.ReschedulePolicy() == v1alpha1.RescheduleStay {
					policy = ", Stay"
				}
				out = append(out, fmt.Sprintf("%s/%s (%s%s)", u.GetNamespace(), u.GetName(), p.Status.Kind, policy))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// prune removes every file from d's directory but the canaries and says
// whether Flux there applied that, and what is pending. The dependencies
// are kept when other destinations may share the cluster (see
// keepDependencies): pruning them there would delete what the others
// still use, a Namespace with their objects in it for example.
func (r *DestinationReconciler) prune(ctx context.Context, d *v1alpha1.Destination) (bool, string, error) {
	if owner, err := r.pathOwner(ctx, d); err != nil || owner != "" {
		// Never write into a directory another destination owns.
		return err == nil, fmt.Sprintf("the directory belongs to destination %s; nothing removed", owner), err
	}
	w, err := r.Stores.Writer(d.Spec.StateStoreRef)
	if err != nil {
		return false, "", err
	}
	fs := r.Feedback.State(d.Name)
	var changes []statestore.Change
	for _, c := range canaries(d.Name, d.EffectivePath()) {
		c.Replace = true
		changes = append(changes, c)
	}
	what := "the requests' and dependencies' files"
	kept := keepDependencies(fs)
	if kept != "" {
		changes = changes[1:] // the dependencies directory stays as it is
		what = "the requests' files (" + kept + ")"
	}
	res, err := w.Write(ctx, fmt.Sprintf("remove %s from destination %s, keeping the canaries (cleanup: all)", what, d.Name), changes...)
	if err != nil {
		return false, "", err
	}
	if res.Changed {
		r.Index.Committed(d.Name, res.Commit)
	}
	ok, msg := feedback.AppliedOn(d, fs, res.Commit, w.Contains)
	if !ok {
		r.Feedback.NudgeBehind(d.Name, res.Commit, w.Contains)
		return false, fmt.Sprintf("%s were removed at %s (the canaries kept); %s", what, res.Commit, msg), nil
	}
	return true, fmt.Sprintf("Flux on %s applied a revision without %s (removed at %s): %s", d.Name, what, statestore.Short(res.Commit), msg), nil
}

// keepDependencies says why d's dependencies must not be pruned, or "".
// Destinations that share a cluster apply the same dependencies through
// their own Kustomizations, and Flux prunes a shared object from whichever
// applied it last. So the router prunes them only when it sees Flux on the
// cluster and no other destination's dependencies Kustomization in the
// same Flux namespace.
func keepDependencies(fs feedback.State) string {
	switch {
	case !fs.Configured || fs.Err != "" || !fs.Synced:
		return "dependencies kept: the router cannot see whether other destinations share this cluster"
	case fs.Neighbours != "":
		return "dependencies kept: other destinations on this cluster apply them too (" + fs.Neighbours + ")"
	}
	return ""
}

// removeDirectory removes d's directory, canaries included.
func (r *DestinationReconciler) removeDirectory(ctx context.Context, d *v1alpha1.Destination) error {
	if owner, err := r.pathOwner(ctx, d); err != nil || owner != "" {
		return err
	}
	w, err := r.Stores.Writer(d.Spec.StateStoreRef)
	if err != nil {
		return err
	}
	_, err = w.Write(ctx, fmt.Sprintf("remove destination %s (cleanup: all)", d.Name), statestore.Change{Dir: d.EffectivePath(), Replace: true})
	return err
}

// list joins the first n items and says how many more there are.
func list(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
