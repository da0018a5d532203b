package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/inspect"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

var (
	stack    *testenv.Stack
	platform client.Client
	store    *v1alpha1.GitStateStore
	// routerLog collects the router's log, to check that no secret leaks.
	routerLog = &testenv.SyncBuffer{}
	// servedGit is the router's --serve-git address.
	servedGit string
	// routerDir is the router's data directory; stopRouter stops the
	// running router (restartRouter replaces both).
	routerDir  string
	stopRouter func()
)

var (
	requestGVK = schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBRequest"}
	tableGVK   = schema.GroupVersionKind{Group: "dynamodb.services.k8s.aws", Version: "v1alpha1", Kind: "Table"}
)

// The two destinations share the destination API server and the state
// repo, each with its own Flux objects, as two clusters would.
var destinationLabels = map[string]map[string]string{
	"east": {"provider": "localstack", "region": "east"},
	"west": {"provider": "localstack", "region": "west"},
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(routerLog)))
	dir, err := os.MkdirTemp("", "switchyard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	stack, err = testenv.StartStack(dir, testenv.StackOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer stack.Stop()
	fmt.Fprintf(os.Stderr, "e2e: stack up in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), dir)
	if err := startRouter(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { stopRouter() }()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

func startRouter(dir string) error {
	var err error
	if platform, err = client.New(stack.Platform.Config, client.Options{Scheme: router.Scheme()}); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	servedGit = "http://" + l.Addr().String()
	l.Close()
	routerDir = dir + "/router"
	stopRouter, err = runRouter()
	return err
}

// runRouter starts a router on the stack with the suite's options.
func runRouter() (func(), error) {
	return stack.StartRouter(router.Options{DataDir: routerDir, StoreInterval: 10 * time.Second,
		ServeGit: strings.TrimPrefix(servedGit, "http://")})
}

// setup registers the store, both destinations and the DynamoDB Promise,
// and waits until all are Ready.
func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if store, err = stack.Store(ctx, platform, "state"); err != nil {
		return err
	}
	for name, labels := range destinationLabels {
		d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store.Name}}}
		if err := stack.AddDestination(ctx, platform, d, destinations.StoreObject{Git: store}); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(testenv.RepoRoot() + "/config/promises/dynamodb/promise.yaml")
	if err != nil {
		return err
	}
	var p v1alpha1.Promise
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return err
	}
	if err := platform.Create(ctx, &p); err != nil {
		return err
	}
	if err := testenv.GrantPromise(ctx, platform, &p, testenv.SecretsNamespace); err != nil {
		return err
	}
	for _, o := range []client.Object{&v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "dynamodb"}},
		&v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "east"}}, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "west"}}} {
		if err := waitTrue(ctx, o, v1alpha1.ReadyCondition); err != nil {
			return err
		}
	}
	return nil
}

func waitTrue(ctx context.Context, o client.Object, typ string) error {
	err := testenv.Poll(ctx, time.Minute, func() (bool, string) {
		if err := platform.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			return false, err.Error()
		}
		var conds []metav1.Condition
		switch o := o.(type) {
		case *v1alpha1.Promise:
			conds = o.Status.Conditions
		case *v1alpha1.Destination:
			conds = o.Status.Conditions
		}
		return meta.IsStatusConditionTrue(conds, typ), fmt.Sprintf("conditions %+v", conds)
	})
	if err != nil {
		return fmt.Errorf("waiting for %T %s %s: %w", o, o.GetName(), typ, err)
	}
	return nil
}

func request(ns, name, table string, selector map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(requestGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	spec := map[string]any{"tableName": table, "hashKey": map[string]any{"name": "id", "type": "S"},
		"rangeKey": map[string]any{"name": "at", "type": "N"}}
	if selector != nil {
		spec["destinationSelector"] = selector
	}
	u.Object["spec"] = spec
	return u
}

func status(t *testing.T, ns, name string) (*v1alpha1.RequestStatus, error) {
	st, _, err := readStatus(context.Background(), requestGVK, ns, name)
	return st, err
}

// readStatus reads request ns/name of kind gvk and its status.
func readStatus(ctx context.Context, gvk schema.GroupVersionKind, ns, name string) (*v1alpha1.RequestStatus, *unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := platform.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		return nil, nil, err
	}
	st := &v1alpha1.RequestStatus{}
	raw, _ := u.Object["status"].(map[string]any)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, st); err != nil {
		return nil, nil, fmt.Errorf("status of %s/%s: %w", ns, name, err)
	}
	return st, u, nil
}

func newNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if err := platform.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// waitReady waits until the request is Ready and returns its status.
func waitReady(t *testing.T, ns, name string, timeout time.Duration) *v1alpha1.RequestStatus {
	t.Helper()
	var st *v1alpha1.RequestStatus
	testenv.WaitFor(t, timeout, fmt.Sprintf("request %s/%s Ready", ns, name), func() (bool, string) {
		var err error
		if st, err = status(t, ns, name); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
	})
	return st
}

// checkPlaced checks everything a Ready request claims: the steps in order,
// the commit in the repo (cloned in repo), the Table on the destination with the rendered
// spec, and the table and its ARN at the endpoint.
func checkPlaced(t *testing.T, repo, ns, name, table string, st *v1alpha1.RequestStatus) {
	t.Helper()
	var last time.Time
	for _, typ := range []string{v1alpha1.ScheduledCondition, v1alpha1.WrittenCondition, v1alpha1.AppliedCondition, v1alpha1.ReadyCondition} {
		c := meta.FindStatusCondition(st.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue {
			t.Fatalf("%s/%s: condition %s is %+v, want True", ns, name, typ, c)
		}
		if c.LastTransitionTime.Time.Before(last) {
			t.Errorf("%s/%s: %s became True before the step before it", ns, name, typ)
		}
		last = c.LastTransitionTime.Time
	}
	if _, ok := destinationLabels[st.Destination]; !ok {
		t.Fatalf("%s/%s: destination %q", ns, name, st.Destination)
	}
	path := fmt.Sprintf("%s/resources/%s/dynamodb/%s/table.yaml", st.Destination, ns, name)
	if out, err := testenv.GitE(repo, "cat-file", "-e", st.Commit+":"+path); err != nil {
		t.Errorf("%s/%s: commit %s has no %s: %s", ns, name, st.Commit, path, out)
	}
	tbl := &unstructured.Unstructured{}
	tbl.SetGroupVersionKind(tableGVK)
	if err := stack.DestinationClient.Get(context.Background(), types.NamespacedName{Namespace: "switchyard-dynamodb", Name: ns + "." + name}, tbl); err != nil {
		t.Fatalf("%s/%s: Table on the destination: %v", ns, name, err)
	}
	gotName, _, _ := unstructured.NestedString(tbl.Object, "spec", "tableName")
	keys, _, _ := unstructured.NestedSlice(tbl.Object, "spec", "keySchema")
	if gotName != table || len(keys) != 2 {
		t.Errorf("%s/%s: Table spec tableName %q keySchema %v; want %q with hash and range keys", ns, name, gotName, keys, table)
	}
	out, err := stack.ACK.DynamoDB.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatalf("%s/%s: DescribeTable %s: %v", ns, name, table, err)
	}
	// Outputs come from the Table object through the Promise's
	// expressions; the verification step checked them against the table.
	if arn := aws.ToString(out.Table.TableArn); st.Outputs["tableArn"] != arn || st.Outputs["tableStatus"] != "ACTIVE" || st.Verified["tableArn"] != arn {
		t.Errorf("%s/%s: status.outputs %v, verified %v; DescribeTable says %q %s", ns, name, st.Outputs, st.Verified, arn, out.Table.TableStatus)
	}
}

func TestOneRequestEndToEnd(t *testing.T) {
	newNamespace(t, "team-one")
	r := request("team-one", "orders", "orders-one", map[string]any{"region": "west"})
	before := time.Now()
	if err := platform.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	// Timed from the create's answer: the API server holds the first create
	// of a kind established under 2 s earlier (setup just installed it).
	start := time.Now()
	st := waitReady(t, "team-one", "orders", time.Minute)
	t.Logf("one request: Ready %s after the create returned (the create took %s)",
		time.Since(start).Round(time.Millisecond), start.Sub(before).Round(time.Millisecond))
	if st.Destination != "west" {
		t.Errorf("destination %q, want west (the request selects region=west)", st.Destination)
	}
	checkPlaced(t, testenv.Clone(t, stack.RepoURL), "team-one", "orders", "orders-one", st)

	var d v1alpha1.Destination
	if err := platform.Get(context.Background(), types.NamespacedName{Name: "west"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status.Flux == nil || d.Status.Flux.LastAppliedRevision == "" || d.Status.Flux.GitRepository != "flux-system/switchyard-west" {
		t.Errorf("destination status.flux = %+v", d.Status.Flux)
	}
	if !meta.IsStatusConditionTrue(d.Status.Conditions, v1alpha1.AppliedCondition) {
		t.Errorf("destination west conditions %+v: want Applied True", d.Status.Conditions)
	}

	// kubectl get dynamodbrequests answers "where did it go, is it there?"
	var crd apiextensionsv1.CustomResourceDefinition
	if err := platform.Get(context.Background(), types.NamespacedName{Name: "dynamodbrequests.aws.switchyard.dev"}, &crd); err != nil {
		t.Fatal(err)
	}
	var columns []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Priority == 0 {
			columns = append(columns, c.Name)
		}
	}
	if got := strings.Join(columns, " "); got != "Destination Commit Applied Ready Reason Table Age" {
		t.Errorf("printer columns %q", got)
	}
}

func TestFiftyRequestsEndToEnd(t *testing.T) {
	newNamespace(t, "team-fifty")
	start := time.Now()
	for i := range 50 {
		r := request("team-fifty", fmt.Sprintf("t%02d", i), fmt.Sprintf("fifty-%02d", i), nil)
		if err := platform.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	statuses := make([]*v1alpha1.RequestStatus, 50)
	for i := range statuses {
		statuses[i] = waitReady(t, "team-fifty", fmt.Sprintf("t%02d", i), 2*time.Minute)
	}
	t.Logf("fifty requests: all Ready %s after the first create", time.Since(start).Round(time.Millisecond))
	repo := testenv.Clone(t, stack.RepoURL)
	perDest := map[string]int{}
	for i, st := range statuses {
		checkPlaced(t, repo, "team-fifty", fmt.Sprintf("t%02d", i), fmt.Sprintf("fifty-%02d", i), st)
		perDest[st.Destination]++
	}
	// Least loaded: the earlier test's request on west tips one more here
	// to east.
	if diff := perDest["east"] - perDest["west"]; diff < 0 || diff > 2 {
		t.Errorf("spread %v, want even within the one request already on west", perDest)
	}
}

func TestDeleteRequestPrunesTable(t *testing.T) {
	newNamespace(t, "team-delete")
	ctx := context.Background()
	r := request("team-delete", "gone", "gone-table", map[string]any{"region": "east"})
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	st := waitReady(t, "team-delete", "gone", time.Minute)
	path := "east/resources/team-delete/dynamodb/gone/table.yaml"

	// Watch the request, so that every status it passes through is seen.
	wc, err := client.NewWithWatch(stack.Platform.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(requestGVK.GroupVersion().WithKind("DynamoDBRequestList"))
	w, err := wc.Watch(ctx, list, client.InNamespace("team-delete"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := platform.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	var messages []string
	deadline := time.After(time.Minute)
	for gone := false; !gone; {
		select {
		case ev := <-w.ResultChan():
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if ev.Type == "DELETED" {
				gone = true
				continue
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == v1alpha1.ReadyCondition && m["reason"] == v1alpha1.Deleting {
					if msg := fmt.Sprint(m["message"]); len(messages) == 0 || messages[len(messages)-1] != msg {
						messages = append(messages, msg)
					}
				}
			}
		case <-deadline:
			t.Fatalf("request not deleted within a minute; Deleting messages seen: %q", messages)
		}
	}
	if len(messages) == 0 || !strings.Contains(messages[0], "files removed at") {
		t.Errorf("deletion progress messages %q; want one saying the files were removed", messages)
	}
	t.Logf("deletion progress: %q", messages)
	// The finalizer waited for Flux's prune and the table's deletion; the
	// Table object goes once the ACK stand-in drops its own finalizer.
	testenv.WaitFor(t, 30*time.Second, "the Table object to go from the destination", func() (bool, string) {
		tbl := &unstructured.Unstructured{}
		tbl.SetGroupVersionKind(tableGVK)
		err := stack.DestinationClient.Get(ctx, types.NamespacedName{Namespace: "switchyard-dynamodb", Name: "team-delete.gone"}, tbl)
		return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
	})
	if _, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("gone-table")}); err == nil {
		t.Errorf("table gone-table still exists at the endpoint")
	}
	repo := testenv.Clone(t, stack.RepoURL)
	if _, err := testenv.GitE(repo, "cat-file", "-e", "HEAD:"+path); err == nil {
		t.Errorf("%s still in the repo", path)
	}
	if _, err := testenv.GitE(repo, "cat-file", "-e", st.Commit+":"+path); err != nil {
		t.Errorf("the request's old commit lost its file: history rewritten?")
	}
}

// TestFluxFailureSurfaces breaks the west Kustomization's path on the
// destination and checks that a request placed there reports Flux's own
// message, then recovers when it is fixed.
func TestFluxFailureSurfaces(t *testing.T) {
	newNamespace(t, "team-fail")
	ctx := context.Background()
	var k kustomizev1.Kustomization
	key := types.NamespacedName{Namespace: "flux-system", Name: "switchyard-west-resources"}
	if err := stack.DestinationClient.Get(ctx, key, &k); err != nil {
		t.Fatal(err)
	}
	good := k.Spec.Path
	// A merge patch: Flux and the router's nudges write the object too,
	// so a read-then-update can meet a conflict.
	setPath := func(p string) {
		t.Helper()
		patch := fmt.Sprintf(`{"spec":{"path":%q}}`, p)
		if err := stack.DestinationClient.Patch(ctx, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}},
			client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
	}
	setPath("./no-such-dir")
	t.Cleanup(func() { setPath(good) })
	r := request("team-fail", "broken", "broken-table", map[string]any{"region": "west"})
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "Applied=False FluxFailed with Flux's message", func() (bool, string) {
		st, err := status(t, "team-fail", "broken")
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.AppliedCondition)
		if c == nil {
			return false, "no Applied condition"
		}
		return c.Reason == v1alpha1.FluxFailed && strings.Contains(c.Message, "no-such-dir"), c.Reason + ": " + c.Message
	})
	setPath(good)
	st := waitReady(t, "team-fail", "broken", time.Minute)
	checkPlaced(t, testenv.Clone(t, stack.RepoURL), "team-fail", "broken", "broken-table", st)
}

// TestDestinationWithoutFeedback: a destination the router cannot see (no
// kubeconfig) whose AWS endpoint is down. The request says both.
func TestDestinationWithoutFeedback(t *testing.T) {
	newNamespace(t, "team-blind")
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "blind", Labels: map[string]string{"provider": "localstack", "region": "blind"}},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store.Name},
			AWS: &v1alpha1.AWSSpec{Endpoint: down, Region: testenv.AWSRegion,
				SecretRef: v1alpha1.SecretReference{Namespace: testenv.SecretsNamespace, Name: "east-aws"}}}}
	if err := platform.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = platform.Delete(ctx, d) })
	r := request("team-blind", "dark", "dark-table", map[string]any{"region": "blind"})
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "Applied Unknown (NoFeedback), Ready False (EndpointUnreachable)", func() (bool, string) {
		st, err := status(t, "team-blind", "dark")
		if err != nil {
			return false, err.Error()
		}
		a := meta.FindStatusCondition(st.Conditions, v1alpha1.AppliedCondition)
		ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		if a == nil || ready == nil {
			return false, "conditions missing"
		}
		return a.Status == metav1.ConditionUnknown && a.Reason == v1alpha1.NoFeedback &&
				ready.Status == metav1.ConditionFalse && ready.Reason == v1alpha1.EndpointUnreachable && strings.Contains(ready.Message, down),
			fmt.Sprintf("Applied %s %s; Ready %s %s: %s", a.Status, a.Reason, ready.Status, ready.Reason, ready.Message)
	})
	// Without a view of the destination, deletion does not wait for Flux.
	if err := platform.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the request to go", func() (bool, string) {
		_, err := status(t, "team-blind", "dark")
		return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
	})
}

// TestServeGit: a store served by the router itself (--serve-git), which
// Flux on the destination reads from, with no Git server in between.
func TestServeGit(t *testing.T) {
	newNamespace(t, "team-served")
	ctx := context.Background()
	st := &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: "served"},
		Spec: v1alpha1.GitStateStoreSpec{URL: servedGit + "/served.git"}}
	if err := platform.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "served", Labels: map[string]string{"provider": "localstack", "region": "served"}},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: st.Name}}}
	if err := stack.AddDestination(ctx, platform, d, destinations.StoreObject{Git: st}); err != nil {
		t.Fatal(err)
	}
	r := request("team-served", "local", "served-table", map[string]any{"region": "served"})
	if err := platform.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	rs := waitReady(t, "team-served", "local", time.Minute)
	if rs.Destination != "served" || rs.Outputs["tableStatus"] != "ACTIVE" {
		t.Errorf("status %+v", rs)
	}
	dir := t.TempDir()
	testenv.Git(t, "", "clone", "-q", st.Spec.URL, dir)
	if _, err := testenv.GitE(dir, "cat-file", "-e", rs.Commit+":served/resources/team-served/dynamodb/local/table.yaml"); err != nil {
		t.Errorf("served repo lacks the request at %s", rs.Commit)
	}
}

// TestInspect runs `router state ls` and `router place --dry-run` against
// what the tests above left.
func TestInspect(t *testing.T) {
	ctx := context.Background()
	st, err := status(t, "team-one", "orders")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := inspect.State(ctx, platform, "west", &out); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^west\s+team-one\s+dynamodb\s+orders\s+` + st.Commit[:12] + `\s+\d`)
	if !want.MatchString(out.String()) || strings.Contains(out.String(), "east ") {
		t.Errorf("state ls --destination west:\n%s\nwant a row for team-one/orders at %s and no east rows", out.String(), st.Commit[:12])
	}

	head := testenv.Git(t, testenv.Clone(t, stack.RepoURL), "rev-parse", "HEAD")
	file := filepath.Join(t.TempDir(), "request.yaml")
	b, _ := yaml.Marshal(request("team-one", "preview", "preview-table", map[string]any{"region": "east"}).Object)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := inspect.Place(ctx, platform, file, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"-> destination east", "east/resources/team-one/dynamodb/preview/table.yaml", "kind: Table", "tableName: preview-table"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("place --dry-run output lacks %q:\n%s", s, out.String())
		}
	}
	if _, err := status(t, "team-one", "preview"); !apierrors.IsNotFound(err) {
		t.Errorf("place --dry-run created the request (get: %v)", err)
	}
	if now := testenv.Git(t, testenv.Clone(t, stack.RepoURL), "rev-parse", "HEAD"); now != head {
		t.Errorf("place --dry-run moved the branch from %s to %s", head, now)
	}
}

// TestNoSecretLeaks runs last (Go runs tests in file order) and scans what
// the others left: the router's log, every request's status and events.
func TestNoSecretLeaks(t *testing.T) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(requestGVK.GroupVersion().WithKind("DynamoDBRequestList"))
	if err := platform.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	events := &unstructured.UnstructuredList{}
	events.SetGroupVersionKind(schema.GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "EventList"})
	if err := platform.List(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.WriteString(routerLog.String())
	for _, l := range []*unstructured.UnstructuredList{list, events} {
		for _, o := range l.Items {
			b, _ := o.MarshalJSON()
			buf.Write(b)
		}
	}
	if buf.Len() < 1000 {
		t.Fatalf("only %d bytes to scan: the other tests did not run?", buf.Len())
	}
	for _, secret := range []string{testenv.AWSSecretAccessKey, testenv.GitPassword, testenv.S3SecretKey} {
		if bytes.Contains(buf.Bytes(), []byte(secret)) {
			t.Errorf("a secret value appears in the router's log, a status or an event")
		}
	}
}
