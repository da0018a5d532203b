package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Loads are counted from the placement index, which a start finds empty.
// Each request controller seeds it from its informer (status.destination
// of every cached request), and a request that needs a destination chosen
// waits until every serving Promise's requests are seeded: otherwise a
// full destination looks empty until its requests are reconciled again.

// watchIndexes feeds r.Index (placements) and r.Claims from one handler
// on the kind's informer, and registers with both when it has seen every
// request that existed at the start.
func (r *RequestReconciler) watchIndexes(c cache.Cache) error {
	synced, err := r.watchRequests(c, func(u *unstructured.Unstructured) {
		r.seedPlacement(u)
		r.observeClaims(u)
	}, func(u *unstructured.Unstructured) {
		r.Index.Forget(r.key(client.ObjectKeyFromObject(u)))
		r.Claims.Release(r.claimID(u))
	})
	if err != nil {
		return err
	}
	r.Index.SetPrimed(r.Promise, synced)
	r.Claims.SetPrimed(r.Promise, synced)
	return nil
}

func (r *RequestReconciler) seedPlacement(u *unstructured.Unstructured) {
	dest, _, _ := unstructured.NestedString(u.Object, "status", "destination")
	r.Index.Seed(r.key(client.ObjectKeyFromObject(u)), dest)
}

// watchRequests calls observe with every request of the kind the
// informer adds or updates and forget with every one it deletes. It
// returns when the handler has seen every request that existed at the
// start.
func (r *RequestReconciler) watchRequests(c cache.Cache, observe, forget func(*unstructured.Unstructured)) (synced func() bool, err error) {
	inf, err := c.GetInformer(context.Background(), r.newObject(), cache.BlockUntilSynced(false))
	if err != nil {
		return nil, err
	}
	each := func(f func(*unstructured.Unstructured)) func(any) {
		return func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				f(u)
			}
		}
	}
	add, del := each(observe), each(forget)
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: del,
	})
	if err != nil {
		return nil, err
	}
	return reg.HasSynced, nil
}

// unservedLoadWait is how long after a start new placements wait for a
// Promise that is not Ready to load its requests' placements.
const unservedLoadWait = 2 * time.Minute

// placementsLoading names the serving Promises whose requests' placements
// the index has not loaded yet.
func (r *RequestReconciler) placementsLoading(ctx context.Context) ([]string, error) {
	var list v1alpha1.PromiseList
	if err := r.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var out []string
	for k := range list.Items {
		p := &list.Items[k]
		if !serving(p) || r.Index.Primed(p.Name) {
			continue
		}
		// A Promise that is not Ready (missing rights, an invalid
		// expression) runs no request controller, so it never loads. Its
		// placed requests count only if it is fixed soon after a start;
		// later, waiting for it would let one Promise stop every other's
		// scheduling.
		if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ReadyCondition); c != nil && c.Status == metav1.ConditionFalse {
			if time.Since(r.Index.Started) < unservedLoadWait {
				out = append(out, fmt.Sprintf("%s (%s)", p.Name, c.Reason))
			}
			continue
		}
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out, nil
}

// waitForPlacements reports whether a request that needs a destination
// chosen must wait for placements to load, and says so in Scheduled.
func (r *RequestReconciler) waitForPlacements(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus) (bool, error) {
	loading, err := r.placementsLoading(ctx)
	if err != nil || len(loading) == 0 {
		return false, err
	}
	setCondition(st, obj, v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.Progressing, fmt.Sprintf(
		"loading where the requests of Promise %s are placed, to count destination loads; after a start this takes as long as filling the cache",
		strings.Join(loading, ", ")))
	return true, nil
}
