package router_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// allowedWildcards are the only rules with a wildcard. Request kinds are
// defined by Promises at run time in groups nobody knows in advance, so
// their rules cannot name them; they grant no create or delete (see the
// RBAC markers on RequestReconciler).
var allowedWildcards = []rbacv1.PolicyRule{
	{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "patch", "update", "watch"}},
	{APIGroups: []string{"*"}, Resources: []string{"*/status"}, Verbs: []string{"get", "patch", "update"}},
}

// TestRBACHasNoNewWildcards fails when a rule in config/rbac uses a
// wildcard verb anywhere, or a wildcard group or resource other than the
// request kinds' two rules.
func TestRBACHasNoNewWildcards(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "rbac", "*.yaml"))
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
				if slices.Contains(r.Verbs, "*") {
					t.Errorf("%s %s: wildcard verb in %+v", filepath.Base(f), role.Name, r)
				}
				wild := slices.ContainsFunc(append(append([]string{}, r.APIGroups...), r.Resources...), func(s string) bool { return strings.Contains(s, "*") })
				if wild && !slices.ContainsFunc(allowedWildcards, func(a rbacv1.PolicyRule) bool {
					return slices.Equal(a.APIGroups, r.APIGroups) && slices.Equal(a.Resources, r.Resources) && slices.Equal(a.Verbs, r.Verbs)
				}) {
					t.Errorf("%s %s: new wildcard rule %+v; name the groups and resources, or document why in allowedWildcards", filepath.Base(f), role.Name, r)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no RBAC rules found in config/rbac")
	}
}
