package router_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// The suite shares one control plane and one DynamoDB Promise. Tests run
// one after another; each isolates itself with its own state store,
// destinations labelled suite=<test> and requests selecting that label.
var (
	cp  *testenv.ControlPlane
	k8s client.Client
	// routerConfig impersonates the router's ServiceAccount in
	// routerNamespace, with the RBAC config/rbac ships.
	routerConfig *rest.Config
	// routerLog collects the router's log, to check that no secret leaks.
	routerLog = &testenv.SyncBuffer{}
)

// routerNamespace is the router's namespace in these tests, where the
// tests' Secrets live.
const routerNamespace = "default"

var requestGVK = schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBRequest"}

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(routerLog), zap.UseDevMode(false)))
	var err error
	if cp, err = testenv.StartControlPlane(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if k8s, err = client.New(cp.Config, client.Options{Scheme: router.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if routerConfig, err = testenv.AsRouter(context.Background(), k8s, cp.Config, routerNamespace); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

// startRouter runs the router in-process until the returned stop is called
// (or the test ends). Options, if any, adjust the manager's options.
func startRouter(t *testing.T, options ...func(*ctrl.Options)) (stop func()) {
	t.Helper()
	return startRouterIn(t, t.TempDir(), options...)
}

// lastStop stops the router startRouter started last.
var lastStop func()

// startRouterIn is startRouter with the router's data directory.
func startRouterIn(t *testing.T, dataDir string, options ...func(*ctrl.Options)) (stop func()) {
	t.Helper()
	return startRouterAt(t, routerConfig, dataDir, options...)
}

// startRouterAt is startRouterIn talking to the API server at cfg.
func startRouterAt(t *testing.T, cfg *rest.Config, dataDir string, options ...func(*ctrl.Options)) (stop func()) {
	t.Helper()
	return startRouterWith(t, cfg, router.Options{DataDir: dataDir, StoreInterval: 2 * time.Second}, options...)
}

// startRouterWith is startRouterAt with the router's options.
func startRouterWith(t *testing.T, cfg *rest.Config, ro router.Options, options ...func(*ctrl.Options)) (stop func()) {
	t.Helper()
	if ro.Namespace == "" {
		ro.Namespace = routerNamespace
	}
	skip := true
	o := ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	}
	for _, f := range options {
		f(&o)
	}
	mgr, err := ctrl.NewManager(cfg, router.ManagerOptions(o, ro.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	stores, err := router.Setup(mgr, ro)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		stores.Close()
	}
	lastStop = stop
	// The router still runs while the test's objects are deleted, so their
	// finalizers complete and the next test starts clean.
	t.Cleanup(func() {
		deleteCreated(t)
		stop()
	})
	return stop
}

// created lists the cluster-scoped objects the running test made.
var created []client.Object

func track(o client.Object) { created = append(created, o) }

func deleteCreated(t *testing.T) {
	for i := len(created) - 1; i >= 0; i-- {
		deleteAndWait(t, created[i])
	}
	created = nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// installPromise applies the DynamoDB Promise once and waits until the
// request kind is served.
func installPromise(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(testenv.RepoRoot() + "/config/promises/dynamodb/promise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.Promise
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx(t), &p); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := testenv.GrantPromise(ctx(t), k8s, &p, routerNamespace); err != nil {
		t.Fatal(err)
	}
	waitReady(t, &v1alpha1.Promise{}, "dynamodb", 30*time.Second)
}

func conditionsOf(o client.Object) []metav1.Condition {
	switch o := o.(type) {
	case *v1alpha1.Promise:
		return o.Status.Conditions
	case *v1alpha1.Destination:
		return o.Status.Conditions
	case *v1alpha1.GitStateStore:
		return o.Status.Conditions
	case *v1alpha1.BucketStateStore:
		return o.Status.Conditions
	}
	return nil
}

func waitReady(t *testing.T, o client.Object, name string, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("%T %s Ready", o, name), func() (bool, string) {
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, o); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(conditionsOf(o), v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
	})
}

// scenario starts a Git server, the router and the DynamoDB Promise, and
// creates a Ready GitStateStore named suite. It returns the server and the
// repository URL. The Git server starts first so that it stops last, after
// the router's cleanup.
func scenario(t *testing.T, suite string) (*testenv.GitServer, string) {
	t.Helper()
	g := testenv.StartGitServer(t)
	startRouter(t)
	installPromise(t)
	return g, newStore(t, g, suite)
}

// newStore creates a repository on g, a Secret with the credentials and a
// GitStateStore, and waits until it is Ready.
func newStore(t *testing.T, g *testenv.GitServer, name string) string {
	t.Helper()
	url := g.NewRepo(t, name)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-git", Namespace: "default"},
		StringData: map[string]string{"username": testenv.GitUser, "password": testenv.GitPassword}}
	if err := k8s.Create(ctx(t), secret); err != nil {
		t.Fatal(err)
	}
	store := &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.GitStateStoreSpec{
		URL: url, Path: "clusters", SecretRef: &v1alpha1.SecretReference{Name: secret.Name, Namespace: "default"}}}
	if err := k8s.Create(ctx(t), store); err != nil {
		t.Fatal(err)
	}
	track(store)
	waitReady(t, &v1alpha1.GitStateStore{}, name, 30*time.Second)
	return url
}

// newDestination creates a Destination of GitStateStore store and waits
// until it is Ready.
func newDestination(t *testing.T, name, store string, labels map[string]string, mutate ...func(*v1alpha1.Destination)) {
	t.Helper()
	newDestinationIn(t, name, v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store}, labels, mutate...)
}

// newDestinationIn creates a Destination of the store ref names and waits
// until it is Ready.
func newDestinationIn(t *testing.T, name string, ref v1alpha1.StateStoreReference, labels map[string]string, mutate ...func(*v1alpha1.Destination)) {
	t.Helper()
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: ref}}
	for _, m := range mutate {
		m(d)
	}
	if err := k8s.Create(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	track(d)
	waitReady(t, &v1alpha1.Destination{}, name, 30*time.Second)
}

// deleteAndWait deletes o, if still there, and waits until it is gone, so
// the next test starts without it. It runs while the router still runs.
func deleteAndWait(t *testing.T, o client.Object) {
	if err := k8s.Delete(ctx(t), o); client.IgnoreNotFound(err) != nil {
		t.Errorf("deleting %s: %v", o.GetName(), err)
		return
	}
	waitGone(t, o, 30*time.Second)
}

// waitGone waits until o no longer exists.
func waitGone(t *testing.T, o client.Object, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, o.GetName()+" gone", func() (bool, string) {
		err := k8s.Get(ctx(t), client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object))
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func newNamespace(t *testing.T, name string) {
	t.Helper()
	if err := k8s.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func dynamoDBRequest(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(requestGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// tableSpec is the spec of a request for table <suite>-<table>. Requests
// outlive their test, and the Promise's table claim keeps one request per
// name (all destinations here have no spec.aws, so one scope): the suite
// keeps names apart.
func tableSpec(table, suite string, selector map[string]any) map[string]any {
	sel := map[string]any{"suite": suite}
	for k, v := range selector {
		sel[k] = v
	}
	return map[string]any{"tableName": suite + "-" + table, "hashKey": map[string]any{"name": "id", "type": "S"}, "destinationSelector": sel}
}

func createRequest(t *testing.T, ns, name string, spec map[string]any) {
	t.Helper()
	if err := k8s.Create(ctx(t), dynamoDBRequest(ns, name, spec)); err != nil {
		t.Fatal(err)
	}
}

// requestStatus reads a request's status.
func requestStatus(t *testing.T, ns, name string) (v1alpha1.RequestStatus, error) {
	u := dynamoDBRequest(ns, name, nil)
	var st v1alpha1.RequestStatus
	if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(u), u); err != nil {
		return st, err
	}
	return statusOf(t, u), nil
}

// waitCondition waits until the request's condition typ has status and
// reason, and returns the status.
func waitCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) v1alpha1.RequestStatus {
	t.Helper()
	var st v1alpha1.RequestStatus
	testenv.WaitFor(t, timeout, fmt.Sprintf("%s/%s %s=%s (%s)", ns, name, typ, status, reason), func() (bool, string) {
		var err error
		if st, err = requestStatus(t, ns, name); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, typ)
		if c == nil {
			return false, fmt.Sprintf("no %s condition: %+v", typ, st)
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return st
}

func waitReadyRequest(t *testing.T, ns, name string) v1alpha1.RequestStatus {
	t.Helper()
	return waitCondition(t, ns, name, v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.Committed, 30*time.Second)
}

// requestFile is where the documented layout puts a request's Table.
func requestFile(dest, ns, name string) string {
	return fmt.Sprintf("clusters/%s/resources/%s/dynamodb/%s/table.yaml", dest, ns, name)
}

func contains(files []string, f string) bool {
	for _, x := range files {
		if x == f {
			return true
		}
	}
	return false
}

// confirmingFlux wraps cond: before each poll it annotates Destination
// dest with the store's head revision (head), as a person does who checked
// that Flux on a cluster the router cannot see applied it. These tests run
// no Flux and give their destinations no kubeconfig, so moves off a
// deleted destination and its cleanup wait for that word. A destination
// already gone is fine.
func confirmingFlux(t *testing.T, dest string, head func() string, cond func() (bool, string)) func() (bool, string) {
	return func() (bool, string) {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.FluxAppliedAnnotation, head())
		d := &v1alpha1.Destination{}
		d.Name = dest
		if err := k8s.Patch(ctx(t), d, client.RawPatch(types.MergePatchType, []byte(patch))); client.IgnoreNotFound(err) != nil {
			return false, err.Error()
		}
		return cond()
	}
}

// gitHead returns the head of the main branch of the repository at url.
func gitHead(t *testing.T, url string) func() string {
	return func() string {
		out := testenv.Git(t, "", "ls-remote", testenv.AuthURL(url), "refs/heads/main")
		sha, _, _ := strings.Cut(out, "\t")
		return sha
	}
}

func noLeak(t *testing.T) {
	t.Helper()
	for _, secret := range []string{testenv.GitPassword, testenv.S3SecretKey} {
		if strings.Contains(routerLog.String(), secret) {
			t.Fatal("the router log contains a store's secret")
		}
	}
}
