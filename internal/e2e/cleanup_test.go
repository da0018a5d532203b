package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestCleanupAllMovesTablesSafely: two destination clusters, each with its
// own API server, Flux and ACK stand-in, share one DynamoDB endpoint, as
// two clusters in one AWS account and region do. Three requests are placed
// on the first, an item is put into each table, and the first Destination
// is deleted with cleanup: all. Every request moves to the second cluster
// with its table and data; no table is ever managed from both clusters at
// once; the first cluster keeps no Table; the destination reports its
// cleanup done.
func TestCleanupAllMovesTablesSafely(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	second, err := stack.StartCluster("second", testenv.FluxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := second.Stop(); err != nil {
			t.Logf("stopping the second cluster: %v", err)
		}
	})
	t.Logf("second cluster up in %s", time.Since(start).Round(time.Millisecond))

	labels := map[string]string{"provider": "localstack", "region": "move"}
	old := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "move-old", Labels: labels},
		Spec: v1alpha1.DestinationSpec{Cleanup: v1alpha1.CleanupAll,
			StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store.Name}}}
	if err := stack.AddDestination(ctx, platform, old, destinations.StoreObject{Git: store}); err != nil {
		t.Fatal(err)
	}
	if err := waitTrue(ctx, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: old.Name}}, v1alpha1.ReadyCondition); err != nil {
		t.Fatal(err)
	}
	const ns, n = "team-move", 3
	newNamespace(t, ns)
	names, tables := make([]string, n), make([]string, n)
	for i := range n {
		names[i], tables[i] = fmt.Sprintf("m%d", i), fmt.Sprintf("move-table-%d", i)
		if err := platform.Create(ctx, request(ns, names[i], tables[i], map[string]any{"region": "move"})); err != nil {
			t.Fatal(err)
		}
	}
	// cleanup: all too, and alone on its cluster: when the test ends its
	// cleanup prunes the dependencies there (see removeMoveTest).
	newDest := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "move-new", Labels: labels},
		Spec: v1alpha1.DestinationSpec{Cleanup: v1alpha1.CleanupAll,
			StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store.Name}}}
	t.Cleanup(func() { removeMoveTest(t, ns, names, newDest, second) })
	for i := range n {
		if st := waitReady(t, ns, names[i], 2*time.Minute); st.Destination != old.Name {
			t.Fatalf("%s placed on %s, want %s", names[i], st.Destination, old.Name)
		}
		putItem(t, tables[i], names[i])
	}
	// The second destination comes only now, so that all three start on
	// the first.
	if err := stack.AddDestinationOn(ctx, platform, second, newDest, destinations.StoreObject{Git: store}); err != nil {
		t.Fatal(err)
	}
	if err := waitTrue(ctx, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: newDest.Name}}, v1alpha1.ReadyCondition); err != nil {
		t.Fatal(err)
	}

	w := watchTables(stack.Cluster, second, ns, names[0])
	if err := platform.Delete(ctx, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: old.Name}}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for i := range n {
		testenv.WaitFor(t, 3*time.Minute, fmt.Sprintf("%s Ready on %s", names[i], newDest.Name), func() (bool, string) {
			st, err := status(t, ns, names[i])
			if err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
			return st.Destination == newDest.Name && c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("on %q: %+v", st.Destination, c)
		})
	}
	moved := time.Since(deleted)
	testenv.WaitFor(t, 2*time.Minute, "destination "+old.Name+" gone (cleanup done)", func() (bool, string) {
		var d v1alpha1.Destination
		err := platform.Get(ctx, client.ObjectKeyFromObject(old), &d)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("%v %+v", err, d.Status.Conditions)
	})
	cleaned := time.Since(deleted)
	violations, steps := w.stop()
	t.Logf("moved %d requests in %s; cleanup done %s after the delete; %s's Ready steps: %s",
		n, moved.Round(time.Millisecond), cleaned.Round(time.Millisecond), names[0], strings.Join(steps, " | "))
	for _, v := range violations {
		t.Error(v)
	}

	testenv.WaitForEvent(t, platform, "", old.Name, v1alpha1.CleanupDone)
	// east and west share the old cluster and apply the same dependencies:
	// their namespace, with their Tables in it, must not be pruned.
	var shared corev1.Namespace
	if err := stack.DestinationClient.Get(ctx, client.ObjectKey{Name: "switchyard-dynamodb"}, &shared); err != nil || !shared.DeletionTimestamp.IsZero() {
		t.Errorf("the dependencies' namespace shared with east and west was pruned on the old cluster (get: %v, deleting since %v)", err, shared.DeletionTimestamp)
	}
	for i := range n {
		tbl := &unstructured.Unstructured{}
		tbl.SetGroupVersionKind(tableGVK)
		err := stack.DestinationClient.Get(ctx, client.ObjectKey{Namespace: "switchyard-dynamodb", Name: ns + "." + names[i]}, tbl)
		if !apierrors.IsNotFound(err) {
			t.Errorf("Table %s.%s still on the old cluster after the cleanup was reported done (get: %v)", ns, names[i], err)
		}
		if err := second.Client.Get(ctx, client.ObjectKey{Namespace: "switchyard-dynamodb", Name: ns + "." + names[i]}, tbl); err != nil {
			t.Errorf("Table %s.%s on the new cluster: %v", ns, names[i], err)
		}
		checkItem(t, tables[i], names[i])
		st, err := status(t, ns, names[i])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(st.PlacementReason, old.Name) {
			t.Errorf("%s: placementReason %q does not say it moved from %s", names[i], st.PlacementReason, old.Name)
		}
		testenv.WaitForEvent(t, platform, ns, names[i], "Rescheduled")
	}
}

// tableWatch polls the Tables of both clusters until stopped and records
// every moment a table name had a Table on both at once, and the Ready
// steps one request went through.
type tableWatch struct {
	cancel     context.CancelFunc
	done       chan struct{}
	mu         sync.Mutex
	seen       map[string]bool
	violations []string
	steps      []string
}

func watchTables(a, b *testenv.Cluster, ns, request string) *tableWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &tableWatch{cancel: cancel, done: make(chan struct{}), seen: map[string]bool{}}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			onA, errA := tablesOn(ctx, a.Client)
			onB, errB := tablesOn(ctx, b.Client)
			w.mu.Lock()
			if errA == nil && errB == nil {
				for name, objA := range onA {
					if objB, ok := onB[name]; ok && !w.seen[name] {
						w.seen[name] = true // the first time says it; the rest repeat it
						w.violations = append(w.violations, fmt.Sprintf("%s: a Table for table %s on both clusters at once: %s on %s (deleting: %t, annotations %v) and %s on %s",
							time.Now().Format("15:04:05.000"), name, objA.GetName(), a.Name, !objA.GetDeletionTimestamp().IsZero(), objA.GetAnnotations(), objB.GetName(), b.Name))
					}
				}
			}
			if st, err := statusOf(ctx, ns, request); err == nil {
				if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition); c != nil {
					step := c.Reason + ": " + c.Message
					if len(w.steps) == 0 || w.steps[len(w.steps)-1] != step {
						w.steps = append(w.steps, step)
					}
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *tableWatch) stop() (violations, steps []string) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.violations, w.steps
}

// tablesOn maps the table names of the Tables on a cluster to the objects.
func tablesOn(ctx context.Context, c client.Client) (map[string]*unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(tableGVK.GroupVersion().WithKind("TableList"))
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	out := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		name, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "tableName")
		out[name] = &list.Items[i]
	}
	return out, nil
}

func statusOf(ctx context.Context, ns, name string) (*v1alpha1.RequestStatus, error) {
	st, _, err := readStatus(ctx, requestGVK, ns, name)
	return st, err
}

// removeMoveTest deletes the test's requests and then its new destination,
// so that the other tests do not spread requests onto a cluster that is
// about to stop. That destination is alone on cluster c with cleanup: all,
// so its cleanup prunes the dependencies there.
func removeMoveTest(t *testing.T, ns string, names []string, d *v1alpha1.Destination, c *testenv.Cluster) {
	ctx := context.Background()
	for _, name := range names {
		if err := platform.Delete(ctx, request(ns, name, "", nil)); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting %s: %v", name, err)
		}
	}
	testenv.WaitFor(t, 2*time.Minute, "the move test's requests deleted", func() (bool, string) {
		for _, name := range names {
			if _, err := statusOf(ctx, ns, name); !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("%s: %v", name, err)
			}
		}
		return true, ""
	})
	if err := platform.Delete(ctx, d); client.IgnoreNotFound(err) != nil {
		t.Errorf("deleting destination %s: %v", d.Name, err)
	}
	testenv.WaitFor(t, time.Minute, "destination "+d.Name+" gone", func() (bool, string) {
		err := platform.Get(ctx, client.ObjectKeyFromObject(d), &v1alpha1.Destination{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	// The test API server runs no namespace controller: a pruned
	// namespace stays Terminating.
	var dep corev1.Namespace
	if err := c.Client.Get(ctx, client.ObjectKey{Name: "switchyard-dynamodb"}, &dep); !apierrors.IsNotFound(err) && dep.DeletionTimestamp.IsZero() {
		t.Errorf("cleanup: all of %s, alone on its cluster, did not prune the dependencies' namespace (get: %v)", d.Name, err)
	}
}
