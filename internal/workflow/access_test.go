package workflow

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func perm(ns string, verbs []string, group, resource string) v1alpha1.PipelinePermission {
	return v1alpha1.PipelinePermission{ResourceNamespace: ns, PolicyRule: rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}}
}

func TestAccess(t *testing.T) {
	configmaps := rbacv1.PolicyRule{APIGroups: []string{"switchyard.dev"}, Resources: []string{"workflowoutputs"}, Verbs: []string{"create"}}
	readPostgres := rbacv1.PolicyRule{APIGroups: []string{"db.example.com"}, Resources: []string{"postgreses"}, Verbs: []string{"get"}}
	secrets := perm("", []string{"get"}, "", "secrets")
	explicitOwn := perm("team-a", []string{"list"}, "apps", "deployments")
	other := perm("other", []string{"list", "watch"}, "", "configmaps")
	other2 := perm("other", []string{"get"}, "", "secrets")
	third := perm("third", []string{"get"}, "", "pods")
	cluster := perm("*", []string{"list"}, "", "namespaces")

	type key struct{ kind, namespace string }
	tests := []struct {
		name  string
		edit  func(*Run)
		perms []v1alpha1.PipelinePermission
		rules map[key][]rbacv1.PolicyRule // Role / ClusterRole rules by namespace
	}{
		{"no permissions", func(*Run) {}, nil, map[key][]rbacv1.PolicyRule{
			{"Role", "team-a"}: {configmaps, readPostgres},
		}},
		{"own namespace", func(*Run) {}, []v1alpha1.PipelinePermission{secrets, explicitOwn}, map[key][]rbacv1.PolicyRule{
			{"Role", "team-a"}: {configmaps, readPostgres, secrets.PolicyRule, explicitOwn.PolicyRule},
		}},
		{"other namespaces and cluster", func(*Run) {}, []v1alpha1.PipelinePermission{secrets, other, cluster, third, other2}, map[key][]rbacv1.PolicyRule{
			{"Role", "team-a"}:  {configmaps, readPostgres, secrets.PolicyRule},
			{"Role", "other"}:   {other.PolicyRule, other2.PolicyRule},
			{"Role", "third"}:   {third.PolicyRule},
			{"ClusterRole", ""}: {cluster.PolicyRule},
		}},
		{"in the router's namespace", func(r *Run) { r.Namespace = "switchyard-system" }, []v1alpha1.PipelinePermission{secrets, other, cluster}, map[key][]rbacv1.PolicyRule{
			{"Role", "switchyard-system"}: {configmaps},
			{"Role", "team-a"}:            {readPostgres, secrets.PolicyRule},
			{"Role", "other"}:             {other.PolicyRule},
			{"ClusterRole", ""}:           {cluster.PolicyRule},
		}},
		{"promise workflow", func(r *Run) {
			r.Type, r.Action = TypePromise, ActionConfigure
			r.Object = Object{GVK: v1alpha1.GroupVersion.WithKind("Promise"), Plural: "promises", Name: "postgres", UID: "p-uid", ClusterScoped: true}
			r.Namespace = "switchyard-system"
		}, []v1alpha1.PipelinePermission{secrets}, map[key][]rbacv1.PolicyRule{
			{"Role", "switchyard-system"}: {configmaps, secrets.PolicyRule},
			{"ClusterRole", ""}:           {{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"promises"}, Verbs: []string{"get"}, ResourceNames: []string{"postgres"}}},
		}},
		{"long names", func(r *Run) {
			r.Promise = strings.Repeat("p", 60)
			r.Namespace = strings.Repeat("n", 63)
			r.Object.Namespace = r.Namespace
		}, []v1alpha1.PipelinePermission{other, cluster}, map[key][]rbacv1.PolicyRule{
			{"Role", strings.Repeat("n", 63)}: {configmaps, readPostgres},
			{"Role", "other"}:                 {other.PolicyRule},
			{"ClusterRole", ""}:               {cluster.PolicyRule},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRun()
			tt.edit(&r)
			if tt.perms != nil {
				r.Pipeline.Spec.RBAC = &v1alpha1.PipelineRBAC{Permissions: tt.perms}
			}
			objs := Access(r)
			sa := ServiceAccountName(r.Promise, r.Type, r.Action, r.Pipeline.Metadata.Name)
			roles := map[key]client.Object{}
			bindings := map[key]client.Object{}
			sas := 0
			for _, o := range objs {
				if n := o.GetName(); len(n) > 63 || len(validation.IsDNS1123Subdomain(n)) > 0 {
					t.Errorf("%T %q: not a valid name of at most 63 characters", o, n)
				}
				if o.GetLabels()[ManagedByLabel] != ManagedBy {
					t.Errorf("%T %s: no %s label", o, o.GetName(), ManagedByLabel)
				}
				var subjects []rbacv1.Subject
				switch o := o.(type) {
				case *corev1.ServiceAccount:
					sas++
					if o.Name != sa || o.Namespace != r.Namespace {
						t.Errorf("ServiceAccount %s/%s, want %s/%s", o.Namespace, o.Name, r.Namespace, sa)
					}
					if o.AutomountServiceAccountToken == nil || *o.AutomountServiceAccountToken {
						t.Errorf("ServiceAccount automountServiceAccountToken = %v, want false", o.AutomountServiceAccountToken)
					}
					continue
				case *rbacv1.Role:
					k := key{"Role", o.Namespace}
					if roles[k] != nil {
						t.Errorf("two Roles in %q", o.Namespace)
					}
					roles[k] = o
					if !reflect.DeepEqual(o.Rules, tt.rules[k]) {
						t.Errorf("Role %s/%s rules = %+v, want %+v", o.Namespace, o.Name, o.Rules, tt.rules[k])
					}
					continue
				case *rbacv1.ClusterRole:
					k := key{"ClusterRole", ""}
					if roles[k] != nil {
						t.Error("two ClusterRoles")
					}
					roles[k] = o
					if !reflect.DeepEqual(o.Rules, tt.rules[k]) {
						t.Errorf("ClusterRole %s rules = %+v, want %+v", o.Name, o.Rules, tt.rules[k])
					}
					continue
				case *rbacv1.RoleBinding:
					bindings[key{"Role", o.Namespace}] = o
					subjects = o.Subjects
					if o.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: o.Name}) {
						t.Errorf("RoleBinding %s/%s roleRef = %+v", o.Namespace, o.Name, o.RoleRef)
					}
				case *rbacv1.ClusterRoleBinding:
					bindings[key{"ClusterRole", ""}] = o
					subjects = o.Subjects
					if o.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: o.Name}) {
						t.Errorf("ClusterRoleBinding %s roleRef = %+v", o.Name, o.RoleRef)
					}
				default:
					t.Errorf("unexpected %T %s", o, o.GetName())
					continue
				}
				want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: r.Namespace}}
				if !reflect.DeepEqual(subjects, want) {
					t.Errorf("%T %s/%s subjects = %+v, want %+v", o, o.GetNamespace(), o.GetName(), subjects, want)
				}
			}
			if sas != 1 {
				t.Errorf("%d ServiceAccounts, want 1", sas)
			}
			if len(objs) != 1+2*len(tt.rules) {
				t.Errorf("%d objects, want %d", len(objs), 1+2*len(tt.rules))
			}
			for k := range tt.rules {
				role, binding := roles[k], bindings[k]
				if role == nil || binding == nil {
					t.Errorf("%s in %q: role %v, binding %v", k.kind, k.namespace, role != nil, binding != nil)
					continue
				}
				if role.GetName() != binding.GetName() {
					t.Errorf("%s in %q: role %s, binding %s", k.kind, k.namespace, role.GetName(), binding.GetName())
				}
				if k == (key{"Role", r.Namespace}) && role.GetName() != sa {
					t.Errorf("Role in the run namespace is %s, want %s", role.GetName(), sa)
				}
			}
		})
	}
}

// TestAccessNamesDoNotCollide: RBAC outside the run namespace is named
// for the run namespace too, so the same account name from two namespaces
// gets two Roles and two ClusterRoles.
func TestAccessNamesDoNotCollide(t *testing.T) {
	names := map[string]string{}
	for _, ns := range []string{"team-a", "team-b", strings.Repeat("n", 62) + "a", strings.Repeat("n", 62) + "b"} {
		r := testRun()
		r.Namespace, r.Object.Namespace = ns, ns
		r.Pipeline.Spec.RBAC = &v1alpha1.PipelineRBAC{Permissions: []v1alpha1.PipelinePermission{
			perm("other", []string{"get"}, "", "pods"), perm("*", []string{"list"}, "", "namespaces"),
		}}
		for _, o := range Access(r) {
			if o.GetNamespace() == ns {
				continue
			}
			k := fmt.Sprintf("%T %s/%s", o, o.GetNamespace(), o.GetName())
			if prev, dup := names[k]; dup {
				t.Errorf("%s made for %s and %s", k, prev, ns)
			}
			names[k] = ns
		}
	}
}

func TestRules(t *testing.T) {
	a, b := testPipeline("a"), testPipeline("b")
	a.Spec.RBAC = &v1alpha1.PipelineRBAC{Permissions: []v1alpha1.PipelinePermission{
		perm("", []string{"get"}, "", "secrets"), perm("other", []string{"list"}, "", "pods"),
	}}
	b.Spec.RBAC = &v1alpha1.PipelineRBAC{Permissions: []v1alpha1.PipelinePermission{perm("*", []string{"list"}, "", "namespaces")}}
	c := testPipeline("c") // no rbac
	got := Rules([]v1alpha1.Pipeline{a, c, b})
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Rules = %+v, want %+v", got, want)
	}
	// Every rule Access grants for a pipeline's own permissions is in Rules;
	// the contract's (create WorkflowOutputs, read the object) are the router's
	// own (its shipped role, the request kind's role).
	for _, p := range []v1alpha1.Pipeline{a, b, c} {
		r := testRun()
		r.Pipeline = p
		for _, o := range Access(r) {
			var rules []rbacv1.PolicyRule
			switch o := o.(type) {
			case *rbacv1.Role:
				rules = o.Rules
			case *rbacv1.ClusterRole:
				rules = o.Rules
			}
			for _, rule := range rules {
				if rule.Resources[0] == r.Object.Plural || rule.Resources[0] == "workflowoutputs" {
					continue
				}
				found := false
				for _, w := range got {
					found = found || reflect.DeepEqual(w, rule)
				}
				if !found {
					t.Errorf("pipeline %s: Access grants %+v, Rules lacks it", p.Metadata.Name, rule)
				}
			}
		}
	}
	if got := Rules(nil); len(got) != 0 {
		t.Errorf("Rules(nil) = %+v, want none", got)
	}
}
