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
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/claims"
	"github.com/switchyard-dev/switchyard/internal/render"
)

// Claims (a Promise's spec.claims) are decided from the informer cache:
// each request controller feeds the shared claims.Index from its informer,
// so the index knows every request of the kind, including those not
// reconciled yet, and asks it before writing.

// How often a request looks at its claims again without being woken:
// while the index loads after a start, and while another request holds
// one of its claims (the holder's release wakes it first).
const (
	claimsLoading = 500 * time.Millisecond
	claimRecheck  = time.Minute
)

// observeClaims records a request as the cache shows it. A request whose
// keys do not render keeps what the index had (it is not written either).
func (r *RequestReconciler) observeClaims(u *unstructured.Unstructured) {
	var promise v1alpha1.Promise
	if err := r.Get(context.Background(), types.NamespacedName{Name: r.Promise}, &promise); err != nil {
		return
	}
	r.observeClaimsOf(u, &promise)
}

// observeClaimsOf is observeClaims with the Promise at hand.
func (r *RequestReconciler) observeClaimsOf(u *unstructured.Unstructured, promise *v1alpha1.Promise) {
	dest, _, _ := unstructured.NestedString(u.Object, "status", "destination")
	commit, _, _ := unstructured.NestedString(u.Object, "status", "commit")
	h, err := r.holder(u, promise, dest, dest != "" && commit != "")
	if err != nil {
		return
	}
	r.Claims.Observe(h)
}

func (r *RequestReconciler) claimID(obj client.Object) claims.ID {
	return claims.ID{GroupKind: r.GVK.GroupKind(), NamespacedName: client.ObjectKeyFromObject(obj)}
}

// holder renders the request's claims for the index.
func (r *RequestReconciler) holder(obj *unstructured.Unstructured, promise *v1alpha1.Promise, dest string, written bool) (claims.Holder, error) {
	h := claims.Holder{ID: r.claimID(obj), UID: obj.GetUID(), Created: obj.GetCreationTimestamp().Time, Destination: dest, Written: written}
	// Keys see the request and the Promise, not the destination: they
	// must be known before placement.
	in := render.Input{Request: obj.Object, Promise: promise.Name}
	for _, c := range promise.Spec.Claims {
		key, err := render.Value("claims."+c.Name, c.Key, in)
		if err != nil {
			return h, fmt.Errorf("spec.claims %s of Promise %s: %v", c.Name, promise.Name, err)
		}
		h.Claims = append(h.Claims, claims.Claim{Name: c.Name, Key: key, Scope: c.Scope})
	}
	return h, nil
}

// claim decides whether the request may hold its claims on dest. When it
// may not (or cannot tell yet) it sets Written and Ready, and returns
// done with when to look again; then nothing may be written.
func (r *RequestReconciler) claim(ctx context.Context, obj *unstructured.Unstructured, st *v1alpha1.RequestStatus, promise *v1alpha1.Promise, dest string, dests []v1alpha1.Destination) (ctrl.Result, bool, error) {
	h, err := r.holder(obj, promise, dest, st.Commit != "")
	if err != nil {
		setWritten(st, obj, metav1.ConditionFalse, v1alpha1.RenderFailed, err.Error())
		return ctrl.Result{}, true, nil
	}
	if len(h.Claims) == 0 {
		r.Claims.Release(h.ID)
		return ctrl.Result{}, false, nil
	}
	loading, err := r.claimsLoading(ctx, h.Claims)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if len(loading) > 0 {
		// A request written already keeps its conditions meanwhile.
		if st.Commit == "" {
			setWritten(st, obj, metav1.ConditionFalse, v1alpha1.Progressing, fmt.Sprintf(
				"loading the requests of Promise %s to decide claims; after a start this takes as long as filling the cache", strings.Join(loading, ", ")))
		}
		return ctrl.Result{RequeueAfter: claimsLoading}, true, nil
	}
	c := r.Claims.Decide(h, claims.ForDestinations(dests))
	if c == nil {
		return ctrl.Result{}, false, nil
	}
	msg := c.Message()
	if w := meta.FindStatusCondition(st.Conditions, v1alpha1.WrittenCondition); w == nil || w.Reason != v1alpha1.ClaimConflict {
		r.event(obj, "Warning", v1alpha1.ClaimConflict, "%s", msg)
	}
	setWritten(st, obj, metav1.ConditionFalse, v1alpha1.ClaimConflict, msg)
	return ctrl.Result{RequeueAfter: claimRecheck}, true, nil
}

// claimsLoading names the Promises declaring any of cs's claim names
// whose requests the index has not loaded yet. Promises that serve no
// requests (their API is invalid or another Promise's) do not count.
func (r *RequestReconciler) claimsLoading(ctx context.Context, cs []claims.Claim) ([]string, error) {
	var list v1alpha1.PromiseList
	if err := r.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var out []string
	for k := range list.Items {
		p := &list.Items[k]
		if !declares(p, cs) || !serving(p) || r.Claims.Primed(p.Name) {
			continue
		}
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out, nil
}

func declares(p *v1alpha1.Promise, cs []claims.Claim) bool {
	for _, pc := range p.Spec.Claims {
		for _, c := range cs {
			if pc.Name == c.Name {
				return true
			}
		}
	}
	return false
}

// serving is false for a Promise whose current generation cannot serve
// requests: no request controller of its own will ever load them.
func serving(p *v1alpha1.Promise) bool {
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ReadyCondition)
	return c == nil || c.ObservedGeneration != p.Generation || c.Status != metav1.ConditionFalse ||
		c.Reason != v1alpha1.InvalidAPI && c.Reason != v1alpha1.APIConflict
}
