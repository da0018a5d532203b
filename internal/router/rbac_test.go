package router_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestRBACHasNoWildcards fails on any wildcard verb, group or resource in
// a Role or ClusterRole the project ships: the router's rights are named
// one by one, and request kinds get theirs per Promise (`router rbac`).
func TestRBACHasNoWildcards(t *testing.T) {
	var files []string
	for _, dir := range []string{"config/rbac", "config/rbac/admission-policy", "config/promises/*", "config/destination"} {
		f, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), dir, "*.yaml"))
		files = append(files, f...)
	}
	checked := 0
	for _, f := range files {
		objs, err := testenv.ReadObjects(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
				continue
			}
			var role rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
				t.Fatal(err)
			}
			for _, r := range role.Rules {
				checked++
				all := slices.Concat(r.Verbs, r.APIGroups, r.Resources)
				if slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, "*") }) {
					t.Errorf("%s %s %s: wildcard in %+v; name the verbs, groups and resources", filepath.Base(f), o.GetKind(), role.Name, r)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no RBAC rules found")
	}
}

// TestShippedPromiseRBAC checks that config/promises/<name>/rbac.yaml is
// what `router rbac -f promise.yaml` prints for each shipped Promise.
func TestShippedPromiseRBAC(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "promises", "*"))
	if err != nil || len(dirs) < 2 {
		t.Fatalf("shipped Promises: %v %v", dirs, err)
	}
	for _, dir := range dirs {
		if filepath.Base(dir) == "kratix-examples" {
			continue // Kratix-format files, imported into Switchyard Promises: no rbac.yaml
		}
		t.Run(filepath.Base(dir), func(t *testing.T) { checkPromiseRBAC(t, dir) })
	}
}

func checkPromiseRBAC(t *testing.T, dir string) {
	role, binding, err := controller.RequestRBAC(readPromise(t, filepath.Join(dir, "promise.yaml")), router.DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := testenv.ReadObjects(filepath.Join(dir, "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []any{role, binding} {
		w, _ := yaml.Marshal(want)
		if i >= len(shipped) {
			t.Fatalf("rbac.yaml has %d objects, want 2", len(shipped))
		}
		got, _ := yaml.Marshal(shipped[i].Object)
		if !bytes.Equal(normalise(t, w), normalise(t, got)) {
			t.Errorf("rbac.yaml object %d is stale; regenerate with `router rbac -f promise.yaml > rbac.yaml`:\n got %s\nwant %s", i, got, w)
		}
	}
}

// shippedPromise is config/promises/dynamodb/promise.yaml.
func shippedPromise(t *testing.T) *v1alpha1.Promise {
	t.Helper()
	return readPromise(t, filepath.Join(testenv.RepoRoot(), "config", "promises", "dynamodb", "promise.yaml"))
}

func readPromise(t *testing.T, path string) *v1alpha1.Promise {
	t.Helper()
	objs, err := testenv.ReadObjects(path)
	if err != nil || len(objs) != 1 {
		t.Fatalf("reading the Promise: %v (%d objects)", err, len(objs))
	}
	var p v1alpha1.Promise
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// normalise re-encodes YAML so that key order and empty fields compare equal.
func normalise(t *testing.T, b []byte) []byte {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out, _ := yaml.Marshal(m)
	return out
}

// TestRouterRightsAreLeast asks the API server (SubjectAccessReview)
// what the router's ServiceAccount may do with the RBAC config/rbac ships
// and the DynamoDB Promise's grant: no Secrets beyond its namespace, nothing
// outside the groups it needs, and no request kind it was not granted.
func TestRouterRightsAreLeast(t *testing.T) {
	if err := testenv.GrantPromise(ctx(t), k8s, shippedPromise(t), routerNamespace); err != nil {
		t.Fatal(err)
	}
	tests := []rightCase{
		{"", "secrets", "", "get", routerNamespace, true},
		{"", "secrets", "", "get", "", false},
		{"", "secrets", "", "list", "", false},
		{"", "secrets", "", "watch", "", false},
		{"", "secrets", "", "list", routerNamespace, false},
		{"", "secrets", "", "get", "team-a", false},
		{"", "secrets", "", "get", "kube-system", false},
		{"", "configmaps", "", "get", "", false},
		{"", "configmaps", "", "create", "", false},
		// Workflows: it runs Jobs, reads a failed one's Pod (its container
		// statuses), hands each Pipeline a ServiceAccount and the RBAC the
		// Pipeline declares, in the requests' namespaces too (only rights
		// it holds itself: RBAC's escalation check), and reads and removes
		// WorkflowOutputs.
		// All in its own namespace, out of the tenants' reach.
		{"batch", "jobs", "", "create", routerNamespace, true},
		{"batch", "jobs", "", "create", "team-a", false},
		{"", "pods", "", "list", routerNamespace, true},
		{"", "pods", "", "list", "team-a", false},
		{"", "pods", "", "delete", routerNamespace, false},
		{"", "pods", "exec", "create", routerNamespace, false},
		{"", "pods", "log", "get", routerNamespace, false},
		{"switchyard.dev", "workflowoutputs", "", "get", routerNamespace, true},
		{"switchyard.dev", "workflowoutputs", "", "get", "team-a", false},
		{"", "serviceaccounts", "", "create", routerNamespace, true},
		{"", "serviceaccounts", "", "create", "team-a", false},
		{"", "serviceaccounts", "", "delete", routerNamespace, false},
		{"rbac.authorization.k8s.io", "roles", "", "create", "team-a", true},
		{"rbac.authorization.k8s.io", "roles", "", "delete", "team-a", false},
		{"", "nodes", "proxy", "get", "", false},
		{"", "serviceaccounts", "token", "create", routerNamespace, false},
		{"apps", "deployments", "", "list", "", false},
		{"rbac.authorization.k8s.io", "clusterroles", "", "escalate", "", false},
		{"rbac.authorization.k8s.io", "clusterroles", "", "bind", "", false},
		{"rbac.authorization.k8s.io", "clusterrolebindings", "", "create", "", true},
		{"rbac.authorization.k8s.io", "clusterrolebindings", "", "delete", "", false},
		{"coordination.k8s.io", "leases", "", "update", routerNamespace, true},
		{"coordination.k8s.io", "leases", "", "update", "kube-system", false},
		{"switchyard.dev", "destinations", "", "watch", "", true},
		// It creates and deletes the Promises it imports from Kratix ones.
		{"switchyard.dev", "promises", "", "create", "", true},
		{"switchyard.dev", "promises", "", "delete", "", true},
		{"platform.kratix.io", "promises", "", "watch", "", true},
		{"platform.kratix.io", "promises", "status", "patch", "", true},
		{"platform.kratix.io", "promises", "finalizers", "update", "", true},
		{"platform.kratix.io", "promises", "", "create", "", false},
		{"platform.kratix.io", "promises", "", "delete", "", false},
		{"aws.switchyard.dev", "dynamodbrequests", "", "watch", "team-a", true},
		{"aws.switchyard.dev", "dynamodbrequests", "status", "patch", "team-a", true},
		{"aws.switchyard.dev", "dynamodbrequests", "", "delete", "team-a", false},
		{"aws.switchyard.dev", "dynamodbrequests", "", "create", "team-a", false},
		{"test.switchyard.dev", "queuerequests", "", "list", "", false},
		{"dynamodb.services.k8s.aws", "tables", "", "list", "", false},
		// The finalizer at admission is opt-in (TestAdmissionPolicyRoleIsLeast):
		// create on MutatingAdmissionPolicies would let the router's token
		// mutate almost any object at admission.
		{"admissionregistration.k8s.io", "mutatingadmissionpolicies", "", "create", "", false},
		{"admissionregistration.k8s.io", "mutatingadmissionpolicybindings", "", "create", "", false},
		{"admissionregistration.k8s.io", "mutatingadmissionpolicies", "", "update", "", false},
		{"admissionregistration.k8s.io", "mutatingadmissionpolicybindings", "", "delete", "", false},
		{"admissionregistration.k8s.io", "mutatingadmissionpolicies", "", "get", "", false},
		{"admissionregistration.k8s.io", "validatingadmissionpolicies", "", "create", "", false},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "create", "", false},
	}
	checkRights(t, tests)
}

// TestAdmissionPolicyRoleIsLeast: the opt-in ClusterRole of
// config/rbac/admission-policy grants the rights the finalizer at admission
// uses (TestFinalizerAtAdmission runs with it) and nothing else.
func TestAdmissionPolicyRoleIsLeast(t *testing.T) {
	revoke, err := testenv.GrantAdmissionPolicy(ctx(t), k8s, routerNamespace)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := revoke(ctx(t)); err != nil {
			t.Error(err)
		}
	})
	const group = "admissionregistration.k8s.io"
	var tests []rightCase
	for _, res := range []string{"mutatingadmissionpolicies", "mutatingadmissionpolicybindings"} {
		for _, verb := range []string{"get", "create", "update", "delete"} {
			tests = append(tests, rightCase{group, res, "", verb, "", true})
		}
		for _, verb := range []string{"list", "watch", "patch", "deletecollection"} {
			tests = append(tests, rightCase{group, res, "", verb, "", false})
		}
	}
	for _, res := range []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		tests = append(tests, rightCase{group, res, "", "create", "", false})
	}
	tests = append(tests, rightCase{"", "secrets", "", "get", "", false})
	checkRights(t, tests)
}

// rightCase is a right and whether the router's ServiceAccount should
// hold it.
type rightCase struct {
	group, resource, sub, verb, namespace string
	allowed                               bool
}

// checkRights asks the API server (SubjectAccessReview) whether the
// router's ServiceAccount holds each right, one subtest each.
func checkRights(t *testing.T, tests []rightCase) {
	t.Helper()
	user := testenv.RouterUser(routerNamespace)
	for _, tt := range tests {
		name := strings.Trim(strings.Join([]string{tt.verb, tt.group, tt.resource, tt.sub, tt.namespace}, "/"), "/")
		t.Run(name, func(t *testing.T) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + routerNamespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Group: tt.group, Resource: tt.resource,
					Subresource: tt.sub, Verb: tt.verb, Namespace: tt.namespace}}}
			if err := k8s.Create(ctx(t), sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != tt.allowed {
				t.Errorf("allowed = %v, want %v (%s)", sar.Status.Allowed, tt.allowed, sar.Status.Reason)
			}
		})
	}
}
