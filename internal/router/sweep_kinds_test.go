package router_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// swapAPI is the spec.api of Promise swap serving kind in group
// test.switchyard.dev.
func swapAPI(kind string) runtime.RawExtension {
	plural := strings.ToLower(kind) + "s"
	return runtime.RawExtension{Raw: fmt.Appendf(nil, `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
"metadata":{"name":"%[2]s.test.switchyard.dev"},
"spec":{"group":"test.switchyard.dev","scope":"Namespaced",
"names":{"kind":"%[1]s","listKind":"%[1]sList","plural":"%[2]s","singular":"%[3]s"},
"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
"properties":{"spec":{"type":"object","properties":{"size":{"type":"integer"}}}}}}}]}}`, kind, plural, strings.TrimSuffix(plural, "s"))}
}

// grantSwap lets the router serve p's kind under a role of its own, so
// the rights on the kind p served before stay. It returns the role and
// its binding.
func grantSwap(t *testing.T, p *v1alpha1.Promise, suffix string) []client.Object {
	t.Helper()
	role, binding, err := controller.RequestRBAC(p, routerNamespace)
	if err != nil {
		t.Fatal(err)
	}
	role.Name += suffix
	binding.Name += suffix
	binding.RoleRef.Name = role.Name
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx(t), o); err != nil {
			t.Fatal(err)
		}
	}
	return []client.Object{role, binding}
}

// TestSweepKeepsRequestsOfTheOldKind: a Promise's spec.api may change its
// request kind. The router installs the new kind's CRD beside the old one,
// whose requests live on, and whose directories have the same
// resources/<namespace>/<promise>/<name> layout. The sweep, run as the
// router's ServiceAccount, must take them for owned, remove only a real
// orphan, and remove nothing for the Promise while the old kind cannot be
// listed.
func TestSweepKeepsRequestsOfTheOldKind(t *testing.T) {
	g := testenv.StartGitServer(t)
	startRouter(t)
	url := newStore(t, g, "swap")
	newDestination(t, "swap-1", "swap", labels("swap"))
	newNamespace(t, "team-swap")

	p := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "swap"}, Spec: v1alpha1.PromiseSpec{
		API:                  swapAPI("SwapQueue"),
		DestinationSelectors: queuePromise("swap").Spec.DestinationSelectors,
		Resources:            queuePromise("swap").Spec.Resources,
		Dependencies:         queuePromise("swap").Spec.Dependencies,
	}}
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	rights := grantSwap(t, p, "")
	oldBinding := rights[1]
	waitReady(t, &v1alpha1.Promise{}, "swap", 30*time.Second)

	old := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(1)}}}
	old.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1", Kind: "SwapQueue"})
	old.SetNamespace("team-swap")
	old.SetName("old")
	if err := k8s.Create(ctx(t), old); err != nil {
		t.Fatal(err)
	}
	// Runs before the router stops, with its rights: the old kind's
	// controller, in this router, lets its request go; then the Promise
	// and the old CRD go, and last the rights.
	t.Cleanup(func() {
		rights = append(rights, grantSwap(t, p, "-cleanup")...)
		deleteAndWait(t, old)
		deleteAndWait(t, p)
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		crd.SetName("swapqueues.test.switchyard.dev")
		deleteAndWait(t, crd)
		for _, o := range rights {
			deleteAndWait(t, o)
		}
	})
	oldFile := "clusters/swap-1/resources/team-swap/swap/old/queue.yaml"
	testenv.WaitFor(t, 30*time.Second, "the old kind's request written", func() (bool, string) {
		files := testenv.Files(t, url)
		return contains(files, oldFile), strings.Join(files, " ")
	})

	// The Promise now serves another kind.
	var got v1alpha1.Promise
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: "swap"}, &got); err != nil {
		t.Fatal(err)
	}
	got.Spec.API = swapAPI("SwapStream")
	if err := k8s.Update(ctx(t), &got); err != nil {
		t.Fatal(err)
	}
	rights = append(rights, grantSwap(t, &got, "-new")...)
	testenv.WaitFor(t, 30*time.Second, "Promise swap Ready serving SwapStream", func() (bool, string) {
		var p v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: "swap"}, &p); err != nil {
			return false, err.Error()
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1alpha1.ReadyCondition {
				return c.Status == "True" && c.ObservedGeneration == p.Generation && strings.Contains(c.Message, "SwapStream"), c.Message
			}
		}
		return false, "no Ready condition"
	})
	ghost := "clusters/swap-1/resources/team-swap/swap/ghost/queue.yaml"
	pushOrphans(t, url, ghost)

	// The sweep reads as the router does: as its ServiceAccount.
	asRouter, err := client.NewWithWatch(routerConfig, client.Options{Scheme: router.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	stores := destinations.NewStores(t.TempDir())
	t.Cleanup(stores.Close)
	openStore(t, stores, "swap")
	index := placement.New()
	index.SetPrimed("swap", func() bool { return true })
	// No grace: the second sweep removes what the first found.
	s := &controller.Sweeper{Client: asRouter, APIReader: asRouter, Stores: stores, Index: index,
		Recorder: events.NewFakeRecorder(10), Grace: time.Nanosecond}
	sweep := func() controller.SweepResult {
		t.Helper()
		var res controller.SweepResult
		for range 2 {
			var err error
			if res, err = s.Sweep(ctx(t)); err != nil {
				t.Fatal(err)
			}
			t.Logf("removed %v; pending %v; incomplete %v", res.Removed, res.Pending, res.Incomplete)
		}
		return res
	}

	// Only the orphan goes.
	res := sweep()
	if want := "swap-1/resources/team-swap/swap/ghost"; !slices.Equal(res.Removed, []string{want}) {
		t.Errorf("removed %v, want [%s]", res.Removed, want)
	}
	files := testenv.Files(t, url)
	if !contains(files, oldFile) {
		t.Fatalf("the sweep removed the files of request team-swap/old, of the Promise's old kind SwapQueue: %v", files)
	}
	if contains(files, ghost) {
		t.Errorf("the orphan is still there")
	}

	// Without rights on the old kind its requests cannot be listed:
	// nothing of the Promise's is removed.
	ghost = "clusters/swap-1/resources/team-swap/swap/ghost-2/queue.yaml"
	pushOrphans(t, url, ghost)
	openStore(t, stores, "swap")
	if err := k8s.Delete(ctx(t), oldBinding); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the router's rights on SwapQueues gone", func() (bool, string) {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1", Kind: "SwapQueueList"})
		err := asRouter.List(ctx(t), l)
		return err != nil, fmt.Sprint(err)
	})
	res = sweep()
	if len(res.Removed) > 0 {
		t.Errorf("without rights on the old kind the sweep removed %v", res.Removed)
	}
	if !slices.ContainsFunc(res.Incomplete, func(s string) bool { return strings.HasPrefix(s, "Promise swap:") }) {
		t.Errorf("the sweep does not say Promise swap is incomplete: %v", res.Incomplete)
	}
	files = testenv.Files(t, url)
	if !contains(files, oldFile) || !contains(files, ghost) {
		t.Errorf("files removed: %v", files)
	}
}

// openStore makes GitStateStore name Ready in stores (a clone of its
// own), as the store reconciler does, or brings its clone up to date.
func openStore(t *testing.T, stores *destinations.Stores, name string) {
	t.Helper()
	rec := &destinations.GitStateStoreReconciler{StoreReconciler: &destinations.StoreReconciler{Client: k8s, SecretReader: k8s, Stores: stores, Index: placement.New()}}
	if _, err := rec.Reconcile(ctx(t), ctrl.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
		t.Fatal(err)
	}
}
