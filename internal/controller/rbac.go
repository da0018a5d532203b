package controller

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// The router's rights on request kinds. Request kinds appear at run time,
// in groups nobody knows when the router is installed, and the router may
// not grant itself rights (that needs escalate, which is cluster admin).
// So the platform admin grants them per Promise, with what `router rbac`
// prints, and the Promise says MissingPermissions until then.
var (
	requestVerbs  = []string{"get", "list", "watch", "update", "patch"}
	statusVerbs   = []string{"get", "update", "patch"}
	finalizerVerb = []string{"update"}
)

// RouterServiceAccount is the name of the router's ServiceAccount in
// config/rbac.
const RouterServiceAccount = "switchyard-router"

// RequestRBAC returns the ClusterRole and ClusterRoleBinding that give the
// router's ServiceAccount (in namespace) exactly the rights it needs on the
// request kind of p, and no more.
func RequestRBAC(p *v1alpha1.Promise, namespace string) (*rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, error) {
	crd, _, err := RequestCRD(p)
	if err != nil {
		return nil, nil, err
	}
	group, plural := crd.Spec.Group, crd.Spec.Names.Plural
	meta := metav1.ObjectMeta{Name: "switchyard-request-" + p.Name, Labels: map[string]string{v1alpha1.PromiseLabel: p.Name}}
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: meta,
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{group}, Resources: []string{plural}, Verbs: requestVerbs},
			{APIGroups: []string{group}, Resources: []string{plural + "/status"}, Verbs: statusVerbs},
			{APIGroups: []string{group}, Resources: []string{plural + "/finalizers"}, Verbs: finalizerVerb},
		},
	}
	// The router grants each pipeline its declared permissions, which it
	// may do only if it holds them itself.
	if p.Spec.Workflows != nil && p.Spec.Workflows.Resource != nil {
		r := p.Spec.Workflows.Resource
		for _, rule := range workflow.Rules(append(append([]v1alpha1.Pipeline{}, r.Configure...), r.Delete...)) {
			if !hasRule(role.Rules, rule) {
				role.Rules = append(role.Rules, rule)
			}
		}
	}
	binding := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: *meta.DeepCopy(),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: meta.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: RouterServiceAccount, Namespace: namespace}},
	}
	return role, binding, nil
}

func hasRule(rules []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	for _, x := range rules {
		if equality.Semantic.DeepEqual(x, r) {
			return true
		}
	}
	return false
}

// missingPermissions asks the API server (SelfSubjectAccessReview) which of
// the rights RequestRBAC grants the router lacks on the request kind, as
// "verb resource" strings; none means the kind can be served.
func missingPermissions(ctx context.Context, c client.Client, group, plural string) ([]string, error) {
	var wants []right
	for _, v := range requestVerbs {
		wants = append(wants, right{v, plural, ""})
	}
	for _, v := range statusVerbs {
		wants = append(wants, right{v, plural, "status"})
	}
	return missingRights(ctx, c, group, wants)
}

// right is a verb on a resource (and subresource) of some group.
type right struct{ verb, resource, sub string }

// missingRights asks the API server (SelfSubjectAccessReview) which of
// wants, in group, the router lacks, as "verb resource" strings. Asking
// first, rather than trying, names every missing right at once and leaves
// no refused requests in the audit log.
func missingRights(ctx context.Context, c client.Client, group string, wants []right) ([]string, error) {
	var missing []string
	for _, w := range wants {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: group, Resource: w.resource, Subresource: w.sub, Verb: w.verb}}}
		if err := c.Create(ctx, review); err != nil {
			return nil, fmt.Errorf("asking the API server for the router's rights on %s.%s: %w", w.resource, group, err)
		}
		if !review.Status.Allowed {
			name := w.resource
			if w.sub != "" {
				name += "/" + w.sub
			}
			missing = append(missing, w.verb+" "+name)
		}
	}
	return missing, nil
}

// missingMessage says what is missing and how to grant it.
func missingMessage(p *v1alpha1.Promise, group string, missing []string) string {
	return fmt.Sprintf("the router may not %s in group %s; grant them with `router rbac %s | kubectl apply -f -` (a ClusterRole for this kind only)",
		strings.Join(missing, ", "), group, p.Name)
}
