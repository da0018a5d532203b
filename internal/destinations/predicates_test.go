package destinations

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// TestStoreChangedWakesDestinationsOnlyWhenItConcernsThem: a store's
// revision moves with every commit, and each of its status patches used
// to wake every destination of the store (100 destination reconciles per
// store patch in the steady bench). Only its spec and its Ready condition
// concern them.
func TestStoreChangedWakesDestinationsOnlyWhenItConcernsThem(t *testing.T) {
	git := func(gen int64, rev string, ready metav1.ConditionStatus) client.Object {
		s := &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: "bench", Generation: gen}}
		s.Status.Revision = rev
		s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: ready, Reason: "Reconciled", Message: "fetched main at " + rev}}
		return s
	}
	bucket := func(ready metav1.ConditionStatus) client.Object {
		s := &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: "bench", Generation: 1}}
		s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: ready, Reason: "Reconciled"}}
		return s
	}
	for _, tc := range []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"revision moved", git(1, "aaaa", metav1.ConditionTrue), git(1, "bbbb", metav1.ConditionTrue), false},
		{"spec changed", git(1, "aaaa", metav1.ConditionTrue), git(2, "aaaa", metav1.ConditionTrue), true},
		{"git store not ready", git(1, "aaaa", metav1.ConditionTrue), git(1, "aaaa", metav1.ConditionFalse), true},
		{"git store ready again", git(1, "aaaa", metav1.ConditionFalse), git(1, "bbbb", metav1.ConditionTrue), true},
		{"bucket not ready", bucket(metav1.ConditionTrue), bucket(metav1.ConditionFalse), true},
		{"bucket unchanged", bucket(metav1.ConditionTrue), bucket(metav1.ConditionTrue), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := storeChanged.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if !storeChanged.Create(event.CreateEvent{Object: bucket(metav1.ConditionTrue)}) || !storeChanged.Delete(event.DeleteEvent{Object: bucket(metav1.ConditionTrue)}) {
		t.Error("a store created or deleted must wake its destinations")
	}
}
