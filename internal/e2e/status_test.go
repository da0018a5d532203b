package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// requestStatus reads the status of request ns/name of kind gvk.
func requestStatus(t *testing.T, gvk schema.GroupVersionKind, ns, name string) (*v1alpha1.RequestStatus, *unstructured.Unstructured) {
	t.Helper()
	st, u, err := readStatus(context.Background(), gvk, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return st, u
}

// waitRequestReady waits until request ns/name of kind gvk has Ready
// status want and reason, and a message containing msg.
func waitRequestReady(t *testing.T, gvk schema.GroupVersionKind, ns, name string, want metav1.ConditionStatus, reason, msg string, timeout time.Duration) *v1alpha1.RequestStatus {
	t.Helper()
	var st *v1alpha1.RequestStatus
	testenv.WaitFor(t, timeout, fmt.Sprintf("%s %s/%s Ready=%s %s %q", gvk.Kind, ns, name, want, reason, msg), func() (bool, string) {
		st, _ = requestStatus(t, gvk, ns, name)
		c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == want && c.Reason == reason && strings.Contains(c.Message, msg), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return st
}

func readPromise(t *testing.T, path string) *v1alpha1.Promise {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.Promise
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// applyPromise creates p, lets the router serve its kind and waits until
// it is Ready.
func applyPromise(t *testing.T, p *v1alpha1.Promise) {
	t.Helper()
	ctx := context.Background()
	if err := platform.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := testenv.GrantPromise(ctx, platform, p, testenv.SecretsNamespace); err != nil {
		t.Fatal(err)
	}
	if err := waitTrue(ctx, &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: p.Name}}, v1alpha1.ReadyCondition); err != nil {
		t.Fatal(err)
	}
}

var teamNamespaceGVK = schema.GroupVersionKind{Group: "platform.switchyard.dev", Version: "v1alpha1", Kind: "TeamNamespace"}

// The second shipped Promise, which is not DynamoDB, end to end on its own
// destination cluster: Ready from kstatus alone, outputs from the objects
// there, and the printer column its author chose.
func TestTeamNamespaceEndToEnd(t *testing.T) {
	ctx := context.Background()
	second, err := stack.StartCluster("teams", testenv.FluxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := second.Stop(); err != nil {
			t.Logf("stopping the teams cluster: %v", err)
		}
	})
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "teams", Labels: map[string]string{"teams": "true"}},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store.Name}}}
	if err := stack.AddDestinationOn(ctx, platform, second, d, destinations.StoreObject{Git: store}); err != nil {
		t.Fatal(err)
	}
	if err := waitTrue(ctx, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "teams"}}, v1alpha1.ReadyCondition); err != nil {
		t.Fatal(err)
	}
	applyPromise(t, readPromise(t, testenv.RepoRoot()+"/config/promises/team-namespace/promise.yaml"))

	newNamespace(t, "team-a")
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(teamNamespaceGVK)
	r.SetNamespace("team-a")
	r.SetName("web")
	r.Object["spec"] = map[string]any{"cpu": "3"}
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	st := waitRequestReady(t, teamNamespaceGVK, "team-a", "web", metav1.ConditionTrue, v1alpha1.ResourcesReady, "Current (kstatus)", time.Minute)
	if st.Destination != "teams" || st.Outputs["namespace"] != "team-a-web" || st.Outputs["cpu"] != "3" {
		t.Errorf("destination %q, outputs %v; want teams, namespace team-a-web and cpu 3", st.Destination, st.Outputs)
	}
	var ns corev1.Namespace
	if err := second.Client.Get(ctx, types.NamespacedName{Name: "team-a-web"}, &ns); err != nil {
		t.Fatalf("the namespace on the teams cluster: %v", err)
	}
	if ns.Labels[v1alpha1.RequestUIDLabel] != string(r.GetUID()) {
		t.Errorf("namespace labels %v: want %s=%s", ns.Labels, v1alpha1.RequestUIDLabel, r.GetUID())
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := platform.Get(ctx, types.NamespacedName{Name: "teamnamespaces.platform.switchyard.dev"}, &crd); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		found = found || (c.Name == "Team Namespace" && c.JSONPath == ".status.outputs.namespace" && c.Priority == 0)
	}
	if !found {
		t.Errorf("printer columns %+v: want Team Namespace at .status.outputs.namespace", crd.Spec.Versions[0].AdditionalPrinterColumns)
	}
}

var webAppGVK = schema.GroupVersionKind{Group: "test.switchyard.dev", Version: "v1alpha1", Kind: "WebApp"}

// webPromise renders one Deployment per request on destination east,
// where no controller makes Deployments available.
const webPromise = `
apiVersion: switchyard.dev/v1alpha1
kind: Promise
metadata:
  name: readiness
spec:
  destinationSelectors:
    - matchLabels: {region: east}
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: webapps.test.switchyard.dev
    spec:
      group: test.switchyard.dev
      scope: Namespaced
      names: {kind: WebApp, listKind: WebAppList, plural: webapps, singular: webapp}
      versions:
        - name: v1alpha1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec: {type: object, properties: {image: {type: string}}}
  dependencies:
    - apiVersion: v1
      kind: Namespace
      metadata: {name: web-apps}
  resources:
    - name: web
      template: |
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .metadata.namespace }}-{{ .metadata.name }}
          namespace: web-apps
        spec:
          replicas: 1
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: {{ .spec.image }}}]
`

// grantDeployments lets the router's ServiceAccount on the destination
// watch Deployments, as a Promise author rendering them would.
// grantFeedback lets the router's feedback identity on a destination read
// resource (in group), as a Promise's rbac.yaml would.
func grantFeedback(t *testing.T, c client.Client, group, resource string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "switchyard-feedback-" + resource},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{resource}, Verbs: []string{"get", "list", "watch"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "flux-system", Name: "switchyard-feedback"}}}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// setAvailable writes the status a Deployment controller would: available
// (kstatus Current) or not (InProgress).
func setAvailable(t *testing.T, key types.NamespacedName, available bool) {
	t.Helper()
	ctx := context.Background()
	dep := &unstructured.Unstructured{}
	dep.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	if err := stack.DestinationClient.Get(ctx, key, dep); err != nil {
		t.Fatal(err)
	}
	ready, cond := int64(1), "True"
	if !available {
		ready, cond = 0, "False"
	}
	dep.Object["status"] = map[string]any{"observedGeneration": dep.GetGeneration(), "replicas": int64(1), "updatedReplicas": int64(1),
		"readyReplicas": ready, "availableReplicas": ready,
		"conditions": []any{
			map[string]any{"type": "Available", "status": cond, "reason": "MinimumReplicasAvailable", "message": "set by the test"},
			map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "set by the test"},
		}}
	if err := stack.DestinationClient.Status().Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
}

// A request's readiness follows its object on the destination: a
// Deployment that nothing makes available keeps it Ready=False naming the
// Deployment; the status a controller would write makes it Ready; a
// Deployment deleted by hand shows as NotFound until Flux restores it. The
// time from a status change on the destination to the request's status is
// measured (median of 20).
func TestReadinessFollowsTheDestination(t *testing.T) {
	ctx := context.Background()
	grantFeedback(t, stack.DestinationClient, "apps", "deployments")
	var p v1alpha1.Promise
	if err := yaml.UnmarshalStrict([]byte(webPromise), &p); err != nil {
		t.Fatal(err)
	}
	applyPromise(t, &p)
	newNamespace(t, "team-web")
	r := &unstructured.Unstructured{}
	r.SetGroupVersionKind(webAppGVK)
	r.SetNamespace("team-web")
	r.SetName("shop")
	r.Object["spec"] = map[string]any{"image": "nginx:1.27"}
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "web-apps", Name: "team-web-shop"}
	waitRequestReady(t, webAppGVK, "team-web", "shop", metav1.ConditionFalse, v1alpha1.ResourceInProgress, "Deployment web-apps/team-web-shop: InProgress", time.Minute)

	setAvailable(t, key, true)
	waitRequestReady(t, webAppGVK, "team-web", "shop", metav1.ConditionTrue, v1alpha1.ResourcesReady, "Current", 10*time.Second)

	var lat []time.Duration
	for i := range 20 {
		available := i%2 == 1
		want := metav1.ConditionFalse
		if available {
			want = metav1.ConditionTrue
		}
		start := time.Now()
		setAvailable(t, key, available)
		lat = append(lat, waitFlip(t, want, start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("status change on the destination to the request's Ready: median %s, min %s, max %s (20 changes)",
		lat[10].Round(time.Millisecond), lat[0].Round(time.Millisecond), lat[19].Round(time.Millisecond))
	if lat[10] > time.Second {
		t.Errorf("median %s from a status change on the destination to the request's status; want under a second", lat[10])
	}

	dep := &unstructured.Unstructured{}
	dep.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	dep.SetNamespace(key.Namespace)
	dep.SetName(key.Name)
	if err := stack.DestinationClient.Delete(ctx, dep); err != nil {
		t.Fatal(err)
	}
	waitRequestReady(t, webAppGVK, "team-web", "shop", metav1.ConditionFalse, v1alpha1.ResourceNotFound, "Deployment web-apps/team-web-shop: NotFound", 10*time.Second)
	// Flux restores it at its next reconcile; ask for that now.
	ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "switchyard-east-resources"}}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, time.Now().Format(time.RFC3339Nano))
	if err := stack.DestinationClient.Patch(ctx, ks, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	// Restored, it has no status again: nothing makes it available.
	waitRequestReady(t, webAppGVK, "team-web", "shop", metav1.ConditionFalse, v1alpha1.ResourceInProgress, "Deployment web-apps/team-web-shop", time.Minute)

	refuseInvalidExpressions(t, "team-web", "shop")
}

// waitFlip waits (polling every 5 ms) until request team-web/shop has Ready
// want and returns the time since start.
func waitFlip(t *testing.T, want metav1.ConditionStatus, start time.Time) time.Duration {
	t.Helper()
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, _ := requestStatus(t, webAppGVK, "team-web", "shop")
		if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition); c != nil && c.Status == want {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("request team-web/shop did not become Ready=%s within 10 s of the status change", want)
	return 0
}

// refuseInvalidExpressions updates the readiness Promise with bad status
// rules: the API server refuses what its schema can tell, the router the
// rest (Ready=False, InvalidStatusExpression, naming the expression), and
// the request is not changed.
func refuseInvalidExpressions(t *testing.T, ns, name string) {
	ctx := context.Background()
	_, before := requestStatus(t, webAppGVK, ns, name)
	update := func(rules *v1alpha1.StatusRules) error {
		var p v1alpha1.Promise
		if err := platform.Get(ctx, types.NamespacedName{Name: "readiness"}, &p); err != nil {
			return err
		}
		p.Spec.Status = rules
		return platform.Update(ctx, &p)
	}
	if err := update(&v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"web.status.readyReplicas > 0"}}); err == nil || !strings.Contains(err.Error(), "spec.status.readyWhen[0]") {
		t.Errorf("an expression without ${...}: %v; want the API server to refuse it", err)
	}
	for _, tt := range []struct {
		rules v1alpha1.StatusRules
		want  string
	}{
		{v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"${web.status.readyReplicas >}"}}, `status.readyWhen[0] "${web.status.readyReplicas >}": ERROR`},
		{v1alpha1.StatusRules{Outputs: map[string]v1alpha1.Expression{"replicas": "${deployment.status.replicas}"}}, "undeclared reference to 'deployment'"},
		{v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"${web.metadata.name + '!'}"}}, "must be a bool, is a string"},
	} {
		if err := update(&tt.rules); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 30*time.Second, "Promise readiness InvalidStatusExpression "+tt.want, func() (bool, string) {
			var p v1alpha1.Promise
			if err := platform.Get(ctx, types.NamespacedName{Name: "readiness"}, &p); err != nil {
				return false, err.Error()
			}
			c := apimeta.FindStatusCondition(p.Status.Conditions, v1alpha1.ReadyCondition)
			if c == nil {
				return false, "no Ready"
			}
			return c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.InvalidStatusExpression && c.ObservedGeneration == p.Generation &&
				strings.Contains(c.Message, tt.want), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		})
	}
	if _, after := requestStatus(t, webAppGVK, ns, name); after.GetResourceVersion() != before.GetResourceVersion() {
		t.Errorf("request %s/%s changed while its Promise was invalid: resourceVersion %s, was %s", ns, name, after.GetResourceVersion(), before.GetResourceVersion())
	}
	// Fixed, the Promise serves again, and readyWhen replaces kstatus.
	if err := update(&v1alpha1.StatusRules{ReadyWhen: []v1alpha1.Expression{"${web.metadata.name == 'team-web-shop'}"},
		Outputs: map[string]v1alpha1.Expression{"image": "${web.spec.template.spec.containers[0].image}"}}); err != nil {
		t.Fatal(err)
	}
	st := waitRequestReady(t, webAppGVK, ns, name, metav1.ConditionTrue, v1alpha1.ResourcesReady, "readyWhen", 30*time.Second)
	if st.Outputs["image"] != "nginx:1.27" {
		t.Errorf("outputs %v: want image nginx:1.27", st.Outputs)
	}
}
