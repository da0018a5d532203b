package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

var requestGVK = schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBRequest"}

// TestRouterSurvivesSIGKILL creates requests while the router is killed
// with SIGKILL again and again (and another writer writes to the store),
// then checks that every request is in the store exactly once, on the
// destination its status names, that no other writer's write was lost,
// and that the store is intact. It runs for both store kinds.
func TestRouterSurvivesSIGKILL(t *testing.T) {
	// The routers log to their own files; envtest's logs are not needed.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	for _, kind := range []struct {
		name string
		open func(t *testing.T) faultStore
	}{
		{"git", openGit},
		{"bucket", openBucket},
	} {
		t.Run(kind.name, func(t *testing.T) { survivesSIGKILL(t, kind.open(t)) })
	}
}

func survivesSIGKILL(t *testing.T, store faultStore) {
	requests, kills := 300, 10
	if os.Getenv("SWITCHYARD_SOAK") != "" {
		requests, kills = 1000, 25
	}
	dir := t.TempDir()
	cp, err := testenv.StartControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	c, err := client.New(cp.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// The router runs as its ServiceAccount (a client certificate with its
	// user name), with the RBAC config/ ships.
	if _, err := testenv.AsRouter(context.Background(), c, cp.Config, "default"); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	b, err := cp.UserKubeConfig(testenv.RouterUser("default"), "system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, b, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildRouter(t, dir)
	ctx := context.Background()

	objs := append(store.objects(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "faults"}})
	for i := range 4 {
		objs = append(objs, &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("kill-%d", i),
			Labels: map[string]string{"provider": "localstack"}},
			Spec: v1alpha1.DestinationSpec{StateStoreRef: store.ref()}})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := testenv.CreateFile(ctx, c, filepath.Join(testenv.RepoRoot(), "config", "promises", "dynamodb", "promise.yaml")); err != nil {
		t.Fatal(err)
	}
	var promise v1alpha1.Promise
	if err := c.Get(ctx, client.ObjectKey{Name: "dynamodb"}, &promise); err != nil {
		t.Fatal(err)
	}
	if err := testenv.GrantPromise(ctx, c, &promise, "default"); err != nil {
		t.Fatal(err)
	}

	start := func() *testenv.Process {
		p, err := testenv.StartProcess(dir, "router", bin, nil, "run", "--namespace", "default", "--kubeconfig", kubeconfig, "--data-dir", filepath.Join(dir, "data"),
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--store-interval", "2s")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := start()
	defer func() { p.Stop() }()
	t.Cleanup(func() {
		if t.Failed() {
			b, err := os.ReadFile(filepath.Join(dir, "router.log"))
			t.Logf("router log (%v) ends with:\n%s", err, b[max(0, len(b)-6000):])
		}
	})
	testenv.WaitFor(t, time.Minute, "the Promise Ready", func() (bool, string) {
		var pr v1alpha1.Promise
		err := c.Get(ctx, client.ObjectKey{Name: "dynamodb"}, &pr)
		return err == nil && meta.IsStatusConditionTrue(pr.Status.Conditions, v1alpha1.ReadyCondition), fmt.Sprint(err)
	})

	created := make(chan error, 1)
	go func() {
		for i := range requests {
			u := request(fmt.Sprintf("r%04d", i))
			if err := c.Create(ctx, u); err != nil {
				created <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		created <- nil
	}()
	var others []string
	rng := rand.New(rand.NewPCG(1, 2))
	killedBusy := 0
	for i := range kills {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		if pending := notWritten(t, c); pending > 0 {
			killedBusy++
		}
		p.Kill()
		if i%3 == 0 {
			others = append(others, store.other(t, i))
		}
		p = start()
	}
	if err := <-created; err != nil {
		t.Fatalf("creating requests: %v", err)
	}
	began := time.Now()
	testenv.WaitFor(t, 5*time.Minute, "every request Written", func() (bool, string) {
		n := notWritten(t, c)
		return n == 0, fmt.Sprintf("%d not written", n)
	})
	t.Logf("%d requests, %d SIGKILLs (%d while requests were unwritten), %d other-writer writes; converged %s after the last restart",
		requests, kills, killedBusy, len(others), time.Since(began).Round(time.Millisecond))
	// A kill between bursts proves little: a good share must hit the
	// router while it has requests to write (seen: 9 of 10 with Git, 6 of
	// 10 with a bucket; the requests stop coming before the kills do).
	if killedBusy*3 < kills {
		t.Errorf("only %d of %d SIGKILLs hit the router while requests were unwritten", killedBusy, kills)
	}

	// Every request exactly once, where its status says.
	files := store.files(t)
	where := map[string][]string{}
	for _, f := range files {
		parts := strings.Split(f, "/")
		if len(parts) == 7 && parts[2] == "resources" && parts[3] == "faults" {
			where[parts[5]] = append(where[parts[5]], parts[1])
		}
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(requestGVK.GroupVersion().WithKind("DynamoDBRequestList"))
	if err := c.List(ctx, list, client.InNamespace("faults")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != requests || len(where) != requests {
		t.Errorf("%d requests, %d request directories in the store; want %d of each", len(list.Items), len(where), requests)
	}
	for _, u := range list.Items {
		var st v1alpha1.RequestStatus
		raw, _ := u.Object["status"].(map[string]any)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st); err != nil {
			t.Fatal(err)
		}
		if got := where[u.GetName()]; len(got) != 1 || got[0] != st.Destination {
			t.Errorf("%s: status says %q, the store has it on %v", u.GetName(), st.Destination, got)
		}
	}
	for _, o := range others {
		store.kept(t, o)
	}
	store.check(t)
	clonePacks(t, filepath.Join(dir, "data"))
}

// clonePacks checks that the killed routers' Git clone (if the store is
// Git) kept a bounded number of packs and no half-written pack files.
func clonePacks(t *testing.T, dataDir string) {
	packs, err := filepath.Glob(filepath.Join(dataDir, "*", "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	temps, err := filepath.Glob(filepath.Join(dataDir, "*", "objects", "pack", "tmp_*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) == 0 {
		return // a bucket store has no clone
	}
	t.Logf("the router's clone holds %d packs and %d temporary files", len(packs), len(temps))
	// gitstate merges packs past 10; Open removes temporary files.
	if len(packs) > 10 || len(temps) > 0 {
		t.Errorf("the router's clone holds %d packs (want at most 10) and %d temporary files (want none)", len(packs), len(temps))
	}
}

// faultStore is the state store the killed routers write to.
type faultStore interface {
	// objects are the store and its Secret, to create on the platform.
	objects() []client.Object
	ref() v1alpha1.StateStoreReference
	// files lists every file in the store.
	files(t *testing.T) []string
	// other writes as another writer would, and returns what kept checks.
	other(t *testing.T, i int) string
	kept(t *testing.T, other string)
	// check verifies the store's integrity after the routers converged.
	check(t *testing.T)
}

type gitFaults struct {
	g   *testenv.GitServer
	url string
}

func openGit(t *testing.T) faultStore {
	g := testenv.StartGitServer(t)
	return &gitFaults{g: g, url: g.NewRepo(t, "faults")}
}

func (s *gitFaults) objects() []client.Object {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "faults-git", Namespace: "default"},
		StringData: map[string]string{"username": testenv.GitUser, "password": testenv.GitPassword}}
	return []client.Object{secret, &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: "faults"}, Spec: v1alpha1.GitStateStoreSpec{
		URL: s.url, Path: "clusters", SecretRef: &v1alpha1.SecretReference{Name: secret.Name, Namespace: "default"}}}}
}
func (s *gitFaults) ref() v1alpha1.StateStoreReference {
	return v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: "faults"}
}
func (s *gitFaults) files(t *testing.T) []string { return testenv.Files(t, s.url) }
func (s *gitFaults) other(t *testing.T, i int) string {
	return pushOther(t, s.url, fmt.Sprintf("other-%d.txt", i))
}
func (s *gitFaults) kept(t *testing.T, commit string) { testenv.CheckHistoryKeeps(t, s.url, commit) }
func (s *gitFaults) check(t *testing.T) {
	if out, err := testenv.GitE(s.g.RepoDir("faults"), "fsck", "--full"); err != nil {
		t.Errorf("git fsck on the remote: %v\n%s", err, out)
	}
}

type bucketFaults struct{ s *testenv.S3Server }

func openBucket(t *testing.T) faultStore { return &bucketFaults{s: testenv.StartS3(t, "faults")} }

func (s *bucketFaults) objects() []client.Object {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "faults-s3", Namespace: "default"},
		StringData: map[string]string{"accessKeyID": testenv.S3AccessKey, "secretAccessKey": testenv.S3SecretKey}}
	return []client.Object{secret, &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: "faults"}, Spec: v1alpha1.BucketStateStoreSpec{
		Endpoint: s.s.Endpoint, Insecure: true, BucketName: "faults", Path: "clusters",
		SecretRef: &v1alpha1.SecretReference{Name: secret.Name, Namespace: "default"}}}}
}
func (s *bucketFaults) ref() v1alpha1.StateStoreReference {
	return v1alpha1.StateStoreReference{Kind: v1alpha1.BucketStateStoreKind, Name: "faults"}
}
func (s *bucketFaults) files(t *testing.T) []string { return s.s.Keys(t, "faults") }

// other puts an object outside every destination's directory, under the
// store's path, as another tool sharing the bucket would.
func (s *bucketFaults) other(t *testing.T, i int) string {
	key := fmt.Sprintf("clusters/other/other-%d.txt", i)
	s.s.Put(t, "faults", key, []byte("another writer\n"))
	return key
}
func (s *bucketFaults) kept(t *testing.T, key string) {
	if got := string(s.s.Get(t, "faults", key)); got != "another writer\n" {
		t.Errorf("%s: %q", key, got)
	}
}

// check: the version marker names the store's content as Flux would
// digest it (a kill between the objects and the marker is repaired by the
// next start), and no write check was left behind.
func (s *bucketFaults) check(t *testing.T) {
	testenv.WaitFor(t, time.Minute, "the version marker naming the store's content", func() (bool, string) {
		var m bucketstate.Marker
		if err := json.Unmarshal(s.s.Get(t, "faults", "clusters/.switchyard/version.json"), &m); err != nil {
			return false, err.Error()
		}
		d := s.s.FluxDigest(t, "faults", "clusters")
		return m.Revision == d, fmt.Sprintf("marker %s, content %s", m.Revision, d)
	})
	for _, k := range s.s.Keys(t, "faults") {
		if strings.Contains(k, "/write-check-") {
			t.Errorf("%s left behind", k)
		}
	}
}

// pushOther commits a file as another writer would, rebasing and retrying
// when the branch moved under it (a push of the killed router can still
// land after the kill), and returns the commit.
func pushOther(t *testing.T, url, name string) string {
	t.Helper()
	dir := testenv.Clone(t, url)
	if err := os.WriteFile(filepath.Join(dir, name), []byte("another writer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, dir, "add", name)
	testenv.Git(t, dir, "commit", "-q", "-m", "another writer adds "+name)
	for try := 0; ; try++ {
		out, err := testenv.GitE(dir, "push", "-q", "origin", "main")
		if err == nil {
			return testenv.Git(t, dir, "rev-parse", "HEAD")
		}
		if try == 5 {
			t.Fatalf("another writer could not push: %v\n%s", err, out)
		}
		testenv.Git(t, dir, "pull", "-q", "--rebase", "origin", "main")
	}
}

func request(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"tableName": name, "hashKey": map[string]any{"name": "id", "type": "S"}}}}
	u.SetGroupVersionKind(requestGVK)
	u.SetNamespace("faults")
	u.SetName(name)
	return u
}

// notWritten counts the requests without Written=True.
func notWritten(t *testing.T, c client.Client) int {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(requestGVK.GroupVersion().WithKind("DynamoDBRequestList"))
	if err := c.List(context.Background(), list, client.InNamespace("faults")); err != nil {
		return -1
	}
	n := 0
	for _, u := range list.Items {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		ok := false
		for _, c := range conds {
			m, _ := c.(map[string]any)
			ok = ok || (m["type"] == v1alpha1.WrittenCondition && m["status"] == "True")
		}
		if !ok {
			n++
		}
	}
	return n
}

// buildRouter builds cmd/router, so the test kills the real binary.
func buildRouter(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "router")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/router")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/router: %v\n%s", err, out)
	}
	return bin
}
