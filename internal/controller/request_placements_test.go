package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/placement"
)

// After a start, new placements wait for every Promise's requests to be
// loaded, so capacity holds. A Promise whose request controller cannot
// run (not Ready: missing rights, an invalid expression) never loads;
// waiting for it for ever would let one Promise stop every other
// Promise's scheduling, so it is waited for only a while after the start.
func TestPlacementsWaitForUnservedPromisesOnlyAfterAStart(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	missing := &metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.MissingPermissions, ObservedGeneration: 1}
	invalid := &metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.InvalidStatusExpression, ObservedGeneration: 1}
	ready := &metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.Reconciled, ObservedGeneration: 1}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(
		claimsPromise("no-rights", missing), claimsPromise("bad-cel", invalid),
		claimsPromise("serving", ready), claimsPromise("loaded", ready)).Build()
	for _, tc := range []struct {
		name       string
		sinceStart time.Duration
		want       []string
	}{
		{"just started: wait for all", time.Second, []string{"bad-cel (InvalidStatusExpression)", "no-rights (MissingPermissions)", "serving"}},
		{"long after: only for Promises that will load", time.Hour, []string{"serving"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			index := placement.New()
			index.Started = time.Now().Add(-tc.sinceStart)
			index.SetPrimed("loaded", func() bool { return true })
			index.SetPrimed("serving", func() bool { return false })
			r := &RequestReconciler{Client: c, Index: index}
			got, err := r.placementsLoading(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("waiting for %q, want %q", got, tc.want)
			}
		})
	}
}
