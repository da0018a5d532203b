package router_test

import (
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestConfigIsAcceptedByTheAPIServer sends every manifest under config/
// (except kustomizations) to the API server as a server-side dry run, so a
// typo in a sample, the Deployment or what hack/kind-two-clusters.sh
// applies fails here, not on a user's cluster. (config/destination is
// applied for real by the e2e test, on the destination API server.)
// Namespaces are created for real so namespaced objects can be checked.
func TestConfigIsAcceptedByTheAPIServer(t *testing.T) {
	startRouter(t)
	installPromise(t) // serves DynamoDBRequest, for the sample requests
	files := []string{
		"config/manager/namespace.yaml", "config/manager/manager.yaml",
		"config/rbac/service_account.yaml", "config/rbac/role.yaml", "config/rbac/role_binding.yaml", "config/rbac/metrics_reader_role.yaml", "config/rbac/admission-policy/role.yaml", "config/promises/dynamodb/rbac.yaml",
		"config/samples/gitstatestore.yaml", "config/samples/bucketstatestore.yaml", "config/samples/destinations.yaml", "config/samples/requests.yaml",
		"config/kind/localstack.yaml", "config/kind/router/git-service.yaml", "config/kind/platform.yaml", "config/kind/platform-bucket.yaml",
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, obj := range testenv.MustReadObjects(t, filepath.Join(testenv.RepoRoot(), f)) {
				var err error
				if obj.GetKind() == "Namespace" {
					err = k8s.Create(ctx(t), obj)
					if apierrors.IsAlreadyExists(err) {
						err = nil
					}
				} else {
					err = k8s.Create(ctx(t), obj, client.DryRunAll)
					// The router's RBAC is applied for real (testenv.AsRouter);
					// the API server validates before it finds the name taken.
					if apierrors.IsAlreadyExists(err) {
						err = nil
					}
				}
				if err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

// TestPrinterColumns: `kubectl get` on every kind says at a glance whether
// it works and why not (Ready and its reason), and `-o wide` adds the
// message; a request also says where it went and which commit.
func TestPrinterColumns(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no CRDs")
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		for _, o := range testenv.MustReadObjects(t, f) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &crd); err != nil {
				t.Fatal(err)
			}
			crds = append(crds, &crd)
		}
	}
	request, _, err := controller.RequestCRD(shippedPromise(t))
	if err != nil {
		t.Fatal(err)
	}
	crds = append(crds, request)
	for _, crd := range crds {
		want := map[string]int32{"Ready": 0, "Reason": 0, "Age": 0}
		switch crd.Name {
		case "workflowoutputs.switchyard.dev":
			// Data handed over, with no status: which Job's, and when.
			want = map[string]int32{"Job": 0, "Age": 0}
		case request.Name:
			want["Destination"], want["Commit"] = 0, 0
		default:
			want["Status"] = 1
		}
		got := map[string]int32{}
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			got[c.Name] = c.Priority
		}
		for name, priority := range want {
			if p, ok := got[name]; !ok || p != priority {
				t.Errorf("%s: column %s at priority %d (present: %t), want %d", crd.Name, name, p, ok, priority)
			}
		}
	}
}
