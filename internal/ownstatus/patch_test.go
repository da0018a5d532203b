package ownstatus_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
)

// TestPatchAfterOwnWrite, on a real API server (a fake client ignores
// resourceVersion in status patches): a status decided from a copy older
// than the controller's own last write is sent and refused, even when it
// equals that copy; from a current copy, an unchanged status costs no call.
func TestPatchAfterOwnWrite(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run with KUBEBUILDER_ASSETS=\"$(hack/controlplane.sh)\"")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	base, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	patches := 0
	c := interceptor.NewClient(base, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		}})
	ctx := context.Background()
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "east"},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: "s"}}}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	stale := d.DeepCopy()

	var p ownstatus.Pending
	d.Status.Placements = 1
	if err := p.Patch(ctx, c, d, stale, true); err != nil {
		t.Fatal(err)
	}
	// Decided from the copy before that write: no placements, as it shows.
	same := stale.DeepCopy()
	if err := p.Patch(ctx, c, same, stale, false); !apierrors.IsConflict(err) {
		t.Errorf("a status decided from a copy older than the own write: got %v, want a conflict", err)
	}

	fresh := &v1alpha1.Destination{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(d), fresh); err != nil {
		t.Fatal(err)
	}
	if fresh.Status.Placements != 1 {
		t.Errorf("status.placements = %d, want the own write's 1 kept", fresh.Status.Placements)
	}
	n := patches
	if err := p.Patch(ctx, c, fresh.DeepCopy(), fresh, false); err != nil {
		t.Fatal(err)
	}
	if patches != n {
		t.Errorf("an unchanged status on a current copy was patched (%d patches); want none", patches-n)
	}
}
