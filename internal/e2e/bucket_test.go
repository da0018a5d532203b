package e2e

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/inspect"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestBucketStoreEndToEnd runs a request through a BucketStateStore: the
// router writes objects to an S3-compatible server, Flux's source-controller
// reads them as a Bucket (provider generic), kustomize-controller applies
// them, and the request is Applied when the Bucket's revision is the one
// the router recorded (or later), then Ready when the table is ACTIVE.
func TestBucketStoreEndToEnd(t *testing.T) {
	ctx := context.Background()
	s3 := stack.S3
	st, err := stack.BucketStore(ctx, platform, "bucket", "platform")
	if err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "north", Labels: map[string]string{"provider": "localstack", "region": "north"}},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.BucketStateStoreKind, Name: st.Name}}}
	if err := stack.AddDestination(ctx, platform, d, destinations.StoreObject{Bucket: st}); err != nil {
		t.Fatal(err)
	}
	// Other tests spread requests over every destination: north goes when
	// this test ends.
	t.Cleanup(func() {
		if err := platform.Delete(ctx, d); err != nil {
			t.Errorf("deleting destination north: %v", err)
		}
		testenv.WaitFor(t, time.Minute, "destination north gone", func() (bool, string) {
			err := platform.Get(ctx, client.ObjectKeyFromObject(d), &v1alpha1.Destination{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	})
	if err := waitTrue(ctx, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "north"}}, v1alpha1.ReadyCondition); err != nil {
		t.Fatal(err)
	}

	newNamespace(t, "team-bucket")
	r := request("team-bucket", "orders", "orders-bucket", map[string]any{"region": "north"})
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs := waitReady(t, "team-bucket", "orders", time.Minute)
	t.Logf("bucket store: Ready %s after the create returned", time.Since(start).Round(time.Millisecond))
	if rs.Destination != "north" || len(rs.Commit) != 64 || rs.Outputs["tableStatus"] != "ACTIVE" {
		t.Fatalf("status %+v", rs)
	}
	applied := meta.FindStatusCondition(rs.Conditions, v1alpha1.AppliedCondition)
	if applied == nil || applied.Status != metav1.ConditionTrue || !strings.Contains(applied.Message, "sha256:") {
		t.Fatalf("Applied %+v; want True naming the Bucket's sha256 revision", applied)
	}
	key := "platform/north/resources/team-bucket/dynamodb/orders/table.yaml"
	if body := string(s3.Get(t, testenv.StateBucket, key)); !strings.Contains(body, "orders-bucket") {
		t.Fatalf("%s: %q", key, body)
	}

	// Flux computed the same revision as the router: the Bucket's artifact
	// is the revision the router recorded for the last write (the
	// request's), since nothing was written after it.
	var b sourcev1.Bucket
	if err := stack.DestinationClient.Get(ctx, types.NamespacedName{Namespace: "flux-system", Name: "switchyard-north"}, &b); err != nil {
		t.Fatal(err)
	}
	// The destination's status shows it at its next load refresh.
	var dest v1alpha1.Destination
	testenv.WaitFor(t, 30*time.Second, "destination north's lastCommit is the Bucket's revision", func() (bool, string) {
		if err := platform.Get(ctx, types.NamespacedName{Name: "north"}, &dest); err != nil {
			return false, err.Error()
		}
		return b.Status.Artifact != nil && b.Status.Artifact.Revision == "sha256:"+dest.Status.LastCommit,
			fmt.Sprintf("Bucket artifact %+v; router's last revision for north %s", b.Status.Artifact, dest.Status.LastCommit)
	})
	if dest.Status.Flux == nil || dest.Status.Flux.Bucket != "flux-system/switchyard-north" {
		t.Errorf("destination status.flux = %+v", dest.Status.Flux)
	}
	// `router state ls` reads the bucket too; revisions are not per
	// directory there, so it shows the revision in the request's status,
	// and says so.
	var out bytes.Buffer
	if err := inspect.State(ctx, platform, "north", &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^north\s+team-bucket\s+dynamodb\s+orders\s+`+rs.Commit[:12]+`\s+\d`).MatchString(out.String()) ||
		!strings.Contains(out.String(), "the revision (digest) in the request's status") {
		t.Errorf("state ls --destination north:\n%s\nwant orders at %s, and why", out.String(), rs.Commit[:12])
	}
	tbl := &unstructured.Unstructured{}
	tbl.SetGroupVersionKind(tableGVK)
	if err := stack.DestinationClient.Get(ctx, types.NamespacedName{Namespace: "switchyard-dynamodb", Name: "team-bucket.orders"}, tbl); err != nil {
		t.Fatalf("Table on the destination: %v", err)
	}

	// Deleting the request removes its object; Flux prunes the Table and
	// the table goes.
	if err := platform.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "request gone", func() (bool, string) {
		st, err := status(t, "team-bucket", "orders")
		if err != nil {
			return apierrors.IsNotFound(err), err.Error()
		}
		return false, fmt.Sprintf("%+v", meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition))
	})
	for _, k := range s3.Keys(t, testenv.StateBucket) {
		if strings.Contains(k, "/team-bucket/") {
			t.Errorf("%s left in the bucket", k)
		}
	}
	err = stack.DestinationClient.Get(ctx, types.NamespacedName{Namespace: "switchyard-dynamodb", Name: "team-bucket.orders"}, tbl)
	if !apierrors.IsNotFound(err) {
		t.Errorf("Table still on the destination after the request went: %v", err)
	}
}
