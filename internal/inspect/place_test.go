package inspect_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/inspect"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestPlaceDryRun runs `router place --dry-run` against a real API server
// that serves the DynamoDB Promise's request kind: the preview shows the
// CRD's defaults, a request the API server refuses is reported refused
// (not "Placed" with "<no value>" in its manifests), and a file holding
// Namespaces and requests previews the requests and skips the rest.
func TestPlaceDryRun(t *testing.T) {
	_, c := testenv.StartTestControlPlane(t)
	ctx := context.Background()
	gvk := servePromise(ctx, t, c)
	dest := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "eu", Labels: map[string]string{"provider": "localstack", "region": "eu-west-1"}},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: "GitStateStore", Name: "state"}}}
	must(t, c.Create(ctx, dest))
	meta.SetStatusCondition(&dest.Status.Conditions, metav1.Condition{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Test", Message: "test"})
	must(t, c.Status().Update(ctx, dest))
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}))

	request := func(ns, name string, spec string) string {
		return "apiVersion: " + gvk.GroupVersion().String() + "\nkind: " + gvk.Kind + "\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: " + spec + "\n"
	}
	for _, tc := range []struct {
		name     string
		file     string
		err      string   // "" when place succeeds
		want     []string // in the output
		wantNone []string
	}{
		{
			name: "defaults from the CRD",
			file: request("team-a", "orders", "{tableName: orders, hashKey: {name: id, type: S}}"),
			want: []string{"# team-a/orders -> destination eu", "billingMode: PAY_PER_REQUEST", "tableName: orders"},
		},
		{
			name:     "refused: PROVISIONED without capacities",
			file:     request("team-a", "sessions", "{tableName: sessions, hashKey: {name: id, type: S}, billingMode: PROVISIONED}"),
			err:      "1 of 1 requests",
			want:     []string{"# team-a/sessions would be refused: the API server refuses it", "billingMode PROVISIONED needs readCapacityUnits and writeCapacityUnits"},
			wantNone: []string{"-> destination", "<no value>"},
		},
		{
			name: "a file with Namespaces and requests",
			file: "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\n" +
				"apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b}\n---\n" +
				request("team-a", "events", "{tableName: events, hashKey: {name: id, type: S}}") + "---\n" +
				request("team-b", "audit", "{tableName: audit, hashKey: {name: id, type: S}, billingMode: PROVISIONED, readCapacityUnits: 5, writeCapacityUnits: 5}"),
			want: []string{"# skipping Namespace team-a: not a request", "# skipping Namespace team-b: not a request",
				"# team-a/events -> destination eu", "# team-b/audit: namespace team-b is created by the file", "# team-b/audit -> destination eu",
				"readCapacityUnits: 5", "eu/resources/team-b/dynamodb/audit/table.yaml"},
		},
		{
			name: "a namespace nowhere",
			file: request("team-c", "lost", "{tableName: lost, hashKey: {name: id, type: S}}"),
			err:  "would be refused",
			want: []string{"namespace team-c does not exist, and the file does not create it"},
		},
		{
			name: "nothing to place",
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team-a}\n",
			err:  "holds no request",
			want: []string{"# skipping ConfigMap c: not a request (no Promise serves v1 ConfigMap)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "request.yaml")
			must(t, os.WriteFile(file, []byte(tc.file), 0o644))
			var out bytes.Buffer
			err := inspect.Place(ctx, c, file, &out)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			for _, s := range tc.want {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range append(tc.wantNone, "<no value>") {
				if strings.Contains(out.String(), s) {
					t.Errorf("output has %q:\n%s", s, out.String())
				}
			}
		})
	}
	// A dry run stores nothing: neither requests nor the file's Namespace.
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	must(t, c.List(ctx, list))
	if len(list.Items) != 0 {
		t.Errorf("place --dry-run stored %d requests", len(list.Items))
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "team-b"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("place --dry-run created namespace team-b (get: %v)", err)
	}
}

// servePromise installs the DynamoDB Promise and its request CRD, as the
// Promise controller does, and returns the request kind.
func servePromise(ctx context.Context, t *testing.T, c client.Client) schema.GroupVersionKind {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "promises", "dynamodb", "promise.yaml"))
	must(t, err)
	var p v1alpha1.Promise
	must(t, yaml.UnmarshalStrict(b, &p))
	crd, gvk, err := controller.RequestCRD(&p)
	must(t, err)
	must(t, c.Create(ctx, crd))
	testenv.WaitFor(t, 30*time.Second, "the request CRD to be served", func() (bool, string) {
		var got apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), &got); err != nil {
			return false, err.Error()
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				list := &unstructured.UnstructuredList{}
				list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
				if err := c.List(ctx, list); err != nil {
					return false, err.Error()
				}
				return true, ""
			}
		}
		return false, "not Established"
	})
	must(t, c.Create(ctx, &p))
	p.Status.APIVersion, p.Status.Kind = gvk.GroupVersion().String(), gvk.Kind
	must(t, c.Status().Update(ctx, &p))
	return gvk
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
