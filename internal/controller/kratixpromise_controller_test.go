package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	kratixv1alpha1 "github.com/switchyard-dev/switchyard/api/kratix/v1alpha1"
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// The Kratix import tests share one control plane, started by the first
// test that needs it (the package's unit tests do not) and stopped by
// TestMain; each starts its own router. Each test uses Promises of its
// own names and kinds.
var (
	envOnce sync.Once
	envErr  error
	cp      *testenv.ControlPlane
	admin   client.Client
	// kubeconfig is an admin kubeconfig file, for kubectl.
	kubeconfig string
	// routerConfig impersonates the router's ServiceAccount.
	routerConfig *rest.Config
)

// routerNamespace is the router's namespace in these tests.
const routerNamespace = "switchyard-system"

func TestMain(m *testing.M) {
	code := m.Run()
	if cp != nil {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// env starts the control plane, once, and then a router for the test, and
// returns an admin client. The router impersonates its ServiceAccount with
// the RBAC config/rbac ships, so a rule it lacks fails these tests.
func env(t *testing.T) client.Client {
	t.Helper()
	envOnce.Do(func() { envErr = startEnv() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	startRouter(t)
	return admin
}

func startEnv() error {
	ctrl.SetLogger(zap.New(zap.WriteTo(&testenv.SyncBuffer{}), zap.UseDevMode(false)))
	var err error
	if cp, err = testenv.StartControlPlane(); err != nil {
		return err
	}
	if admin, err = client.New(cp.Config, client.Options{Scheme: router.Scheme()}); err != nil {
		return err
	}
	kc, err := cp.KubeConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kratix-import")
	if err != nil {
		return err
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	routerConfig, err = testenv.AsRouter(context.Background(), admin, cp.Config, routerNamespace)
	return err
}

// startRouter runs the router, as its own ServiceAccount, until the test
// ends, after the test's own cleanups (which need it). One router per
// test: a request kind stays bound to its first Promise while a router
// runs, and a request controller whose CRD went before its cache synced
// would stop the router two minutes later.
func startRouter(t *testing.T) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(routerConfig, router.ManagerOptions(ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	}, routerNamespace))
	if err != nil {
		t.Fatal(err)
	}
	stores, err := router.Setup(mgr, router.Options{DataDir: t.TempDir(), Namespace: routerNamespace, SweepInterval: -1,
		PipelineImage: testenv.RouterImage})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		stores.Close()
	})
}

func ctxFor(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// apply runs kubectl apply -f file as a user does.
func apply(t *testing.T, file string) {
	t.Helper()
	out, err := exec.Command(kubectl(t), "--kubeconfig", kubeconfig, "apply", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", file, err, out)
	}
}

// applyYAML writes a Kratix Promise file and applies it.
func applyYAML(t *testing.T, doc string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "promise.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	apply(t, f)
}

func kubectl(t *testing.T) string {
	t.Helper()
	bin, err := testenv.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// fileSpec reads the spec of the Promise in a YAML file as JSON values.
func fileSpec(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(doc, &obj); err != nil {
		t.Fatal(err)
	}
	spec, _ := jsonValue(t, obj["spec"]).(map[string]any)
	return spec
}

// jsonValue is v as encoding/json decodes it, so values read from YAML
// files and from the API server compare (numbers are float64).
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// switchyardSpec reads the Switchyard Promise name from the API server,
// as JSON values, so nothing of the router's types comes between.
func switchyardSpec(t *testing.T, name string) (map[string]any, *unstructured.Unstructured) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Promise"))
	if err := admin.Get(ctxFor(t), types.NamespacedName{Name: name}, u); err != nil {
		t.Fatal(err)
	}
	spec, _ := jsonValue(t, u.Object["spec"]).(map[string]any)
	return spec, u
}

// waitSwitchyard waits until the Switchyard Promise name exists.
func waitSwitchyard(t *testing.T, name string) *v1alpha1.Promise {
	t.Helper()
	var p v1alpha1.Promise
	testenv.WaitFor(t, 30*time.Second, "switchyard.dev Promise "+name, func() (bool, string) {
		err := admin.Get(ctxFor(t), types.NamespacedName{Name: name}, &p)
		return err == nil, fmt.Sprint(err)
	})
	return &p
}

// waitKratixReady waits until the Kratix Promise name's Ready condition,
// for its current generation, satisfies ok, and returns the Promise.
func waitKratixReady(t *testing.T, name string, ok func(metav1.Condition) bool) *kratixv1alpha1.Promise {
	t.Helper()
	var k kratixv1alpha1.Promise
	testenv.WaitFor(t, 30*time.Second, "Kratix Promise "+name+" Ready", func() (bool, string) {
		if err := admin.Get(ctxFor(t), types.NamespacedName{Name: name}, &k); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(k.Status.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.ObservedGeneration == k.Generation && ok(*c), fmt.Sprintf("generation %d: %+v", k.Generation, *c)
	})
	return &k
}

func reason(r string) func(metav1.Condition) bool {
	return func(c metav1.Condition) bool { return c.Reason == r }
}

// grant lets the router serve the request kind of the Switchyard Promise
// imported as name, as an admin does with `router rbac`; without it the
// Promise waits with MissingPermissions, and so does its deletion.
func grant(t *testing.T, name string) {
	t.Helper()
	if err := testenv.GrantPromise(ctxFor(t), admin, waitSwitchyard(t, name), routerNamespace); err != nil {
		t.Fatal(err)
	}
}

// deleteKratix deletes the Kratix Promise name and waits until it and the
// Switchyard Promise it imported are gone.
func deleteKratix(t *testing.T, name string) {
	t.Helper()
	k := &kratixv1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := admin.Delete(ctxFor(t), k); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{k, &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: name}}} {
		waitGone(t, o)
	}
}

func waitGone(t *testing.T, o client.Object) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("%T %s gone", o, o.GetName()), func() (bool, string) {
		err := admin.Get(ctxFor(t), client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object))
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// TestKratixExamplesImport: the Kratix-format Promise files shipped under
// config/promises apply unchanged and import cleanly: no unsupported
// field, and a Switchyard Promise with the file's api, dependencies,
// destinationSelectors and workflows, imported-from label and controller
// ownerReference. Deleting the Kratix Promise deletes it.
func TestKratixExamplesImport(t *testing.T) {
	env(t)
	for _, file := range []string{"kratix-examples/namespace.yaml", "kratix-examples/configmap.yaml", "kratix-examples/webapp.yaml",
		"dynamodb-kratix/promise.yaml"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(testenv.RepoRoot(), "config", "promises", file)
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			name := testenv.MustReadObjects(t, path)[0].GetName()
			apply(t, path)
			t.Cleanup(func() { deleteKratix(t, name) })
			grant(t, name)
			// Ready, or running its promise configure workflow: no Job
			// runs here (cmd/kratix-examples runs in the workflow tests).
			k := waitKratixReady(t, name, func(c metav1.Condition) bool {
				return c.Status == metav1.ConditionTrue || c.Reason == v1alpha1.WorkflowRunning
			})
			assertImported(t, k, fileSpec(t, doc))
		})
	}
}

// assertImported checks that the Switchyard Promise of k's name carries
// want's (a Kratix spec's) fields, and that k controls it.
func assertImported(t *testing.T, k *kratixv1alpha1.Promise, want map[string]any) {
	t.Helper()
	got, u := switchyardSpec(t, k.Name)
	for _, field := range []string{"api", "dependencies", "destinationSelectors", "workflows"} {
		if !reflect.DeepEqual(got[field], want[field]) {
			t.Errorf("spec.%s of the Switchyard Promise:\n%v\nwant (from the Kratix Promise):\n%v", field, got[field], want[field])
		}
	}
	if l := u.GetLabels()[v1alpha1.ImportedFromLabel]; l != kratixv1alpha1.GroupVersion.Group {
		t.Errorf("label %s=%q", v1alpha1.ImportedFromLabel, l)
	}
	if !metav1.IsControlledBy(u, k) {
		t.Errorf("ownerReferences %+v do not name Kratix Promise %s (uid %s) as controller", u.GetOwnerReferences(), k.Name, k.UID)
	}
}

// fullPromise is a Kratix Promise file using every field Switchyard
// imports. No promise workflow: no Job runs in these tests, and the
// Promise would wait for it (the examples carry one). Its placeholders: NAME, KIND (each test its own request kind:
// the router binds a kind to its first Promise until it restarts) and ZONE.
const fullPromise = `apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: NAME
spec:
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: KINDs.kratix-import.example.com
    spec:
      group: kratix-import.example.com
      scope: Namespaced
      names: {kind: KIND, plural: KINDs}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec: {type: object, properties: {size: {type: integer}}}
  dependencies:
    - apiVersion: v1
      kind: Namespace
      metadata: {name: full-system}
    - apiVersion: v1
      kind: ConfigMap
      metadata: {name: full, namespace: full-system}
      data: {replicas: "3"}
  destinationSelectors:
    - matchLabels: {environment: dev}
    - matchLabels: {zone: ZONE}
  workflows:
    resource:
      configure:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: instance-configure, labels: {team: a}}
          spec:
            containers:
              - name: render
                image: example.com/render:v1
                command: [/bin/render]
                args: ["--size", "3"]
                env: [{name: MODE, value: fast}]
                volumeMounts: [{name: cache, mountPath: /cache}]
            volumes: [{name: cache, emptyDir: {}}]
            rbac:
              permissions:
                - apiGroups: [""]
                  resources: [secrets]
                  verbs: [get]
      delete:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: instance-delete}
          spec:
            containers: [{name: cleanup, image: example.com/cleanup:v1}]
`

// fullPromiseNamed is fullPromise for Promise name, of request kind
// kind, selecting zone.
func fullPromiseNamed(name, kind, zone string) string {
	// Argument order: the plural KINDs before KIND.
	return strings.NewReplacer("NAME", name, "KINDs", strings.ToLower(kind)+"s", "KIND", kind, "ZONE", zone).Replace(fullPromise)
}

// TestKratixPromiseCarriesOver: every field Switchyard imports carries
// over as the Kratix Promise gives it, and a change to the Kratix Promise
// changes the Switchyard Promise.
func TestKratixPromiseCarriesOver(t *testing.T) {
	env(t)
	for i, zone := range []string{"a", "b"} {
		doc := fullPromiseNamed("kratix-full", "Full", zone)
		applyYAML(t, doc)
		if i == 0 {
			t.Cleanup(func() { deleteKratix(t, "kratix-full") })
			grant(t, "kratix-full")
		}
		k := waitKratixReady(t, "kratix-full", func(c metav1.Condition) bool { return c.Reason != v1alpha1.UnsupportedField })
		testenv.WaitFor(t, 30*time.Second, "the Switchyard Promise to select zone "+zone, func() (bool, string) {
			got, _ := switchyardSpec(t, "kratix-full")
			sel := fmt.Sprint(got["destinationSelectors"])
			return strings.Contains(sel, "zone:"+zone), sel
		})
		assertImported(t, k, fileSpec(t, []byte(doc)))
	}
}

// TestKratixPromiseUnsupportedFields: a Kratix Promise using fields
// Switchyard does not support applies, is reported Ready=False
// UnsupportedField naming every such field, with an event, and imports
// nothing; a Promise imported before is left as it was.
func TestKratixPromiseUnsupportedFields(t *testing.T) {
	env(t)
	doc := `apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: %s
spec:
  requiredPromises: [{name: postgres, version: v1.0.0}]
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: %ss.kratix-import.example.com}
    spec:
      group: kratix-import.example.com
      scope: Namespaced
      names: {kind: %s, plural: %ss, singular: %s}
      versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}}]
  workflows:
    config: {pipelineNamespace: pipelines}
    resource:
      configure:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: instance-configure}
          spec:
            rbac: {serviceAccount: existing}
            containers:
              - {name: a, image: example.com/a:v1}
              - {name: b, image: example.com/b:v1, securityContext: {runAsUser: 0}}
`
	want := []string{
		"spec.requiredPromises",
		"spec.workflows.config",
		"spec.workflows.resource.configure[0].spec.containers[1].securityContext",
		"spec.workflows.resource.configure[0].spec.rbac.serviceAccount",
	}
	unsupported := func(c metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.UnsupportedField
	}
	assertNamed := func(t *testing.T, k *kratixv1alpha1.Promise) {
		t.Helper()
		c := meta.FindStatusCondition(k.Status.Conditions, v1alpha1.ReadyCondition)
		list, ok := strings.CutPrefix(c.Message, "Switchyard does not support ")
		list, _, _ = strings.Cut(list, ";")
		if got := strings.Split(list, ", "); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("message %q names %q, want %q", c.Message, got, want)
		}
		testenv.WaitForEvent(t, admin, "", k.Name, v1alpha1.UnsupportedField)
	}

	t.Run("new", func(t *testing.T) {
		applyYAML(t, fmt.Sprintf(doc, "unsupported", "unsupported", "Unsupported", "unsupported", "unsupported"))
		t.Cleanup(func() { deleteKratix(t, "unsupported") })
		k := waitKratixReady(t, "unsupported", unsupported)
		assertNamed(t, k)
		err := admin.Get(ctxFor(t), types.NamespacedName{Name: "unsupported"}, &v1alpha1.Promise{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("a Switchyard Promise was created (get: %v)", err)
		}
	})

	t.Run("imported before", func(t *testing.T) {
		name := "unsupported-later"
		full := fmt.Sprintf(doc, name, "later", "Later", "later", "later")
		// The same Promise without the unsupported fields imports.
		var supported []string
		for _, line := range strings.Split(full, "\n") {
			if !strings.Contains(line, "requiredPromises") && !strings.Contains(line, "config:") &&
				!strings.Contains(line, "rbac:") && !strings.Contains(line, "securityContext") {
				supported = append(supported, line)
			}
		}
		applyYAML(t, strings.Join(supported, "\n"))
		t.Cleanup(func() { deleteKratix(t, name) })
		grant(t, name)
		waitKratixReady(t, name, func(c metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
		before := waitSwitchyard(t, name)

		applyYAML(t, full)
		k := waitKratixReady(t, name, unsupported)
		assertNamed(t, k)
		after := waitSwitchyard(t, name)
		if after.Generation != before.Generation || !reflect.DeepEqual(after.Spec, before.Spec) {
			t.Errorf("the Switchyard Promise changed: generation %d -> %d", before.Generation, after.Generation)
		}
		if k.Status.ObservedGeneration == k.Generation {
			t.Errorf("status.observedGeneration %d claims the generation that was not imported", k.Status.ObservedGeneration)
		}
	})
}

// TestKratixPromiseNameConflict: a Switchyard Promise of the same name
// that was not imported from the Kratix Promise is left alone, and the
// Kratix Promise says so; deleting the Kratix Promise leaves it too.
func TestKratixPromiseNameConflict(t *testing.T) {
	env(t)
	const name = "conflict"
	own := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.PromiseSpec{}}
	if err := yaml.Unmarshal([]byte(`
api:
  apiVersion: apiextensions.k8s.io/v1
  kind: CustomResourceDefinition
  metadata: {name: conflicts.kratix-import.example.com}
  spec:
    group: kratix-import.example.com
    scope: Namespaced
    names: {kind: Conflict, plural: conflicts, singular: conflict}
    versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}}]
`), &own.Spec); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctxFor(t), own); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin.Delete(ctxFor(t), own); client.IgnoreNotFound(err) != nil {
			t.Error(err)
		}
		waitGone(t, own)
	})
	if err := testenv.GrantPromise(ctxFor(t), admin, own, routerNamespace); err != nil {
		t.Fatal(err)
	}
	before := waitSwitchyard(t, name)

	applyYAML(t, fullPromiseNamed(name, "NotImported", "a"))
	k := waitKratixReady(t, name, func(c metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.NameConflict
	})
	testenv.WaitForEvent(t, admin, "", name, v1alpha1.NameConflict)
	after := waitSwitchyard(t, name)
	if after.Generation != before.Generation || len(after.OwnerReferences) != 0 || after.Labels[v1alpha1.ImportedFromLabel] != "" {
		t.Errorf("the Switchyard Promise changed: generation %d -> %d, ownerReferences %v, labels %v",
			before.Generation, after.Generation, after.OwnerReferences, after.Labels)
	}

	if err := admin.Delete(ctxFor(t), k); err != nil {
		t.Fatal(err)
	}
	waitGone(t, k)
	if err := admin.Get(ctxFor(t), types.NamespacedName{Name: name}, &v1alpha1.Promise{}); err != nil {
		t.Errorf("deleting the Kratix Promise touched the Switchyard Promise it does not own: %v", err)
	}
}

// TestKratixPromiseStatusMirrored: the Kratix Promise's status follows the
// Switchyard Promise's: first MissingPermissions (the router may not serve
// the kind yet), then, once granted, Ready with the same reason and
// message, kind and apiVersion, for the Kratix Promise's generation.
func TestKratixPromiseStatusMirrored(t *testing.T) {
	env(t)
	const name = "mirrored"
	applyYAML(t, fullPromiseNamed(name, "Mirrored", "a"))
	t.Cleanup(func() { deleteKratix(t, name) })
	waitKratixReady(t, name, reason(v1alpha1.MissingPermissions))
	grant(t, name)
	k := waitKratixReady(t, name, func(c metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
	sw := waitSwitchyard(t, name)
	got := meta.FindStatusCondition(k.Status.Conditions, v1alpha1.ReadyCondition)
	want := meta.FindStatusCondition(sw.Status.Conditions, v1alpha1.ReadyCondition)
	if want == nil || got.Status != want.Status || got.Reason != want.Reason || got.Message != want.Message {
		t.Errorf("Kratix Ready %+v, Switchyard Ready %+v", got, want)
	}
	if k.Status.Kind != "Mirrored" || k.Status.APIVersion != "kratix-import.example.com/v1" ||
		k.Status.Kind != sw.Status.Kind || k.Status.APIVersion != sw.Status.APIVersion {
		t.Errorf("status kind %q apiVersion %q, Switchyard's %q %q", k.Status.Kind, k.Status.APIVersion, sw.Status.Kind, sw.Status.APIVersion)
	}
	if k.Status.ObservedGeneration != k.Generation {
		t.Errorf("status.observedGeneration %d, generation %d", k.Status.ObservedGeneration, k.Generation)
	}
}

// TestKratixPromiseDeletion: deleting a Kratix Promise deletes the
// Switchyard Promise it imported (and so its request CRD), and the Kratix
// Promise goes only once that is gone.
func TestKratixPromiseDeletion(t *testing.T) {
	env(t)
	const name = "deleted"
	applyYAML(t, fullPromiseNamed(name, "Deleted", "a"))
	grant(t, name)
	k := waitKratixReady(t, name, func(c metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
	if !strings.Contains(strings.Join(k.Finalizers, ","), v1alpha1.Finalizer) {
		t.Errorf("finalizers %v", k.Finalizers)
	}
	deleteKratix(t, name)
}

// TestKratixPromiseRefused: a Kratix Promise Switchyard cannot import for
// other reasons than its fields says why, and nothing is created.
func TestKratixPromiseRefused(t *testing.T) {
	env(t)
	pipeline := func(name, metadataName string) string {
		return strings.Replace(fullPromiseNamed(name, "Refused", "a"), "name: instance-configure", "name: "+metadataName, 1)
	}
	tests := []struct {
		name, doc, reason string
	}{
		{name: "refused-no-api", reason: v1alpha1.InvalidAPI, doc: `apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata: {name: refused-no-api}
spec:
  dependencies: [{apiVersion: v1, kind: Namespace, metadata: {name: refused}}]
`},
		// A number where Switchyard's Pipeline has a string.
		{name: "refused-type", reason: v1alpha1.InvalidWorkflow, doc: pipeline("refused-type", "3")},
		// The Switchyard Promise's schema limits pipeline names to 40.
		{name: "refused-schema", reason: v1alpha1.ImportRejected, doc: pipeline("refused-schema", strings.Repeat("p", 41))},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			applyYAML(t, tt.doc)
			t.Cleanup(func() { deleteKratix(t, tt.name) })
			waitKratixReady(t, tt.name, func(c metav1.Condition) bool {
				return c.Status == metav1.ConditionFalse && c.Reason == tt.reason
			})
			err := admin.Get(ctxFor(t), types.NamespacedName{Name: tt.name}, &v1alpha1.Promise{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("a Switchyard Promise was created (get: %v)", err)
			}
		})
	}
}
