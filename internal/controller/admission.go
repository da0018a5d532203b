package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/metrics"
)

// The rights the finalizer at admission needs are opt-in, so there is no
// kubebuilder:rbac marker for them: create on MutatingAdmissionPolicies
// lets its holder mutate almost any object at admission (Secrets, Pods,
// RBAC objects), and RBAC cannot narrow create by name. The admin grants
// them with ClusterRole AdmissionPolicyRole (config/rbac/admission-policy,
// or the chart's finalizerAtAdmission.enabled); this list must match it.
// The router reads its policies with the uncached reader, so it needs no
// list or watch on them.
var admissionPolicyRights = func() []right {
	var out []right
	for _, res := range []string{"mutatingadmissionpolicies", "mutatingadmissionpolicybindings"} {
		for _, verb := range []string{"get", "create", "update", "delete"} {
			out = append(out, right{verb: verb, resource: res})
		}
	}
	return out
}()

// AdmissionPolicyRole is the opt-in ClusterRole that grants the router the
// rights on MutatingAdmissionPolicies.
const AdmissionPolicyRole = "switchyard-router-admission-policy"

// rightsRecheck is how long the router trusts its last answer about those
// rights. RBAC changes make no event: a router granted them later notices
// within this time (or at its next start).
const rightsRecheck = 5 * time.Minute

// FinalizerPolicyName is the name of the MutatingAdmissionPolicy, and of
// its binding, that adds the router's finalizer to new requests of Promise
// promise.
func FinalizerPolicyName(promise string) string {
	const prefix = "switchyard-finalizer-"
	name := prefix + promise
	if len(name) > 253 { // a Promise name may itself be 253 characters
		sum := sha256.Sum256([]byte(promise))
		name = prefix + promise[:253-len(prefix)-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

// finalizerPatch adds the finalizer unless the request carries it: a
// creator may set it, and a JSON patch adding a duplicate would fail.
var finalizerPatch = fmt.Sprintf(`!has(object.metadata.finalizers) ?
  [JSONPatch{op: "add", path: "/metadata/finalizers", value: [%[1]s]}] :
  (%[1]s in object.metadata.finalizers ? [] :
    [JSONPatch{op: "add", path: "/metadata/finalizers/-", value: %[1]s}])`, strconv.Quote(v1alpha1.Finalizer))

// finalizerPolicy is the policy and binding for p's request kind, whose
// CRD is crd. They belong to p (owner reference), and the router also
// deletes them when it lets p go.
// It matches creates of the given versions only (see settledVersions).
func finalizerPolicy(p *v1alpha1.Promise, crd *apiextensionsv1.CustomResourceDefinition, versions []string) (*admissionv1.MutatingAdmissionPolicy, *admissionv1.MutatingAdmissionPolicyBinding) {
	meta := metav1.ObjectMeta{
		Name:   FinalizerPolicyName(p.Name),
		Labels: map[string]string{v1alpha1.PromiseLabel: p.Name},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Promise",
			Name: p.Name, UID: p.UID}},
	}
	// Ignore: should the policy fail, the request is still created, and
	// the reconciler adds the finalizer as it does without a policy.
	ignore, never := admissionv1.Ignore, admissionv1.NeverReinvocationPolicy
	policy := &admissionv1.MutatingAdmissionPolicy{ObjectMeta: meta, Spec: admissionv1.MutatingAdmissionPolicySpec{
		MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionv1.RuleWithOperations{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule: admissionv1.Rule{APIGroups: []string{crd.Spec.Group}, APIVersions: versions,
					Resources: []string{crd.Spec.Names.Plural}},
			},
		}}},
		Mutations: []admissionv1.Mutation{{PatchType: admissionv1.PatchTypeJSONPatch,
			JSONPatch: &admissionv1.JSONPatch{Expression: finalizerPatch}}},
		FailurePolicy:      &ignore,
		ReinvocationPolicy: never,
	}}
	binding := &admissionv1.MutatingAdmissionPolicyBinding{ObjectMeta: *meta.DeepCopy(),
		Spec: admissionv1.MutatingAdmissionPolicyBindingSpec{PolicyName: policy.Name}}
	return policy, binding
}

// Finalizer modes, as the metric's mode label.
const (
	modeAdmission = "admission"
	modeUpdate    = "update"
)

// schemaSettle is how long a request version's schema must have been
// published before a policy may match it. The API server's policy plugin
// re-reads the OpenAPI v3 paths every 5 s (k8s.io/apiserver
// pkg/admission/plugin/policy/mutating/patch/typeconverter.go) and, until
// it has a kind's schema, answers creates the policy matches with 503
// ServiceUnavailable, whatever the failurePolicy: a policy installed with
// a new CRD would refuse the first requests.
const schemaSettle = 8 * time.Second

// schemaClock remembers when the router first saw each group/version in
// the API server's OpenAPI v3 paths.
type schemaClock struct {
	mu      sync.Mutex
	openapi openapi.Client
	seen    map[string]time.Time
}

// settledVersions returns the served versions of crd whose schema the API
// server has published for schemaSettle, and when the next one settles (0
// when none is pending).
func (c *schemaClock) settledVersions(crd *apiextensionsv1.CustomResourceDefinition, now time.Time) ([]string, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	paths, err := c.openapi.Paths()
	if err != nil {
		return nil, 0, fmt.Errorf("reading the API server's OpenAPI v3 paths: %w", err)
	}
	var settled []string
	var wait time.Duration
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		gv := "apis/" + crd.Spec.Group + "/" + v.Name
		if _, ok := paths[gv]; !ok {
			wait = time.Second
			continue
		}
		first, ok := c.seen[gv]
		if !ok {
			first = now
			c.seen[gv] = now
		}
		if left := schemaSettle - now.Sub(first); left > 0 {
			wait = max(wait, left)
			continue
		}
		settled = append(settled, v.Name)
	}
	return settled, wait, nil
}

// ensureFinalizerPolicy installs p's finalizer policy and binding and sets
// p's FinalizerAtAdmission condition and the mode metric. It fails nothing:
// without a policy the request reconciler adds the finalizer with an update,
// as it does for requests created before the policy. It returns when to
// look again: for versions whose schema is not settled yet, or for rights
// the router may be granted.
func (r *PromiseReconciler) ensureFinalizerPolicy(ctx context.Context, p *v1alpha1.Promise, crd *apiextensionsv1.CustomResourceDefinition) time.Duration {
	cond, wait := r.installFinalizerPolicy(ctx, p, crd)
	cond.Type = v1alpha1.FinalizerAtAdmissionCondition
	cond.ObservedGeneration = p.Generation
	meta.SetStatusCondition(&p.Status.Conditions, cond)
	admission := 0.0
	if cond.Status == metav1.ConditionTrue {
		admission = 1
	}
	metrics.FinalizerMode.WithLabelValues(p.Name, modeAdmission).Set(admission)
	metrics.FinalizerMode.WithLabelValues(p.Name, modeUpdate).Set(1 - admission)
	return wait
}

// installFinalizerPolicy does the work of ensureFinalizerPolicy and returns
// the condition without its type. It checks, in order, what an admin can
// act on: whether the API server serves the API (granting rights would not
// help otherwise), the router's rights, the kind's schema.
func (r *PromiseReconciler) installFinalizerPolicy(ctx context.Context, p *v1alpha1.Promise, crd *apiextensionsv1.CustomResourceDefinition) (metav1.Condition, time.Duration) {
	name := FinalizerPolicyName(p.Name)
	byUpdate := fmt.Sprintf("the router adds %s to each request with an update", v1alpha1.Finalizer)
	notAdmission := func(reason, msg string) metav1.Condition {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg + "; " + byUpdate}
	}
	unavailable := notAdmission(v1alpha1.AdmissionPolicyUnavailable,
		fmt.Sprintf("the API server does not serve %s MutatingAdmissionPolicy", admissionv1.SchemeGroupVersion))
	failed := func(err error) metav1.Condition {
		return notAdmission(v1alpha1.AdmissionPolicyFailed, fmt.Sprintf("installing MutatingAdmissionPolicy %s: %v", name, err))
	}
	_, err := r.RESTMapper().RESTMapping(admissionv1.SchemeGroupVersion.WithKind("MutatingAdmissionPolicy").GroupKind(), admissionv1.SchemeGroupVersion.Version)
	switch {
	case meta.IsNoMatchError(err):
		return unavailable, 0
	case err != nil:
		return failed(err), 0
	}
	missing, err := r.missingAdmissionRights(ctx)
	switch {
	case err != nil:
		return failed(err), 0
	case len(missing) > 0:
		return notAdmission(v1alpha1.AdmissionPolicyNotPermitted, fmt.Sprintf("the router may not %s in group %s: the finalizer at admission is opt-in, as these rights let the router's token mutate almost any object at admission; to opt in, grant ClusterRole %s (kubectl apply -k config/rbac/admission-policy, or the Helm value finalizerAtAdmission.enabled=true) and the router installs the policy within %s",
			strings.Join(missing, ", "), admissionv1.GroupName, AdmissionPolicyRole, rightsRecheck)), rightsRecheck
	}
	versions, wait, err := r.settledVersions(crd)
	switch {
	case err != nil:
		return failed(err), 0
	case len(versions) == 0:
		return notAdmission(v1alpha1.AdmissionPolicyPending, fmt.Sprintf("waiting until the API server has published the schema of %s for %s before MutatingAdmissionPolicy %s matches it",
			crd.Spec.Names.Kind, schemaSettle, name)), wait
	}
	policy, binding := finalizerPolicy(p, crd, versions)
	err = r.apply(ctx, policy, func(have client.Object) bool {
		return equality.Semantic.DeepDerivative(policy.Spec, have.(*admissionv1.MutatingAdmissionPolicy).Spec)
	})
	if err == nil {
		err = r.apply(ctx, binding, func(have client.Object) bool {
			return equality.Semantic.DeepDerivative(binding.Spec, have.(*admissionv1.MutatingAdmissionPolicyBinding).Spec)
		})
	}
	switch {
	case meta.IsNoMatchError(err):
		return unavailable, wait
	case apierrors.IsForbidden(err):
		// The rights went since the router last asked: ask again next time.
		r.forgetAdmissionRights()
		return notAdmission(v1alpha1.AdmissionPolicyNotPermitted, fmt.Sprintf("installing MutatingAdmissionPolicy %s: %v; the finalizer at admission needs ClusterRole %s", name, err, AdmissionPolicyRole)), rightsRecheck
	case err != nil:
		return failed(err), wait
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.AdmissionPolicy,
		Message: fmt.Sprintf("MutatingAdmissionPolicy %s adds %s to new %s requests (%s); the router makes no update for it",
			name, v1alpha1.Finalizer, crd.Spec.Names.Kind, strings.Join(versions, ", "))}, wait
}

// missingAdmissionRights returns the rights of admissionPolicyRights the
// router lacks. One answer serves every Promise for rightsRecheck, so
// reconciles cost no extra requests; an answer with rights missing is
// logged when it is new, not at every reconcile.
func (r *PromiseReconciler) missingAdmissionRights(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	if !r.rightsAsked.IsZero() && time.Since(r.rightsAsked) < rightsRecheck {
		defer r.mu.Unlock()
		return r.rightsMissing, nil
	}
	r.mu.Unlock()
	missing, err := missingRights(ctx, r.Client, admissionv1.GroupName, admissionPolicyRights)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	changed := r.rightsAsked.IsZero() || !slices.Equal(missing, r.rightsMissing)
	r.rightsAsked, r.rightsMissing = time.Now(), missing
	r.mu.Unlock()
	if changed && len(missing) > 0 {
		log.FromContext(ctx).Info("Adding the finalizer to requests by update: the finalizer at admission is opt-in and not granted",
			"missing", missing, "clusterRole", AdmissionPolicyRole)
	}
	return missing, nil
}

// forgetAdmissionRights makes the next missingAdmissionRights ask again.
func (r *PromiseReconciler) forgetAdmissionRights() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rightsAsked = time.Time{}
}

// settledVersions is schemaClock.settledVersions with the clock made on
// first use, from the manager's config.
func (r *PromiseReconciler) settledVersions(crd *apiextensionsv1.CustomResourceDefinition) ([]string, time.Duration, error) {
	r.mu.Lock()
	if r.schemas == nil {
		dc, err := discovery.NewDiscoveryClientForConfig(r.Manager.GetConfig())
		if err != nil {
			r.mu.Unlock()
			return nil, 0, err
		}
		r.schemas = &schemaClock{openapi: dc.OpenAPIV3(), seen: map[string]time.Time{}}
	}
	clock := r.schemas
	r.mu.Unlock()
	return clock.settledVersions(crd, time.Now())
}

// apply creates want, or updates it when current(have) says it differs.
func (r *PromiseReconciler) apply(ctx context.Context, want client.Object, current func(have client.Object) bool) error {
	have := want.DeepCopyObject().(client.Object)
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: want.GetName()}, have)
	switch {
	case apierrors.IsNotFound(err):
		return r.Create(ctx, want.DeepCopyObject().(client.Object))
	case err != nil:
		return err
	case current(have) && equality.Semantic.DeepEqual(have.GetLabels(), want.GetLabels()):
		return nil
	}
	want = want.DeepCopyObject().(client.Object)
	want.SetResourceVersion(have.GetResourceVersion())
	return r.Update(ctx, want)
}

// deleteFinalizerPolicy removes p's policy and binding, if any. A router
// without the opt-in rights (the default) does not try, rather than leave
// refused deletes in the audit log, and one denied them leaves them to the
// garbage collector (they are owned by p) rather than keep p forever.
func (r *PromiseReconciler) deleteFinalizerPolicy(ctx context.Context, p *v1alpha1.Promise) error {
	name := FinalizerPolicyName(p.Name)
	objs := []client.Object{
		&admissionv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&admissionv1.MutatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}},
	}
	if missing, err := r.missingAdmissionRights(ctx); err == nil && len(missing) > 0 {
		objs = nil
	}
	for _, o := range objs {
		if err := r.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) && !meta.IsNoMatchError(err) {
			return fmt.Errorf("deleting %T %s: %w", o, name, err)
		}
	}
	metrics.FinalizerMode.DeleteLabelValues(p.Name, modeAdmission)
	metrics.FinalizerMode.DeleteLabelValues(p.Name, modeUpdate)
	return nil
}
