package router_test

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/claims"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/placement"
	"github.com/switchyard-dev/switchyard/internal/probe"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestReadFailuresNeverDelete reconciles a placed request, and then the
// same request being deleted, with a client whose reads of destinations
// and Promises fail (the API server answering 503). The reconciler must
// return the error and change nothing: the file stays in the repository
// and the finalizer stays on the request (Argo CD's ApplicationSet lesson).
func TestReadFailuresNeverDelete(t *testing.T) {
	_, url := scenario(t, "readfail")
	stopRouter := lastStop
	newDestination(t, "readfail-1", "readfail", labels("readfail"))
	newNamespace(t, "team-readfail")
	createRequest(t, "team-readfail", "kept", tableSpec("kept", "readfail", nil))
	waitReadyRequest(t, "team-readfail", "kept")
	file := requestFile("readfail-1", "team-readfail", "kept")
	head := testenv.Git(t, testenv.Clone(t, url), "rev-parse", "HEAD")

	// A second set of reconcilers (the running router is the first), with
	// reads that fail. It opens its own clone of the store.
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	failing := interceptor.NewClient(wc, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if _, ok := list.(*v1alpha1.DestinationList); ok {
				return apierrors.NewServiceUnavailable("injected: listing destinations failed")
			}
			return c.List(ctx, list, opts...)
		},
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*v1alpha1.Promise); ok {
				return apierrors.NewServiceUnavailable("injected: reading the Promise failed")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	stores := destinations.NewStores(t.TempDir())
	defer stores.Close()
	index := placement.New()
	storeRec := &destinations.GitStateStoreReconciler{StoreReconciler: &destinations.StoreReconciler{Client: wc, SecretReader: wc, Stores: stores, Index: index}}
	if _, err := storeRec.Reconcile(ctx(t), ctrl.Request{NamespacedName: client.ObjectKey{Name: "readfail"}}); err != nil {
		t.Fatal(err)
	}
	rr := &controller.RequestReconciler{Client: failing, Recorder: events.NewFakeRecorder(100), Stores: stores, Index: index, Claims: claims.New(),
		Feedback: &feedback.Watchers{SecretReader: wc}, Prober: probe.New(wc, 1), GVK: requestGVK, Promise: "dynamodb"}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "team-readfail", Name: "kept"}}

	check := func(when string) {
		t.Helper()
		if _, err := rr.Reconcile(ctx(t), req); err == nil || !apierrors.IsServiceUnavailable(err) {
			t.Errorf("%s: reconcile returned %v, want the injected failure", when, err)
		}
		if !contains(testenv.Files(t, url), file) {
			t.Fatalf("%s: the request's file was removed after a failed read", when)
		}
		if now := testenv.Git(t, testenv.Clone(t, url), "rev-parse", "HEAD"); now != head {
			t.Errorf("%s: a commit was made after a failed read (%s -> %s)", when, head, now)
		}
	}
	check("placed")

	// Deleting: stop the running router first, so only the failing
	// reconciler sees the deletion; then start a new one, which lets the
	// request go.
	stopRouter()
	u := dynamoDBRequest("team-readfail", "kept", nil)
	if err := k8s.Delete(ctx(t), u); err != nil {
		t.Fatal(err)
	}
	check("deleting")
	if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(u), u); err != nil || len(u.GetFinalizers()) == 0 {
		t.Errorf("the request lost its finalizer after failed reads (get: %v)", err)
	}
	startRouter(t)
	waitGone(t, u, 30*time.Second)
}
