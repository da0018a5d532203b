package ownstatus

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func object(rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"tableName": "orders"}}}
	u.SetAPIVersion("aws.switchyard.dev/v1alpha1")
	u.SetKind("DynamoDBRequest")
	u.SetNamespace("team-a")
	u.SetName("orders")
	u.SetGeneration(1)
	u.SetResourceVersion(rv)
	return u
}

// TestChangedSkipsOwnStatus: the controller's own status patch (status and
// resourceVersion change, nothing else) does not pass; what a reconcile
// reads from the object does.
func TestChangedSkipsOwnStatus(t *testing.T) {
	base := object("1")
	with := func(f func(u *unstructured.Unstructured)) *unstructured.Unstructured {
		u := object("2")
		f(u)
		return u
	}
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		new  *unstructured.Unstructured
		want bool
	}{
		{"status only", with(func(u *unstructured.Unstructured) {
			u.Object["status"] = map[string]any{"commit": "cccc"}
		}), false},
		{"spec", with(func(u *unstructured.Unstructured) { u.SetGeneration(2) }), true},
		{"annotation", with(func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{"switchyard.dev/rewrite": "1"})
		}), true},
		{"labels", with(func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"team": "a"}) }), true},
		{"deletion", with(func(u *unstructured.Unstructured) { u.SetDeletionTimestamp(&now) }), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Changed.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	for name, ok := range map[string]bool{
		"create":  Changed.Create(event.CreateEvent{Object: base}),
		"delete":  Changed.Delete(event.DeleteEvent{Object: base}),
		"generic": Changed.Generic(event.GenericEvent{Object: base}),
	} {
		if !ok {
			t.Errorf("%s event dropped", name)
		}
	}
}

// TestPendingUntilSeen: after a write, a copy at any other version is not
// taken as current until the cache shows the written version; then the
// entry is gone, and Forget drops one for an object that went.
func TestPendingUntilSeen(t *testing.T) {
	var p Pending
	if !p.Seen(object("5")) {
		t.Fatal("no write recorded: a copy must count as current")
	}
	p.Wrote(object("7"))
	for _, rv := range []string{"5", "6", "8"} {
		if p.Seen(object(rv)) {
			t.Errorf("copy at %s after a write at 7: counted as current", rv)
		}
	}
	if !p.Seen(object("7")) {
		t.Error("copy at the written version 7: not counted as current")
	}
	if !p.Seen(object("5")) {
		t.Error("once seen, the write must be forgotten; an older copy now counts (nothing pending)")
	}
	p.Wrote(object("9"))
	p.Forget(types.NamespacedName{Namespace: "team-a", Name: "orders"})
	if !p.Seen(object("3")) || len(p.rv) != 0 {
		t.Errorf("after Forget: %v pending", p.rv)
	}
}
