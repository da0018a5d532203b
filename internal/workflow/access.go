package workflow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Access returns the ServiceAccount a Pipeline runs as, in the namespace
// its Job runs in (r.Namespace), and the RBAC it gets: creating the
// WorkflowOutput that hands its output over (where the Job runs), reading
// the object it runs for (get on that one resource, in the object's
// namespace), and the Pipeline's own spec.rbac.permissions; nothing else.
// A permission without resourceNamespace applies where the object is (for
// a Promise, where the Job runs), as in Kratix; one naming a namespace
// applies there; "*" everywhere (a ClusterRole).
func Access(r Run) []client.Object {
	sa := ServiceAccountName(r.Promise, r.Type, r.Action, r.Pipeline.Metadata.Name)
	labels := map[string]string{ManagedByLabel: ManagedBy, PipelineNameLabel: r.Pipeline.Metadata.Name}
	setLabel(labels, PromiseNameLabel, r.Promise)
	meta := func(name, namespace string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: r.Namespace}}
	home := r.Object.Namespace // where "" points
	if r.Object.ClusterScoped {
		home = r.Namespace
	}
	perNamespace := map[string][]rbacv1.PolicyRule{
		r.Namespace: {{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"workflowoutputs"}, Verbs: []string{"create"}}},
	}
	var cluster []rbacv1.PolicyRule
	read := rbacv1.PolicyRule{APIGroups: []string{r.Object.GVK.Group}, Resources: []string{r.Object.Plural}, Verbs: []string{"get"}}
	if r.Object.ClusterScoped {
		read.ResourceNames = []string{r.Object.Name}
		cluster = append(cluster, read)
	} else {
		perNamespace[r.Object.Namespace] = append(perNamespace[r.Object.Namespace], read)
	}
	if r.Pipeline.Spec.RBAC != nil {
		for _, p := range r.Pipeline.Spec.RBAC.Permissions {
			switch p.ResourceNamespace {
			case "":
				perNamespace[home] = append(perNamespace[home], p.PolicyRule)
			case "*":
				cluster = append(cluster, p.PolicyRule)
			default:
				perNamespace[p.ResourceNamespace] = append(perNamespace[p.ResourceNamespace], p.PolicyRule)
			}
		}
	}
	out := []client.Object{&corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(sa, r.Namespace),
		// Its token is mounted by the Pod spec, not by every Pod that
		// names the account by mistake.
		AutomountServiceAccountToken: ptr(false),
	}}
	for _, where := range slices.Sorted(maps.Keys(perNamespace)) {
		name := sa
		if where != r.Namespace {
			name = bindingName(sa, r.Namespace)
		}
		out = append(out,
			&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta(name, where), Rules: perNamespace[where]},
			&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta(name, where),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: subject})
	}
	if len(cluster) > 0 {
		name := bindingName(sa, r.Namespace)
		out = append(out,
			&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: meta(name, ""), Rules: cluster},
			&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"}, ObjectMeta: meta(name, ""),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}, Subjects: subject})
	}
	return out
}

// bindingName names RBAC for sa of namespace ns outside ns, where the same
// account name from another namespace must not collide.
func bindingName(sa, ns string) string {
	name := "switchyard-" + sa + "-" + ns
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return cut(name, 50) + "-" + hex.EncodeToString(sum[:])[:12]
}

// Rules are the rules the pipelines declare (spec.rbac.permissions): the
// router must hold them to grant them (RBAC forbids granting more than one
// holds), so `router rbac` prints them. The contract's own rules (create
// WorkflowOutputs, get the object) are in the router's shipped role and
// the request kind's.
func Rules(pipelines []v1alpha1.Pipeline) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, p := range pipelines {
		if p.Spec.RBAC == nil {
			continue
		}
		for _, perm := range p.Spec.RBAC.Permissions {
			out = append(out, perm.PolicyRule)
		}
	}
	return out
}

// CheckPermissions refuses declared permissions that would apply where the
// Job runs (the router's namespace, which holds the router's credentials):
// one naming that namespace, and, for a Promise's workflows, one without
// resourceNamespace. The router holds rights there of its own, so RBAC
// would not stop it granting them.
func CheckPermissions(r Run) error {
	if r.Pipeline.Spec.RBAC == nil {
		return nil
	}
	for i, p := range r.Pipeline.Spec.RBAC.Permissions {
		where := p.ResourceNamespace
		if where == "" && r.Object.ClusterScoped {
			where = r.Namespace
		}
		if where == r.Namespace {
			return fmt.Errorf("pipeline %s: spec.rbac.permissions[%d] applies in namespace %s, where pipelines run beside the router's own credentials; name another namespace",
				r.Pipeline.Metadata.Name, i, r.Namespace)
		}
	}
	return nil
}
