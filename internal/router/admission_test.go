package router_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/metrics"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestFinalizerAtAdmission: on an API server that serves
// MutatingAdmissionPolicy, with the opt-in rights granted, the Promise
// installs one, new requests carry the finalizer from their create on, and
// placing them costs the router no update of the request.
func TestFinalizerAtAdmission(t *testing.T) {
	const suite = "admission"
	optInAdmissionPolicy(t)
	scenario(t, suite)
	newDestination(t, suite+"-1", suite, labels(suite))
	waitFinalizerMode(t, metav1.ConditionTrue, v1alpha1.AdmissionPolicy)

	name := controller.FinalizerPolicyName("dynamodb")
	var policy admissionv1.MutatingAdmissionPolicy
	var binding admissionv1.MutatingAdmissionPolicyBinding
	for _, o := range []client.Object{&policy, &binding} {
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, o); err != nil {
			t.Fatal(err)
		}
		if refs := o.GetOwnerReferences(); len(refs) != 1 || refs[0].Kind != "Promise" || refs[0].Name != "dynamodb" {
			t.Errorf("%T %s: owner references %+v, want the Promise", o, name, refs)
		}
	}
	if binding.Spec.PolicyName != policy.Name {
		t.Errorf("binding names policy %q, want %q", binding.Spec.PolicyName, policy.Name)
	}
	// The API server loads new policies in the background: wait until a
	// dry-run create shows it in effect.
	testenv.WaitFor(t, 30*time.Second, "the policy adding the finalizer", func() (bool, string) {
		probe := dynamoDBRequest("default", "admission-probe", tableSpec("probe", suite, nil))
		if err := k8s.Create(ctx(t), probe, client.DryRunAll); err != nil {
			return false, err.Error()
		}
		return slices.Contains(probe.GetFinalizers(), v1alpha1.Finalizer), fmt.Sprintf("finalizers %v", probe.GetFinalizers())
	})

	// A creator's own finalizers stay, and the router's is not doubled.
	for _, given := range [][]string{{"example.com/keep"}, {v1alpha1.Finalizer}, {"example.com/keep", v1alpha1.Finalizer}} {
		probe := dynamoDBRequest("default", "admission-probe", tableSpec("probe", suite, nil))
		probe.SetFinalizers(given)
		if err := k8s.Create(ctx(t), probe, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(given)
		if !slices.Contains(want, v1alpha1.Finalizer) {
			want = append(want, v1alpha1.Finalizer)
		}
		if got := probe.GetFinalizers(); !slices.Equal(got, want) {
			t.Errorf("created with finalizers %v: got %v, want %v", given, got, want)
		}
	}

	newNamespace(t, "team-a")
	writes := placeAndCount(t, suite, "team-a", 10, func(name string, finalizers []string) {
		if !slices.Contains(finalizers, v1alpha1.Finalizer) {
			t.Errorf("%s created without the finalizer: %v", name, finalizers)
		}
	})
	if writes["object"] != 0 {
		t.Errorf("the router wrote requests (not their status) %v times, want none: %v", writes["object"], writes)
	}
}

// TestFinalizerByUpdateWithoutAdmissionPolicy runs the router on an API
// server without MutatingAdmissionPolicy, with the opt-in rights granted:
// the Promise says the API is missing (granting rights would not help), and
// the router adds the finalizer to each request with a write of the object
// (a patch of the finalizers, which keeps what the cache dropped: kubectl's
// last-applied-configuration).
func TestFinalizerByUpdateWithoutAdmissionPolicy(t *testing.T) {
	// The suite's helpers use the globals: point them at a second API
	// server for this test, and back when it is over (after its router).
	saved := [...]any{cp, k8s, routerConfig}
	t.Cleanup(func() {
		cp, k8s, routerConfig = saved[0].(*testenv.ControlPlane), saved[1].(client.Client), saved[2].(*rest.Config)
	})
	var err error
	cp, err = testenv.StartControlPlaneWithFlags(map[string]string{
		"runtime-config": "admissionregistration.k8s.io/v1/mutatingadmissionpolicies=false,admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings=false",
		// With the resources off and the plugin on, the API server did not
		// become ready within envtest's start timeout (v1.37.2).
		"disable-admission-plugins": "MutatingAdmissionPolicy"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := cp
	t.Cleanup(func() {
		if err := stopped.Stop(); err != nil {
			t.Log(err)
		}
	})
	if k8s, err = client.New(cp.Config, client.Options{Scheme: router.Scheme()}); err != nil {
		t.Fatal(err)
	}
	if routerConfig, err = testenv.AsRouter(ctx(t), k8s, cp.Config, routerNamespace); err != nil {
		t.Fatal(err)
	}
	optInAdmissionPolicy(t)

	const suite = "update"
	scenario(t, suite)
	newDestination(t, suite+"-1", suite, labels(suite))
	waitFinalizerMode(t, metav1.ConditionFalse, v1alpha1.AdmissionPolicyUnavailable)

	placeByUpdate(t, suite)
}

// TestFinalizerByUpdateWithDefaultRights runs the router with the RBAC
// config/rbac ships, which leaves out the opt-in rights on
// MutatingAdmissionPolicies: the Promise says which rights are missing and
// how to grant them, stays Ready, installs no policy, and the router adds
// the finalizer to each request with an update.
func TestFinalizerByUpdateWithDefaultRights(t *testing.T) {
	const suite = "norights"
	scenario(t, suite)
	newDestination(t, suite+"-1", suite, labels(suite))
	waitFinalizerMode(t, metav1.ConditionFalse, v1alpha1.AdmissionPolicyNotPermitted)
	var p v1alpha1.Promise
	if err := k8s.Get(ctx(t), types.NamespacedName{Name: "dynamodb"}, &p); err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.FinalizerAtAdmissionCondition)
	for _, want := range []string{"create mutatingadmissionpolicies", "config/rbac/admission-policy", "finalizerAtAdmission.enabled"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("FinalizerAtAdmission message %q does not name %q", c.Message, want)
		}
	}
	if ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ReadyCondition); ready == nil || ready.Status != metav1.ConditionTrue {
		t.Errorf("Promise not Ready without the opt-in rights: %+v", ready)
	}
	name := types.NamespacedName{Name: controller.FinalizerPolicyName("dynamodb")}
	for _, o := range []client.Object{&admissionv1.MutatingAdmissionPolicy{}, &admissionv1.MutatingAdmissionPolicyBinding{}} {
		if err := k8s.Get(ctx(t), name, o); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s: %v, want NotFound: the router may not install it", o, name.Name, err)
		}
	}

	// Not hot: reconciles of the Promise reuse the router's answer about
	// its rights instead of asking the API server each time. A second
	// destination makes the Promise reconcile (its dependencies go there).
	reviews := selfAccessReviews(t)
	newDestination(t, suite+"-2", suite, labels(suite))
	testenv.WaitFor(t, 30*time.Second, "the Promise reconciled with "+suite+"-2", func() (bool, string) {
		var p v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: "dynamodb"}, &p); err != nil {
			return false, err.Error()
		}
		return slices.Contains(p.Status.Destinations, suite+"-2"), fmt.Sprintf("destinations %v", p.Status.Destinations)
	})
	if n := selfAccessReviews(t) - reviews; n != 0 {
		t.Errorf("the router asked about its rights %v times while the Promise reconciled, want none (the answer is kept for minutes)", n)
	}

	placeByUpdate(t, suite)
}

// placeByUpdate places 10 requests in team-a selecting suite while no
// policy adds the finalizer: each is created without it, and the router
// adds it with one write of the object, keeping kubectl's
// last-applied-configuration (which the cache drops).
func placeByUpdate(t *testing.T, suite string) {
	t.Helper()
	newNamespace(t, "team-a")
	writes := placeAndCount(t, suite, "team-a", 10, func(name string, finalizers []string) {
		if slices.Contains(finalizers, v1alpha1.Finalizer) {
			t.Errorf("%s created with the finalizer, though no policy adds it: %v", name, finalizers)
		}
	})
	for i := range 10 {
		u := dynamoDBRequest("team-a", fmt.Sprintf("%s-%d", suite, i), nil)
		if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(u), u); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(u.GetFinalizers(), v1alpha1.Finalizer) {
			t.Errorf("%s placed without the finalizer: %v", u.GetName(), u.GetFinalizers())
		}
		if u.GetAnnotations()[corev1.LastAppliedConfigAnnotation] == "" {
			t.Errorf("%s lost its %s annotation when the router added its finalizer", u.GetName(), corev1.LastAppliedConfigAnnotation)
		}
	}
	if writes["object"] < 10 {
		t.Errorf("the router wrote requests (not their status) %v times, want one per request (10): %v", writes["object"], writes)
	}
}

// optInAdmissionPolicy grants the router's ServiceAccount the opt-in
// rights of config/rbac/admission-policy. Call it before the router starts
// (the router asks about them once per few minutes). Its cleanup runs after
// the router stops: it revokes the rights and deletes the policies the
// router installed, so later tests find neither.
func optInAdmissionPolicy(t *testing.T) {
	t.Helper()
	revoke, err := testenv.GrantAdmissionPolicy(ctx(t), k8s, routerNamespace)
	if err != nil {
		t.Fatal(err)
	}
	admin := k8s // the test may point k8s at another API server meanwhile
	t.Cleanup(func() {
		if err := revoke(ctx(t)); err != nil {
			t.Error(err)
		}
		for _, o := range []client.Object{&admissionv1.MutatingAdmissionPolicyBinding{}, &admissionv1.MutatingAdmissionPolicy{}} {
			if err := admin.DeleteAllOf(ctx(t), o, client.HasLabels{v1alpha1.PromiseLabel}); err != nil && !meta.IsNoMatchError(err) {
				t.Errorf("deleting the router's %T: %v", o, err)
			}
		}
	})
}

// waitFinalizerMode waits for the DynamoDB Promise's FinalizerAtAdmission
// condition, and checks the metric says the same.
func waitFinalizerMode(t *testing.T, status metav1.ConditionStatus, reason string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "FinalizerAtAdmission "+reason, func() (bool, string) {
		var p v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: "dynamodb"}, &p); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.FinalizerAtAdmissionCondition)
		if c == nil {
			return false, fmt.Sprintf("no condition: %+v", p.Status.Conditions)
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	})
	mode, other := "admission", "update"
	if status != metav1.ConditionTrue {
		mode, other = other, mode
	}
	for m, want := range map[string]float64{mode: 1, other: 0} {
		var got dto.Metric
		if err := metrics.FinalizerMode.WithLabelValues("dynamodb", m).Write(&got); err != nil {
			t.Fatal(err)
		}
		if got.GetGauge().GetValue() != want {
			t.Errorf("switchyard_promise_finalizer_mode{promise=dynamodb,mode=%s} = %v, want %v", m, got.GetGauge().GetValue(), want)
		}
	}
}

// placeAndCount creates n requests in ns selecting suite, checks each
// create's answer with created, waits until all are Ready and returns the
// API server's count of writes to requests in that time: "object" (PUT or
// PATCH of the request: the router's finalizer) and "status" (its status
// subresource), as apiserver_request_total says.
func placeAndCount(t *testing.T, suite, ns string, n int, created func(name string, finalizers []string)) map[string]float64 {
	t.Helper()
	before := requestWrites(t)
	for i := range n {
		name := fmt.Sprintf("%s-%d", suite, i)
		u := dynamoDBRequest(ns, name, tableSpec(name, suite, nil))
		// As kubectl apply leaves it; the router's cache drops it.
		u.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"DynamoDBRequest"}`})
		if err := k8s.Create(ctx(t), u); err != nil {
			t.Fatal(err)
		}
		created(name, u.GetFinalizers())
	}
	for i := range n {
		waitReadyRequest(t, ns, fmt.Sprintf("%s-%d", suite, i))
	}
	after := requestWrites(t)
	out := map[string]float64{}
	for verb, v := range after {
		out[verb] = v - before[verb]
	}
	t.Logf("API writes to requests for %d requests placed: %v (%.1f per request)", n, out, (out["object"]+out["status"])/float64(n))
	return out
}

// selfAccessReviews reads the API server's count of SelfSubjectAccessReviews
// (apiserver_request_total).
func selfAccessReviews(t *testing.T) float64 {
	t.Helper()
	var n float64
	for _, line := range apiserverMetrics(t) {
		if strings.HasPrefix(line, "apiserver_request_total{") && strings.Contains(line, `resource="selfsubjectaccessreviews"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			n += v
		}
	}
	return n
}

// apiserverMetrics returns the lines of the API server's /metrics.
func apiserverMetrics(t *testing.T) []string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(raw), "\n")
}

// requestWrites reads the API server's apiserver_request_total for
// dynamodbrequests: writes (PUT, PATCH) of the object and of its status.
func requestWrites(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range apiserverMetrics(t) {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="dynamodbrequests"`) {
			continue
		}
		if !strings.Contains(line, `verb="PUT"`) && !strings.Contains(line, `verb="PATCH"`) {
			continue
		}
		what := "object"
		if strings.Contains(line, `subresource="status"`) {
			what = "status"
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("parsing %q: %v", line, err)
		}
		out[what] += v
	}
	return out
}
