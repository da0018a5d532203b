package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/render"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// A request whose destination is deleted moves only when the router can
// make sure that its old copy is gone from the old cluster before the new
// copy is written, so that two controllers never manage one cloud
// resource, and without the router's doing deleting that resource:
//
//  1. Retaining: the copy on the old destination is rewritten with the
//     Promise's retain annotations; wait until Flux there applied that.
//  2. Pruning: the copy is removed (the canaries keep the paths); wait
//     until Flux there applied a revision without it, which prunes it.
//  3. The request is scheduled as usual and written to its new
//     destination.
//
// Each wait is decided from what Flux on the old destination reports, or,
// when the router cannot see it, from the revision a person confirmed in
// the Destination's FluxAppliedAnnotation. The old destination's cleanup
// waits for its requests, so it exists until they have left.
//
// The router can do this only while it owns the old copy: when the
// destination is deleted with cleanup: all. With cleanup: none the old
// cluster keeps its copy, and a Destination that is already gone leaves
// the router nothing to remove: the request reports DestinationLost and
// stays until a person releases it (ReleasedFromAnnotation). A Promise
// with policy Stay keeps its requests where they are in every case.

// leaving handles a request whose destination, current, is being deleted
// or gone. It returns handled false when the request is to be scheduled
// as usual, from the destination next: its destination is there, or the
// request has left it or a person released it (next is then where its
// files already are, if anywhere). Otherwise it has set st and the result
// says when to look again.
func (r *RequestReconciler) leaving(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus,
	promise *v1alpha1.Promise, current string, dests []v1alpha1.Destination) (next string, handled bool, res ctrl.Result, err error) {
	if current == "" {
		return current, false, ctrl.Result{}, nil
	}
	old := find(dests, current)
	if old != nil && old.DeletionTimestamp.IsZero() {
		return current, false, ctrl.Result{}, nil
	}
	cleanupAll := old != nil && old.Spec.Cleanup == v1alpha1.CleanupAll && !v1alpha1.SkipCleanup(old.Annotations)
	if obj.GetAnnotations()[v1alpha1.ReleasedFromAnnotation] == current && !cleanupAll {
		next, err = r.placedElsewhere(obj, dests, current)
		return next, false, ctrl.Result{}, err
	}
	// It is still there until it has left: its old destination's events
	// wake it, and that destination's load counts it.
	r.Index.Assign(r.key(client.ObjectKeyFromObject(obj)), func(func(string) int) string { return current })
	release := fmt.Sprintf("once that copy is gone (removed with its resources kept, or the cluster is gone), annotate the request %s=%s to place it elsewhere",
		v1alpha1.ReleasedFromAnnotation, current)
	switch {
	case promise.ReschedulePolicy() == v1alpha1.RescheduleStay && cleanupAll:
		r.lost(obj, st, fmt.Sprintf("destination %s is being deleted with cleanup: all, and Promise %s's reschedule policy is Stay: the request stays, and that cleanup waits until it is deleted or the policy is Move",
			current, promise.Name))
	case promise.ReschedulePolicy() == v1alpha1.RescheduleStay:
		r.lost(obj, st, fmt.Sprintf("destination %s is deleted, and Promise %s's reschedule policy is Stay: the request stays where it was; %s",
			current, promise.Name, release))
	case old == nil:
		r.lost(obj, st, fmt.Sprintf("destination %s is gone: the router can neither remove the request's copy there nor see whether it is still applied, so it places no second copy elsewhere; %s",
			current, release))
	case !cleanupAll:
		r.lost(obj, st, fmt.Sprintf("destination %s is deleted with cleanup: none (or skip-cleanup): its cluster keeps its copy of the request, so the router places no second copy elsewhere; %s",
			current, release))
	default:
		if handled, res, err = r.leave(ctx, obj, st, promise, old); handled || err != nil {
			return current, true, res, err
		}
		next, err = r.placedElsewhere(obj, dests, current)
		return next, false, ctrl.Result{}, err
	}
	return current, true, ctrl.Result{RequeueAfter: waitingRecheck}, nil
}

// placedElsewhere returns the destination, other than old and not being
// deleted, that already holds the request's files, or old when none does.
// The status can be older than the store (a reconcile reading a cache not
// yet updated after the move was recorded): the request then stays where
// it was written instead of being scheduled again, maybe elsewhere.
func (r *RequestReconciler) placedElsewhere(obj *unstructured.Unstructured, dests []v1alpha1.Destination, old string) (string, error) {
	for i := range dests {
		d := &dests[i]
		if d.Name == old || !d.DeletionTimestamp.IsZero() {
			continue
		}
		ok, err := r.holdsFiles(obj, d)
		if err != nil {
			return "", err
		}
		if ok {
			return d.Name, nil
		}
	}
	return old, nil
}

// lost records that the request stays on a destination it has lost.
func (r *RequestReconciler) lost(obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, msg string) {
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition); c == nil || c.Reason != v1alpha1.DestinationLost {
		r.event(obj, "Warning", v1alpha1.DestinationLost, "%s", msg)
	}
	setCondition(st, obj, v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.DestinationLost, msg)
	setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.DestinationLost, msg)
}

// leave takes the request's copy off old, a destination being deleted with
// cleanup: all, one step per call: retain annotations, then removal, each
// applied by Flux there. It returns false once the copy is gone.
func (r *RequestReconciler) leave(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus,
	promise *v1alpha1.Promise, old *v1alpha1.Destination) (bool, ctrl.Result, error) {
	dir, err := statestore.RequestDir(old.EffectivePath(), obj.GetNamespace(), promise.Name, obj.GetName())
	if err != nil {
		return true, ctrl.Result{}, err
	}
	w, err := r.Stores.Writer(old.Spec.StateStoreRef)
	if err != nil {
		r.moveStep(obj, st, old.Name, v1alpha1.StateStoreNotReady, err.Error())
		return true, ctrl.Result{RequeueAfter: afterFlux}, nil
	}
	what := fmt.Sprintf("%s/%s %s (%s) on %s", obj.GetNamespace(), obj.GetName(), r.GVK.Kind, promise.Name, old.Name)
	exists, err := w.Exists(dir)
	if err != nil {
		return true, ctrl.Result{}, err
	}
	if retain := promise.RetainAnnotations(); exists && len(retain) > 0 {
		in := renderInput(obj, promise, old)
		in.Annotations = retain
		files, err := render.Request(promise.Spec.Resources, in)
		if err != nil {
			r.moveStep(obj, st, old.Name, v1alpha1.RenderFailed, fmt.Sprintf("rendering the copy on %s with the retain annotations: %v; the copy stays there until Promise %s renders", old.Name, err, promise.Name))
			return true, ctrl.Result{}, nil
		}
		pending := func(commit, msg string) string {
			return fmt.Sprintf("retain annotations (%s) written to %s at %s; waiting for Flux there to apply them before the copy is removed: %s",
				annotationList(retain), old.Name, commit, msg)
		}
		if res, err := r.step(ctx, obj, st, w, old, v1alpha1.Retaining, "retain annotations on "+what+" before it moves",
			statestore.Change{Dir: dir, Files: files, Replace: true}, pending); res != nil || err != nil {
			return true, *res, err
		}
	}
	pending := func(commit, msg string) string {
		return fmt.Sprintf("files removed from %s at %s; waiting for Flux there to prune them before the request is written elsewhere: %s", old.Name, commit, msg)
	}
	if res, err := r.step(ctx, obj, st, w, old, v1alpha1.Pruning, "remove "+what+" before it moves",
		statestore.Change{Dir: dir, Replace: true}, pending); res != nil || err != nil {
		return true, *res, err
	}
	return false, ctrl.Result{}, nil
}

// step writes the change of one step of leaving old (Retaining or
// Pruning) and returns nil once Flux there applied it. Otherwise it
// records the step as pending, in the words pending gives for the commit
// and what Flux there lacks, and returns when to look again.
func (r *RequestReconciler) step(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, w statestore.Writer,
	old *v1alpha1.Destination, reason, note string, c statestore.Change, pending func(commit, msg string) string) (*ctrl.Result, error) {
	commit, err := r.writeOld(ctx, w, st, reason, old.Name, note, c)
	if err != nil {
		r.moveStep(obj, st, old.Name, v1alpha1.WriteFailed, err.Error())
		return &ctrl.Result{}, err
	}
	ok, msg := feedback.AppliedOn(old, r.Feedback.State(old.Name), commit, w.Contains)
	if ok {
		return nil, nil
	}
	st.Commit = commit
	r.moveStep(obj, st, old.Name, reason, pending(statestore.Short(commit), msg))
	r.Feedback.NudgeBehind(old.Name, commit, w.Contains)
	return &ctrl.Result{RequeueAfter: afterFlux}, nil
}

// writeOld writes the change of one step (Retaining or Pruning) to the
// destination the request leaves, and returns the commit to wait for: the
// one that made the change. An unchanged write answers with the store's
// head; then the commit the status recorded for this same step is used, if
// the head includes it, so that writes elsewhere in the store since do not
// make the request wait for Flux to apply them too. (A status recorded for
// another step, or none, falls back to the head: later, never earlier.)
func (r *RequestReconciler) writeOld(ctx context.Context, w statestore.Writer, st *v1alpha1.RequestStatus, step, dest, note string, c statestore.Change) (string, error) {
	res, err := w.Write(ctx, note, c)
	if err != nil {
		return "", err
	}
	if res.Changed {
		r.Index.Committed(dest, res.Commit)
		return res.Commit, nil
	}
	if cond := meta.FindStatusCondition(st.Conditions, v1alpha1.WrittenCondition); cond == nil || cond.Reason != step || st.Commit == "" {
		return res.Commit, nil
	}
	if ok, _ := w.Contains(res.Commit, st.Commit); ok {
		return st.Commit, nil
	}
	return res.Commit, nil
}

// moveStep records a step of leaving destination old: Scheduled and Ready
// say the request is moving, Written (reason) says which step is pending.
// Each new step makes an event.
func (r *RequestReconciler) moveStep(obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, old, reason, msg string) {
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.WrittenCondition); c == nil || c.Reason != reason {
		kind := "Normal"
		if reason != v1alpha1.Retaining && reason != v1alpha1.Pruning {
			kind = "Warning"
		}
		r.event(obj, kind, reason, "%s", msg)
	}
	setCondition(st, obj, v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.Moving,
		fmt.Sprintf("destination %s is being deleted (cleanup: all): the request is placed elsewhere once its copy there is gone", old))
	setCondition(st, obj, v1alpha1.WrittenCondition, metav1.ConditionFalse, reason, msg)
	setCondition(st, obj, v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.Moving, msg)
}

func annotationList(a map[string]string) string {
	out := make([]string, 0, len(a))
	for k, v := range a {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
