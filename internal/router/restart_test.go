package router_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestCapacityHoldsAfterRestart fills a destination's capacity with
// QueueRequests, stops the router, creates a DynamoDBRequest and starts
// the router again without its rights on QueueRequests, so that kind's
// cache cannot sync. The new request must not be placed on the full
// destination, neither while QueueRequests cannot be loaded nor after: it
// waits until a destination has room.
func TestCapacityHoldsAfterRestart(t *testing.T) {
	g := testenv.StartGitServer(t)
	stop := startRouter(t)
	installPromise(t)
	url := newStore(t, g, "restart")
	capacity := int32(2)
	newDestination(t, "restart-full", "restart", labels("restart"), func(d *v1alpha1.Destination) {
		d.Spec.Capacity = &capacity
	})
	p := queuePromise("restart")
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	if err := testenv.GrantPromise(ctx(t), k8s, p, routerNamespace); err != nil {
		t.Fatal(err)
	}
	waitReady(t, &v1alpha1.Promise{}, "queue", 30*time.Second)
	newNamespace(t, "team-restart")
	var queues []client.Object
	for i := range 2 {
		q := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(i)}}}
		q.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1", Kind: "QueueRequest"})
		q.SetNamespace("team-restart")
		q.SetName(fmt.Sprintf("q-%d", i))
		if err := k8s.Create(ctx(t), q); err != nil {
			t.Fatal(err)
		}
		queues = append(queues, q)
	}
	testenv.WaitFor(t, 30*time.Second, "both queues written to restart-full", func() (bool, string) {
		files := testenv.Files(t, url)
		return contains(files, "clusters/restart-full/resources/team-restart/queue/q-0/queue.yaml") &&
			contains(files, "clusters/restart-full/resources/team-restart/queue/q-1/queue.yaml"), strings.Join(files, " ")
	})
	stop()

	// The router comes back without its rights on QueueRequests.
	_, binding, err := controller.RequestRBAC(p, routerNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx(t), binding); err != nil {
		t.Fatal(err)
	}
	createRequest(t, "team-restart", "fresh", tableSpec("fresh", "restart", nil))
	startRouter(t)
	t.Cleanup(func() {
		// While the router runs, and may finalize QueueRequests: the Promise
		// goes only after its requests.
		if err := testenv.GrantPromise(ctx(t), k8s, p, routerNamespace); err != nil {
			t.Error(err)
		}
		for _, q := range queues {
			deleteAndWait(t, q)
		}
		deleteAndWait(t, p)
		// Later tests expect the router without rights on QueueRequests.
		role, binding, err := controller.RequestRBAC(p, routerNamespace)
		if err != nil {
			t.Error(err)
			return
		}
		deleteAndWait(t, binding)
		deleteAndWait(t, role)
	})
	st := waitCondition(t, "team-restart", "fresh", v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.Progressing, 30*time.Second)
	if st.Destination != "" {
		t.Fatalf("placed on %q while QueueRequests could not be loaded", st.Destination)
	}
	testenv.WaitFor(t, 30*time.Second, "the wait names the Promise and why", func() (bool, string) {
		st, err := requestStatus(t, "team-restart", "fresh")
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ScheduledCondition)
		return st.Destination == "" && c != nil && strings.Contains(c.Message, "queue ("+v1alpha1.MissingPermissions+")"), fmt.Sprintf("%q: %+v", st.Destination, c)
	})

	if err := testenv.GrantPromise(ctx(t), k8s, p, routerNamespace); err != nil {
		t.Fatal(err)
	}
	st = waitCondition(t, "team-restart", "fresh", v1alpha1.ScheduledCondition, metav1.ConditionFalse, v1alpha1.NoMatchingDestination, 30*time.Second)
	if st.Destination != "" || contains(testenv.Files(t, url), requestFile("restart-full", "team-restart", "fresh")) {
		t.Fatalf("placed on the full destination after a restart: %+v", st)
	}
	// Room elsewhere: the waiting request goes there.
	newDestination(t, "restart-free", "restart", labels("restart"))
	if st := waitReadyRequest(t, "team-restart", "fresh"); st.Destination != "restart-free" {
		t.Fatalf("placed on %q, want restart-free", st.Destination)
	}
}
