package destinations

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/secretref"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// StoreReconciler is what the GitStateStore and BucketStateStore
// reconcilers share: reading credentials, reporting Ready, and waking
// destinations when the store changed under the router. Both embed one.
type StoreReconciler struct {
	client.Client
	// SecretReader reads Secrets by name without a cache, so the router
	// never lists or watches Secrets.
	SecretReader client.Reader
	Stores       *Stores
	// Index is woken for the store's destinations when the store changed
	// under the router (drift) or a rewrite is asked for.
	Index *placement.Index
	// Interval between checks of a Ready store.
	Interval time.Duration
	// Recorder, when set, records a Rewriting event when a rewrite is
	// taken.
	Recorder events.EventRecorder

	// rewrites holds the last RewriteAnnotation value seen per store.
	rewrites sync.Map
}

func (r *StoreReconciler) interval() time.Duration {
	if r.Interval == 0 {
		return time.Minute
	}
	return r.Interval
}

// reconcile reads the store ref names into obj (forgetting its writer when
// it is gone), runs check, records the verdict as the store's Ready
// condition in the Stores and in the status (patched when it changed, or
// when obj may predate the last patch in written), and says when to check
// again.
func (r *StoreReconciler) reconcile(ctx context.Context, ref v1alpha1.StateStoreReference, obj client.Object, status *v1alpha1.StateStoreStatus, written *ownstatus.Pending, check func() metav1.Condition) (ctrl.Result, error) {
	key := types.NamespacedName{Name: ref.Name}
	if err := r.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Stores.forget(ref)
			written.Forget(key)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := obj.DeepCopyObject().(client.Object)
	cond := check()
	cond.Type, cond.ObservedGeneration = v1alpha1.ReadyCondition, obj.GetGeneration()
	meta.SetStatusCondition(&status.Conditions, cond)
	status.ObservedGeneration = obj.GetGeneration()
	r.Stores.setReady(ref, cond.Status == metav1.ConditionTrue, cond.Message)
	if err := written.Patch(ctx, r.Client, obj, orig, !equality.Semantic.DeepEqual(orig, obj)); err != nil {
		if apierrors.IsConflict(err) {
			// Decided from a stale copy: decide again from a fresh one.
			return ctrl.Result{RequeueAfter: ownstatus.ConflictRetry}, nil
		}
		return ctrl.Result{}, err
	}
	if cond.Status != metav1.ConditionTrue {
		log.FromContext(ctx).Info("State store not ready", "reason", cond.Reason, "message", cond.Message)
		return ctrl.Result{RequeueAfter: r.interval() / 6}, nil
	}
	return ctrl.Result{RequeueAfter: r.interval()}, nil
}

// refreshed wakes the store's destinations when the store moved under the
// router or its rewrite annotation changed: every request and canary is
// then checked against the store, and whatever differs is written back.
func (r *StoreReconciler) refreshed(ctx context.Context, ref v1alpha1.StateStoreReference, obj client.Object, moved bool) {
	rewrite := obj.GetAnnotations()[v1alpha1.RewriteAnnotation]
	last, seen := r.rewrites.Swap(ref.String(), rewrite)
	asked := seen && last != rewrite
	if !moved && !asked {
		return
	}
	var list v1alpha1.DestinationList
	if err := r.List(ctx, &list); err != nil {
		// Only before the cache synced; the next change wakes them then.
		log.FromContext(ctx).Error(err, "Listing destinations to wake them")
		return
	}
	woken := 0
	for _, d := range list.Items {
		if d.Spec.StateStoreRef.String() == ref.String() {
			r.Index.Wake(d.Name)
			woken++
		}
	}
	if asked && r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.Rewriting, "Rewrite",
			"Rewrite %q: checking the files of %d destination(s) against the store", rewrite, woken)
	}
}

// refresh re-reads the store through its writer and returns its revision,
// waking destinations on drift.
func (r *StoreReconciler) refresh(ctx context.Context, ref v1alpha1.StateStoreReference, obj client.Object, w statestore.Writer) (string, error) {
	rev, moved, err := w.Refresh(ctx)
	if err != nil {
		return "", err
	}
	r.refreshed(ctx, ref, obj, moved)
	return rev, nil
}

// readSecret reads the store's Secret and the keys its auth method needs.
// The condition says what is wrong, naming the Secret and key, never a
// value.
func readSecret(ctx context.Context, secrets client.Reader, ref *v1alpha1.SecretReference, authMethod string, need ...string) (map[string][]byte, *metav1.Condition) {
	var secret corev1.Secret
	if err := secrets.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &secret); err != nil {
		c := notReady(v1alpha1.SecretNotFound, fmt.Sprintf("Secret %s/%s not found", ref.Namespace, ref.Name))
		switch {
		case errors.Is(err, secretref.ErrCrossNamespace):
			c = notReady(v1alpha1.CrossNamespaceRef, err.Error())
		case !apierrors.IsNotFound(err):
			c.Message = fmt.Sprintf("reading Secret %s/%s: %v", ref.Namespace, ref.Name, err)
		}
		return nil, &c
	}
	for _, k := range need {
		if len(secret.Data[k]) == 0 {
			c := notReady(v1alpha1.InvalidSecret, fmt.Sprintf("Secret %s/%s has no %q for authMethod %s", ref.Namespace, ref.Name, k, authMethod))
			return nil, &c
		}
	}
	return secret.Data, nil
}

func notReady(reason, message string) metav1.Condition {
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: message}
}
