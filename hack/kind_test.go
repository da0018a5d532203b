package hack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// Tests of hack/kind-two-clusters.sh that need no Docker: they read the
// steps its --dry-run prints and run the ones that can run here against a
// real API server (envtest's kube-apiserver, with the kubectl of the same
// version).

// dryRun runs the script's --dry-run with args and returns its standard
// output: the steps, one "+ command" a line, under "== section" headings.
// LOCALSTACK_AUTH_TOKEN is removed from the environment so the steps do not
// depend on the caller's.
func dryRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("./kind-two-clusters.sh", append([]string{"--dry-run"}, args...)...)
	cmd.Env = environWithout("LOCALSTACK_AUTH_TOKEN")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kind-two-clusters.sh --dry-run %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// steps returns the commands a dry run prints, without their "+ ".
func steps(out string) []string {
	var s []string
	for _, line := range strings.Split(out, "\n") {
		if cmd, ok := strings.CutPrefix(line, "+ "); ok {
			s = append(s, cmd)
		}
	}
	return s
}

func environWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}

func kubectl(t *testing.T) string {
	t.Helper()
	bin, err := testenv.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var (
	apiServerOnce sync.Once
	apiServer     *testenv.ControlPlane
	apiServerErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if apiServer != nil {
		if err := apiServer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// bareAPIServer returns a client and an admin kubeconfig file for the
// package's API server, started on first use with nothing installed, as a
// new kind cluster is. Tests that share it keep to namespaces of their own.
func bareAPIServer(t *testing.T) (client.Client, string) {
	t.Helper()
	apiServerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-hack-")
		if err != nil {
			apiServerErr = err
			return
		}
		defer os.RemoveAll(dir)
		apiServer, apiServerErr = testenv.StartControlPlane(dir) // an empty directory: no CRDs
	})
	if apiServerErr != nil {
		t.Fatal(apiServerErr)
	}
	kc, err := apiServer.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(apiServer.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, path
}

// onCluster turns a kubectl step the script runs on the kind cluster
// context into kubectl arguments for the API server of kubeconfig. Steps
// that are pipelines are refused: their words are not one command.
func onCluster(t *testing.T, step, context, kubeconfig string) []string {
	t.Helper()
	if strings.ContainsAny(step, "|\"'$") {
		t.Fatalf("not a single command: %s", step)
	}
	args := strings.Fields(step)
	if len(args) < 3 || args[0] != "kubectl" || args[1] != "--context" || args[2] != context {
		t.Fatalf("not a kubectl step on %s: %s", context, step)
	}
	return append([]string{"--kubeconfig", kubeconfig}, args[3:]...)
}

// TestKindRouterInstallConverges runs the steps that install the router on
// the platform cluster (the manifests and the kind settings), exactly as
// the dry run prints them, three times in a row against a real API server.
// No run may fail (a second run used to stop on field-manager conflicts),
// and the objects must end as config/kind/router renders them, each owned
// by one field manager.
func TestKindRouterInstallConverges(t *testing.T) {
	bin := kubectl(t)
	var install []string
	for _, s := range steps(dryRun(t, "--store", "git")) {
		if strings.HasPrefix(s, "kubectl --context kind-platform apply ") &&
			(strings.Contains(s, "/config/kind/router") || strings.Contains(s, "/dist/")) {
			install = append(install, s)
		}
	}
	if len(install) == 0 {
		t.Fatal("the dry run shows no step applying config/kind/router")
	}
	c, kubeconfig := bareAPIServer(t)
	var generation int64 // of the Deployment: a change rolls the router out again
	for run := 1; run <= 3; run++ {
		for _, step := range install {
			out, err := exec.Command(bin, onCluster(t, step, "kind-platform", kubeconfig)...).CombinedOutput()
			if err != nil {
				t.Fatalf("run %d of %s: %v\n%s", run, step, err, out)
			}
		}
		d := routerDeployment(t, c)
		if run > 1 && d.GetGeneration() != generation {
			t.Errorf("run %d changed the router Deployment (generation %d, then %d): a re-run rolls the router out again", run, generation, d.GetGeneration())
		}
		generation = d.GetGeneration()
	}

	rendered, err := exec.Command(bin, "kustomize", filepath.Join(testenv.RepoRoot(), "config", "kind", "router")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/kind/router: %v", err)
	}
	want, err := testenv.DecodeObjects(rendered)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(w.GroupVersionKind())
		name := w.GetKind() + " " + w.GetName()
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(w), live); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if where := notContained(w.Object, live.Object, ""); where != "" {
			t.Errorf("%s differs from config/kind/router at %s", name, where)
		}
		for _, m := range live.GetManagedFields() {
			if m.Subresource == "" && (m.Manager != "kubectl" || m.Operation != metav1.ManagedFieldsOperationApply) {
				t.Errorf("%s has fields of manager %q (%s); want only kubectl's server-side apply", name, m.Manager, m.Operation)
			}
		}
	}

	// What the kind demo relies on, spelled out.
	d := routerDeployment(t, c)
	replicas, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
	strategy, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	router, _ := containers[0].(map[string]any)
	if replicas != 1 || strategy != "Recreate" || router["image"] != "switchyard-router:kind" || router["imagePullPolicy"] != "Never" ||
		!contains(router["args"], "--serve-git=:8082") || !contains(router["args"], "--leader-elect") {
		t.Errorf("the router Deployment: replicas %d, strategy %s, image %v (%v), args %v; want 1, Recreate, switchyard-router:kind (Never), --serve-git=:8082 and --leader-elect",
			replicas, strategy, router["image"], router["imagePullPolicy"], router["args"])
	}
}

func routerDeployment(t *testing.T, c client.Client) *unstructured.Unstructured {
	t.Helper()
	d := &unstructured.Unstructured{}
	d.SetAPIVersion("apps/v1")
	d.SetKind("Deployment")
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "switchyard-system", Name: "switchyard-router"}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func contains(list any, s string) bool {
	l, _ := list.([]any)
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// notContained returns where want has something got lacks or holds
// otherwise ("" when got contains want). Lists must have the same length;
// numbers compare by value, whatever their Go type.
func notContained(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if where := notContained(w[k], g[k], path+"."+k); where != "" {
				return where
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s (want %d items, have %v)", path, len(w), got)
		}
		for i := range w {
			if where := notContained(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); where != "" {
				return where
			}
		}
		return ""
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Sprintf("%s (want %v, have %v)", path, want, got)
		}
		return ""
	}
}

// TestKindLocalStackServices checks, per --store, that the LocalStack the
// dry run deploys starts every AWS service the other steps use: LocalStack
// loads only those SERVICES lists, so a missing one fails at run time
// (S3 was missing for --store bucket). What is used is read from the steps
// and the manifests they apply: ACK's endpoints, awslocal commands, the
// Destination's probe and a BucketStateStore.
func TestKindLocalStackServices(t *testing.T) {
	root := testenv.RepoRoot()
	for _, store := range []string{"git", "bucket"} {
		t.Run(store, func(t *testing.T) {
			need := map[string]string{}
			enabled := map[string]bool{}
			all := false
			for _, s := range steps(dryRun(t, "--store", store)) {
				words := strings.Fields(s)
				for i, w := range words {
					if w == "awslocal" && i+1 < len(words) {
						need[strings.TrimSuffix(words[i+1], "api")] = s // s3api is S3
					}
					if strings.HasPrefix(w, "aws.endpoint_url=http://localstack") {
						need["dynamodb"] = "ACK's DynamoDB controller"
					}
					if strings.HasPrefix(w, "aws.identity_endpoint_url=http://localstack") {
						need["sts"] = "ACK's identity endpoint"
					}
				}
				f, ok := strings.CutPrefix(s, "kubectl --context kind-platform apply -f "+root+"/config/kind/")
				if ok {
					for _, o := range testenv.MustReadObjects(t, filepath.Join(root, "config", "kind", f)) {
						endpoint, _, _ := unstructured.NestedString(o.Object, "spec", "endpoint")
						probe, _, _ := unstructured.NestedString(o.Object, "spec", "aws", "endpoint")
						if o.GetKind() == "BucketStateStore" && strings.Contains(endpoint, "localstack") {
							need["s3"] = "BucketStateStore " + o.GetName()
						}
						if o.GetKind() == "Destination" && strings.Contains(probe, "localstack") {
							need["dynamodb"] = "the probe of Destination " + o.GetName()
						}
					}
				}
				f, ok = strings.CutPrefix(s, "kubectl --context kind-localstack apply -f "+root+"/")
				if ok {
					for _, o := range testenv.MustReadObjects(t, filepath.Join(root, f)) {
						if o.GetKind() != "Deployment" || o.GetName() != "localstack" {
							continue
						}
						containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
						all = true // without SERVICES, LocalStack serves everything
						for _, c := range containers {
							env, _ := c.(map[string]any)["env"].([]any)
							for _, e := range env {
								if m, _ := e.(map[string]any); m["name"] == "SERVICES" {
									all = false
									for _, svc := range strings.Split(fmt.Sprint(m["value"]), ",") {
										enabled[strings.TrimSpace(svc)] = true
									}
								}
							}
						}
					}
				}
			}
			if len(need) == 0 || (!all && len(enabled) == 0) {
				t.Fatalf("found no services used (%v) or no LocalStack Deployment applied", need)
			}
			if store == "bucket" && need["s3"] == "" {
				t.Errorf("--store bucket uses no S3: the test no longer reads the steps right")
			}
			for svc, by := range need {
				if !all && !enabled[svc] {
					t.Errorf("LocalStack does not start %s, which %s uses", svc, by)
				}
			}
		})
	}
}

// TestKindNodeImagePinned checks that every cluster the script creates uses
// a node image pinned by digest (kind builds node images for one release;
// a tag alone can name an image built for another) of Kubernetes 1.34 or
// later, the oldest Flux v2.9 supports, and that the kind release it was
// built for is named.
func TestKindNodeImagePinned(t *testing.T) {
	image := regexp.MustCompile(`--image kindest/node:v1\.(\d+)\.\d+@sha256:[0-9a-f]{64}(\s|$)`)
	created := 0
	for _, s := range steps(dryRun(t)) {
		if !strings.HasPrefix(s, "kind create cluster ") {
			continue
		}
		created++
		m := image.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("not a kindest/node image pinned by digest: %s", s)
			continue
		}
		if minor, _ := strconv.Atoi(m[1]); minor < 34 {
			t.Errorf("Kubernetes 1.%d is older than Flux v2.9 supports (1.34): %s", minor, s)
		}
	}
	if created != 2 {
		t.Errorf("the dry run creates %d clusters, want 2", created)
	}
	b, err := os.ReadFile("kind-two-clusters.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^KIND_VERSION=v\d+\.\d+\.\d+$`).Match(b) {
		t.Error("the script does not name the kind release its node image was built for (KIND_VERSION=vX.Y.Z)")
	}
}

// TestKindFeedbackIdentity applies what the script applies for the
// router's identity on the destination (the ServiceAccount, its Role and
// the Secret for a token that does not expire), as the dry run prints it,
// to a real API server. (envtest runs no token controller, so the token
// itself is not written here.)
func TestKindFeedbackIdentity(t *testing.T) {
	bin := kubectl(t)
	c, kubeconfig := bareAPIServer(t)
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName("flux-system") // Flux's install makes it, before these steps
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	applied := 0
	for _, s := range steps(dryRun(t)) {
		if strings.HasPrefix(s, "kubectl --context kind-localstack apply -f ") && strings.Contains(s, "feedback") {
			if out, err := exec.Command(bin, onCluster(t, s, "kind-localstack", kubeconfig)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", s, err, out)
			}
			applied++
		}
	}
	secret := &unstructured.Unstructured{}
	secret.SetAPIVersion("v1")
	secret.SetKind("Secret")
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "flux-system", Name: "switchyard-feedback-token"}, secret); err != nil {
		t.Fatalf("after %d steps: %v", applied, err)
	}
	typ, _, _ := unstructured.NestedString(secret.Object, "type")
	if typ != "kubernetes.io/service-account-token" || secret.GetAnnotations()["kubernetes.io/service-account.name"] != "switchyard-feedback" {
		t.Errorf("Secret switchyard-feedback-token: type %s, annotations %v; want a token Secret of ServiceAccount switchyard-feedback", typ, secret.GetAnnotations())
	}
}

// TestKindRegionsAgree checks, per --store, that the demo's one region is
// the same everywhere: the Destination's region label and its AWS region,
// the state bucket's, ACK's and LocalStack's default (awslocal's); and
// that every request the script waits for selects the Destination by
// labels it has (eu-only, asking for eu-west-1, used to land in
// us-east-1).
func TestKindRegionsAgree(t *testing.T) {
	root := testenv.RepoRoot()
	for _, store := range []string{"git", "bucket"} {
		t.Run(store, func(t *testing.T) {
			regions := map[string]string{} // what -> region
			var labels map[string]string
			waited := map[string]bool{} // namespace/name of requests waited for
			for _, s := range steps(dryRun(t, "--store", store)) {
				for _, w := range strings.Fields(s) {
					if r, ok := strings.CutPrefix(w, "aws.region="); ok {
						regions["ACK's aws.region"] = r
					}
				}
				if f, ok := strings.CutPrefix(s, "kubectl --context kind-localstack apply -f "+root+"/config/kind/"); ok {
					for _, o := range testenv.MustReadObjects(t, filepath.Join(root, "config", "kind", f)) {
						containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
						for _, c := range containers {
							env, _ := c.(map[string]any)["env"].([]any)
							for _, e := range env {
								if m, _ := e.(map[string]any); m["name"] == "AWS_DEFAULT_REGION" {
									regions["LocalStack's AWS_DEFAULT_REGION"] = fmt.Sprint(m["value"])
								}
							}
						}
					}
				}
				if f, ok := strings.CutPrefix(s, "kubectl --context kind-platform apply -f "+root+"/config/kind/"); ok {
					for _, o := range testenv.MustReadObjects(t, filepath.Join(root, "config", "kind", f)) {
						switch o.GetKind() {
						case "Destination":
							labels = o.GetLabels()
							regions["the Destination's region label"] = labels["region"]
							regions["the Destination's spec.aws.region"], _, _ = unstructured.NestedString(o.Object, "spec", "aws", "region")
						case "BucketStateStore":
							regions["the BucketStateStore's region"], _, _ = unstructured.NestedString(o.Object, "spec", "region")
						}
					}
				}
				if rest, ok := strings.CutPrefix(s, "kubectl --context kind-platform wait --for=condition=Ready -n "); ok {
					words := strings.Fields(rest)
					for _, w := range words[1:] {
						if name, ok := strings.CutPrefix(w, "dynamodbrequest/"); ok {
							waited[words[0]+"/"+name] = true
						}
					}
				}
			}
			want := regions["the Destination's region label"]
			if want == "" || len(regions) < 4 || (store == "bucket" && len(regions) < 5) {
				t.Fatalf("found regions %v; the test no longer reads the steps right", regions)
			}
			for what, r := range regions {
				if r != want {
					t.Errorf("%s is %q, the Destination's region label %q", what, r, want)
				}
			}
			for _, o := range testenv.MustReadObjects(t, filepath.Join(root, "config", "samples", "requests.yaml")) {
				if !waited[o.GetNamespace()+"/"+o.GetName()] {
					continue
				}
				delete(waited, o.GetNamespace()+"/"+o.GetName())
				selector, _, _ := unstructured.NestedStringMap(o.Object, "spec", "destinationSelector")
				for k, v := range selector {
					if labels[k] != v {
						t.Errorf("the script waits for %s/%s, which asks for %s=%s; the Destination has %s=%q", o.GetNamespace(), o.GetName(), k, v, k, labels[k])
					}
				}
			}
			if len(waited) > 0 {
				t.Errorf("the script waits for requests config/samples/requests.yaml lacks: %v", waited)
			}
		})
	}
}

// TestKindDryRunGolden compares what the dry run prints, per --store (and
// with LOCALSTACK_AUTH_TOKEN set, and for --down), with
// hack/testdata/kind-dry-run-*.golden, the checkout's path written $ROOT,
// so that any change to the steps shows in review. After changing the
// script, regenerate them and read the diff:
//
//	UPDATE_GOLDEN=1 go test ./hack/ -run TestKindDryRunGolden
func TestKindDryRunGolden(t *testing.T) {
	root := testenv.RepoRoot()
	for _, tt := range []struct {
		name  string
		args  []string
		token string
	}{
		{"git", []string{"--store", "git"}, ""},
		{"bucket", []string{"--store", "bucket"}, ""},
		{"git-pro", []string{"--store", "git"}, "not-a-real-token"},
		{"down", []string{"--down"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("./kind-two-clusters.sh", append([]string{"--dry-run"}, tt.args...)...)
			cmd.Env = environWithout("LOCALSTACK_AUTH_TOKEN")
			if tt.token != "" {
				cmd.Env = append(cmd.Env, "LOCALSTACK_AUTH_TOKEN="+tt.token)
			}
			out, err := cmd.Output() // stderr says which tools this machine lacks: not a step
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if tt.token != "" && bytes.Contains(out, []byte(tt.token)) {
				t.Errorf("the dry run prints LOCALSTACK_AUTH_TOKEN's value")
			}
			got := bytes.ReplaceAll(out, []byte(root), []byte("$ROOT"))
			golden := filepath.Join("testdata", "kind-dry-run-"+tt.name+".golden")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the dry run's steps differ from %s; if the change is meant, run\n"+
					"\tUPDATE_GOLDEN=1 go test ./hack/ -run TestKindDryRunGolden\nand commit the diff. Now:\n%s", golden, got)
			}
		})
	}
}

// TestKindReadmeVersions checks that README's kind section states the
// versions the script pins, so the two cannot drift apart.
func TestKindReadmeVersions(t *testing.T) {
	script, err := os.ReadFile("kind-two-clusters.sh")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## On real clusters: the kind demo")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, name := range []string{"KIND_VERSION", "KIND_NODE_IMAGE", "FLUX_VERSION", "ACK_DYNAMODB_VERSION", "LOCALSTACK_IMAGE", "LOCALSTACK_PRO_IMAGE"} {
		m := regexp.MustCompile(`(?m)^` + name + `=(\S+)`).FindSubmatch(script)
		if m == nil {
			t.Errorf("the script sets no %s", name)
			continue
		}
		if !strings.Contains(section, "`"+string(m[1])+"`") {
			t.Errorf("README's kind section does not state %s, `%s`", name, m[1])
		}
	}
}
