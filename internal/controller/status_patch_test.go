package controller

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

var requestGVK = schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBRequest"}

// TestStatusPatchRefusesStaleObject: a status computed from a stale copy
// (a cache behind the API server) must not overwrite a newer status. The
// patch carries the copy's resourceVersion, so the API server refuses it
// with a conflict, and the reconcile is retried on a fresh read. It needs
// a real API server: the fake client ignores resourceVersion in status
// patches.
func TestStatusPatchRefusesStaleObject(t *testing.T) {
	ctx := context.Background()
	c := requestAPIServer(t)
	obj := createRequest(t, c)
	stale := obj.DeepCopy()
	// Someone (another reconcile, seen by the server but not yet by the
	// cache) records commit bbbb.
	fresh := obj.DeepCopy()
	fresh.Object["status"] = map[string]any{"destination": "east", "commit": "bbbb"}
	if err := c.Status().Update(ctx, fresh); err != nil {
		t.Fatal(err)
	}

	r := &RequestReconciler{Client: c, GVK: requestGVK, Promise: "dynamodb"}
	before, err := readStatus(stale)
	if err != nil {
		t.Fatal(err)
	}
	st := before.DeepCopy()
	st.Destination, st.Commit = "east", "cccc"
	err = r.patchStatus(ctx, stale, before, st, nil)
	if !apierrors.IsConflict(err) {
		t.Errorf("patch from a stale copy: got %v, want a conflict", err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(requestGVK)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	if commit, _, _ := unstructured.NestedString(got.Object, "status", "commit"); commit != "bbbb" {
		t.Errorf("status.commit = %q after a stale patch, want bbbb kept", commit)
	}

	// From the fresh copy the same patch goes through.
	before, _ = readStatus(got)
	st = before.DeepCopy()
	st.Commit = "cccc"
	if err := r.patchStatus(ctx, got, before, st, nil); err != nil {
		t.Fatalf("patch from a fresh copy: %v", err)
	}
}

// createRequest creates request default/orders and returns it as stored.
func createRequest(t *testing.T, c client.Client) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"tableName": "orders", "hashKey": map[string]any{"name": "id", "type": "S"}}}}
	obj.SetGroupVersionKind(requestGVK)
	obj.SetNamespace(metav1.NamespaceDefault)
	obj.SetName("orders")
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// requestAPIServer starts a control plane (KUBEBUILDER_ASSETS) serving the
// request kind of the shipped DynamoDB Promise, as the router installs it.
func requestAPIServer(t *testing.T) client.WithWatch {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run with KUBEBUILDER_ASSETS=\"$(hack/controlplane.sh)\"")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "promises", "dynamodb", "promise.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.Promise
	if err := yaml.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	crd, _, err := RequestCRD(&p)
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStatusPatchNotSkippedOnStaleCopy: a reconcile that decides from a
// copy older than the router's own last status patch (the cache has not
// seen that patch yet) must not take "the same as the copy" for "nothing
// to write": the server holds what the router wrote since. The router's
// own patches do not wake a request (ownstatus.Changed), so a skipped write
// would be lost until something else changed. The patch is sent and
// refused, and the reconcile runs again on a fresh copy. Once the copy is
// current, an unchanged status costs no API call.
func TestStatusPatchNotSkippedOnStaleCopy(t *testing.T) {
	ctx := context.Background()
	c := requestAPIServer(t)
	obj := createRequest(t, c)
	stale := obj.DeepCopy()
	patches := 0
	counted := interceptor.NewClient(c, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		}})
	r := &RequestReconciler{Client: counted, GVK: requestGVK, Promise: "dynamodb"}

	// The router writes commit bbbb.
	before, _ := readStatus(obj)
	st := before.DeepCopy()
	st.Commit = "bbbb"
	if err := r.patchStatus(ctx, obj, before, st, nil); err != nil {
		t.Fatal(err)
	}
	// A later reconcile, woken by a change on the destination, reads the
	// copy from before that write and decides no commit, which is what
	// that copy shows.
	before, _ = readStatus(stale)
	if err := r.patchStatus(ctx, stale, before, before.DeepCopy(), nil); !apierrors.IsConflict(err) {
		t.Errorf("deciding from a copy older than the router's own last write: got %v, want a conflict (a decision from a fresh copy)", err)
	}

	fresh := &unstructured.Unstructured{}
	fresh.SetGroupVersionKind(requestGVK)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		t.Fatal(err)
	}
	before, _ = readStatus(fresh)
	n := patches
	if err := r.patchStatus(ctx, fresh, before, before.DeepCopy(), nil); err != nil {
		t.Fatal(err)
	}
	if patches != n {
		t.Errorf("an unchanged status on a current copy was patched (%d patches); want none", patches-n)
	}
}
