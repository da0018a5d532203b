package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/claims"
)

func claimsPromise(name string, ready *metav1.Condition) *v1alpha1.Promise {
	p := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: v1alpha1.PromiseSpec{Claims: []v1alpha1.Claim{{Name: "table", Key: "{{ .spec.tableName }}", Scope: v1alpha1.ClaimScopeAWS}}}}
	if ready != nil {
		p.Status.Conditions = []metav1.Condition{*ready}
	}
	return p
}

func claimsRequest(name string, created time.Time) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"tableName": "orders"}}}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBRequest"})
	u.SetNamespace("team-" + name)
	u.SetName("orders")
	u.SetUID(types.UID("uid-" + name))
	u.SetCreationTimestamp(metav1.NewTime(created))
	return u
}

// TestClaimWaitsForLoadingThenDecides: the glue between a request and the
// index. No decision while a Promise declaring the claim name has not
// loaded its requests; then a conflict with a written holder, with an
// event; then, the holder gone, the request may proceed.
func TestClaimWaitsForLoadingThenDecides(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	invalid := &metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.InvalidAPI, ObservedGeneration: 1}
	other := claimsPromise("other-tables", nil)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(claimsPromise("dynamodb", nil), other,
		claimsPromise("broken", invalid)).Build()
	recorder := events.NewFakeRecorder(10)
	index := claims.New()
	r := &RequestReconciler{Client: c, Recorder: recorder, Claims: index,
		GVK: schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBRequest"}, Promise: "dynamodb"}
	dests := []v1alpha1.Destination{{ObjectMeta: metav1.ObjectMeta{Name: "east"}}, {ObjectMeta: metav1.ObjectMeta{Name: "west"}}}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	holder, obj := claimsRequest("a", t0), claimsRequest("b", t0.Add(time.Second))
	var promise v1alpha1.Promise
	if err := c.Get(context.Background(), types.NamespacedName{Name: "dynamodb"}, &promise); err != nil {
		t.Fatal(err)
	}
	decide := func() (*v1alpha1.RequestStatus, time.Duration, bool) {
		t.Helper()
		st := &v1alpha1.RequestStatus{Destination: "west"}
		res, done, err := r.claim(context.Background(), obj, st, &promise, "west", dests)
		if err != nil {
			t.Fatal(err)
		}
		return st, res.RequeueAfter, done
	}

	// Neither dynamodb nor other-tables is loaded; broken serves nothing.
	index.SetPrimed("dynamodb", func() bool { return true })
	st, after, done := decide()
	w := meta.FindStatusCondition(st.Conditions, v1alpha1.WrittenCondition)
	if !done || after != claimsLoading || w == nil || w.Reason != v1alpha1.Progressing || !strings.Contains(w.Message, "other-tables") || strings.Contains(w.Message, "broken") {
		t.Fatalf("while loading: done %v, after %s, Written %+v", done, after, w)
	}

	index.SetPrimed("other-tables", func() bool { return true })
	h, err := r.holder(holder, &promise, "east", true)
	if err != nil {
		t.Fatal(err)
	}
	index.Observe(h)
	st, after, done = decide()
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
	if !done || after != claimRecheck || ready == nil || ready.Reason != v1alpha1.ClaimConflict ||
		!strings.Contains(ready.Message, `claim table "orders" (scope AWS) is held by DynamoDBRequest team-a/orders`) {
		t.Fatalf("with a holder: done %v, after %s, Ready %+v", done, after, ready)
	}
	if len(recorder.Events) != 1 || !strings.Contains(<-recorder.Events, v1alpha1.ClaimConflict) {
		t.Errorf("want one ClaimConflict event")
	}

	index.Release(h.ID)
	if st, _, done = decide(); done || len(st.Conditions) != 0 {
		t.Fatalf("after the release: done %v, conditions %+v", done, st.Conditions)
	}
}
