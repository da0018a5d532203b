// Command demo runs Switchyard end to end on this machine, without Docker
// or a cluster: the end-to-end test's stack (platform and destination API
// servers, Git server, Flux, dynalite, the ACK and Job stand-ins) with the router,
// LocalStack-style destinations and a destination for team namespaces, the
// DynamoDB, team-namespace and Kratix-format dynamodb-kratix Promises and
// their sample requests. It prints what happened and keeps running until Ctrl-C (or
// `make demo-down`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/statestore"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "switchyard-demo"), "directory for logs, kubeconfigs and data (emptied first)")
	once := flag.Bool("exit", false, "stop after printing, instead of running until interrupted")
	started := flag.Int64("started", 0, "Unix time the command started (make demo passes it, so that the clock counts the build too)")
	flag.StringVar(&routerCmd, "router", routerCmd, "the router command the report prints to try (make demo builds bin/router)")
	flag.Parse()
	if *started > 0 {
		start = time.Unix(*started, 0)
		step("built the demo and the router")
	}
	if err := run(*dir, *once); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var (
	start = time.Now()
	// routerCmd runs the router's CLI from the repository's top directory.
	routerCmd = "go run ./cmd/router"
)

func step(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func run(dir string, once bool) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "router.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	ctrl.SetLogger(zap.New(zap.WriteTo(logFile)))
	pidFile := filepath.Join(dir, "demo.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile)

	// Ctrl-C (SIGINT) or `make demo-down` (SIGTERM) stops everything and
	// exits 0, whenever it comes; further signals are ignored meanwhile.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = demo(ctx, dir, once)
	if ctx.Err() != nil {
		step("stopped")
		return nil
	}
	return err
}

func demo(ctx context.Context, dir string, once bool) error {
	stack, err := testenv.StartStack(dir, testenv.StackOptions{Progress: func(s string) { step("%s", s) }})
	if err != nil {
		return err
	}
	defer stack.Stop()
	platform, err := client.New(stack.Platform.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		return err
	}
	step("starting the router")
	stopRouter, err := stack.StartRouter(router.Options{DataDir: filepath.Join(dir, "router")})
	if err != nil {
		return err
	}
	defer stopRouter()

	step("registering a Git state store, an S3 bucket state store and four destinations")
	git, err := stack.Store(ctx, platform, "state")
	if err != nil {
		return err
	}
	bucket, err := stack.BucketStore(ctx, platform, "state-bucket", "clusters")
	if err != nil {
		return err
	}
	gitStore := v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: git.Name}
	bucketStore := v1alpha1.StateStoreReference{Kind: v1alpha1.BucketStateStoreKind, Name: bucket.Name}
	localstack := func(region string) map[string]string {
		return map[string]string{"env": "dev", "provider": "localstack", "region": region}
	}
	for _, d := range []struct {
		name   string
		labels map[string]string
		ref    v1alpha1.StateStoreReference
		store  destinations.StoreObject
	}{
		{"localstack-eu", localstack("eu-west-1"), gitStore, destinations.StoreObject{Git: git}},
		{"localstack-us", localstack("us-east-1"), gitStore, destinations.StoreObject{Git: git}},
		{"localstack-s3", localstack("eu-central-1"), bucketStore, destinations.StoreObject{Bucket: bucket}},
		{"teams", map[string]string{"env": "dev", "teams": "true"}, gitStore, destinations.StoreObject{Git: git}},
	} {
		dest := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: d.name, Labels: d.labels},
			Spec: v1alpha1.DestinationSpec{StateStoreRef: d.ref}}
		if err := stack.AddDestination(ctx, platform, dest, d.store); err != nil {
			return err
		}
	}
	root := testenv.RepoRoot()
	for _, p := range []string{"dynamodb", "team-namespace"} {
		step("installing the %s Promise and the router's rights on its requests (config/promises/%s)", p, p)
		for _, f := range []string{"promise.yaml", "rbac.yaml"} {
			if err := testenv.CreateFile(ctx, platform, filepath.Join(root, "config", "promises", p, f)); err != nil {
				return err
			}
		}
	}
	step("installing the Kratix-format dynamodb-kratix Promise as it is, and the router's rights (config/promises/dynamodb-kratix)")
	for _, f := range []string{"promise.yaml", "rbac.yaml"} {
		if err := testenv.CreateFile(ctx, platform, filepath.Join(root, "config", "promises", "dynamodb-kratix", f)); err != nil {
			return err
		}
	}
	for _, p := range []string{"dynamodb", "team-namespace", "dynamodb-kratix"} {
		if err := waitPromise(ctx, platform, p); err != nil {
			return err
		}
	}
	step("applying config/samples/requests.yaml, config/samples/teams.yaml and config/samples/kratix-tables.yaml")
	applied := time.Now()
	for _, f := range []string{"requests.yaml", "teams.yaml", "kratix-tables.yaml"} {
		if err := applyInOrder(ctx, platform, filepath.Join(root, "config", "samples", f)); err != nil {
			return err
		}
	}
	reqs, err := waitRequests(ctx, platform, "aws.switchyard.dev/v1alpha1", "DynamoDBRequest")
	if err != nil {
		return err
	}
	teams, err := waitRequests(ctx, platform, "platform.switchyard.dev/v1alpha1", "TeamNamespace")
	if err != nil {
		return err
	}
	kratix, err := waitRequests(ctx, platform, "aws.switchyard.dev/v1alpha1", "DynamoDBTableRequest")
	if err != nil {
		return err
	}
	step("requests settled %.1fs after they were applied", time.Since(applied).Seconds())

	kubeconfigs, err := writeKubeconfigs(dir, stack)
	if err != nil {
		return err
	}
	report(os.Stdout, stack, reqs, teams, kratix, kubeconfigs)
	if once {
		return nil
	}
	fmt.Println("\nRunning until Ctrl-C (or `make demo-down`).")
	<-ctx.Done()
	step("stopping")
	return ctx.Err()
}

// applyInOrder creates a file's objects one by one and waits for each
// request to be scheduled before the next: least-loaded placement depends
// on the order requests are placed, and the README's worked example must
// come out the same on every run.
func applyInOrder(ctx context.Context, c client.Client, path string) error {
	objs, err := testenv.ReadObjects(path)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s from %s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), path, err)
		}
		if o.GetNamespace() == "" {
			continue // a Namespace, not a request
		}
		err := testenv.Poll(ctx, 2*time.Minute, func() (bool, string) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(o.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), u); err != nil {
				return false, err.Error()
			}
			var st v1alpha1.RequestStatus
			raw, _ := u.Object["status"].(map[string]any)
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &st)
			cond := meta.FindStatusCondition(st.Conditions, v1alpha1.ScheduledCondition)
			done := cond != nil && (cond.Status == metav1.ConditionTrue || cond.Reason == v1alpha1.NoMatchingDestination)
			return done, fmt.Sprintf("%s %s/%s not scheduled yet: %+v", o.GetKind(), o.GetNamespace(), o.GetName(), cond)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func waitPromise(ctx context.Context, c client.Client, name string) error {
	return testenv.Poll(ctx, 2*time.Minute, func() (bool, string) {
		var p v1alpha1.Promise
		err := c.Get(ctx, client.ObjectKey{Name: name}, &p)
		return err == nil && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ReadyCondition), fmt.Sprintf("Promise %s not Ready (%v)", name, err)
	})
}

type request struct {
	ns, name string
	st       v1alpha1.RequestStatus
	// message is status.message, which a workflow's status.yaml sets.
	message string
}

// waitRequests waits until every request of a kind is Ready or waits for
// a destination, and returns them.
func waitRequests(ctx context.Context, c client.Client, apiVersion, kind string) ([]request, error) {
	var out []request
	err := testenv.Poll(ctx, 3*time.Minute, func() (bool, string) {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion(apiVersion)
		list.SetKind(kind + "List")
		if err := c.List(ctx, list); err != nil {
			return false, err.Error()
		}
		out = out[:0]
		settled := true
		for _, u := range list.Items {
			r := request{ns: u.GetNamespace(), name: u.GetName()}
			r.message, _, _ = unstructured.NestedString(u.Object, "status", "message")
			raw, _ := u.Object["status"].(map[string]any)
			_ = runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &r.st)
			ready := meta.FindStatusCondition(r.st.Conditions, v1alpha1.ReadyCondition)
			if ready == nil || (ready.Status != metav1.ConditionTrue && ready.Reason != v1alpha1.NoMatchingDestination) {
				settled = false
			}
			out = append(out, r)
		}
		return settled && len(out) > 0, fmt.Sprintf("%d %ss, not all settled", len(out), kind)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ns+"/"+out[i].name < out[j].ns+"/"+out[j].name })
	return out, err
}

func writeKubeconfigs(dir string, stack *testenv.Stack) (map[string]string, error) {
	platform, err := stack.Platform.KubeConfig()
	if err != nil {
		return nil, err
	}
	out := map[string]string{"platform": filepath.Join(dir, "platform.kubeconfig"), "destination": filepath.Join(dir, "destination.kubeconfig")}
	if err := os.WriteFile(out["platform"], platform, 0o600); err != nil {
		return nil, err
	}
	// StartStack wrote the destination's.
	return out, nil
}

func report(w io.Writer, stack *testenv.Stack, reqs, teams, kratix []request, kubeconfigs map[string]string) {
	fmt.Fprintln(w, "\n== DynamoDBRequests (platform API server; TABLE ARN is status.outputs.tableArn)")
	requestTable(w, reqs, "TABLE ARN", func(r request) string { return r.st.Outputs["tableArn"] })
	fmt.Fprintln(w, "\n== TeamNamespaces (platform API server; Ready from kstatus on the destination, NAMESPACE is status.outputs.namespace)")
	requestTable(w, teams, "NAMESPACE", func(r request) string { return r.st.Outputs["namespace"] })
	fmt.Fprintln(w, "\n== DynamoDBTableRequests (the Kratix-format Promise: a pipeline Job wrote each Table; MESSAGE is its status.yaml's)")
	requestTable(w, kratix, "MESSAGE", func(r request) string { return r.message })

	repo, err := os.MkdirTemp("", "switchyard-demo-clone-")
	if err == nil {
		defer os.RemoveAll(repo)
		if _, err := testenv.GitE("", "clone", "-q", testenv.AuthURL(stack.RepoURL), repo); err == nil {
			tree, _ := testenv.GitE(repo, "ls-tree", "-r", "--name-only", "HEAD")
			log, _ := testenv.GitE(repo, "log", "--format=%h %s", "-n", "12")
			fmt.Fprintf(w, "\n== State repo %s: tree\n%s\n", stack.RepoURL, tree)
			fmt.Fprintf(w, "\n== State repo: git log (newest first)\n%s\n", log)
		}
	}

	if keys, err := stack.S3.List(testenv.StateBucket); err == nil {
		fmt.Fprintf(w, "\n== State bucket %s/%s: keys\n%s\n", stack.S3.Endpoint, testenv.StateBucket, strings.Join(keys, "\n"))
		fmt.Fprintf(w, "\n== State bucket: version marker (the revision Flux's Bucket reports, and the order of revisions)\n%s\n",
			stack.S3.Object(testenv.StateBucket, "clusters/.switchyard/version.json"))
	}

	fmt.Fprintf(w, "\n== Tables at the DynamoDB endpoint %s\n", stack.Dynalite.Endpoint)
	out, err := stack.ACK.DynamoDB.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	if err != nil {
		fmt.Fprintln(w, "ListTables:", err)
	} else {
		fmt.Fprintln(w, strings.Join(out.TableNames, "\n"))
	}

	fmt.Fprintf(w, "\n== Look around (from the repository's top directory)\n")
	fmt.Fprintf(w, "%s\n", cloneCommand(stack.RepoURL))
	fmt.Fprintf(w, "%s state ls --kubeconfig %s\n", routerCmd, kubeconfigs["platform"])
	fmt.Fprintf(w, "%s place --dry-run -f config/samples/requests.yaml --kubeconfig %s\n", routerCmd, kubeconfigs["platform"])
	fmt.Fprintf(w, "kubectl --kubeconfig %s get dynamodbrequests,teamnamespaces,dynamodbtablerequests,destinations -A\n", kubeconfigs["platform"])
	fmt.Fprintf(w, "kubectl --kubeconfig %s get promises.platform.kratix.io,jobs,workflowoutputs -A\n", kubeconfigs["platform"])
	fmt.Fprintf(w, "kubectl --kubeconfig %s get gitrepositories,buckets,kustomizations,tables -A\n", kubeconfigs["destination"])
	fmt.Fprintf(w, "kubectl --kubeconfig %s get namespaces,resourcequotas,networkpolicies -l switchyard.dev/request-uid -A\n", kubeconfigs["destination"])
	if _, err := exec.LookPath("aws"); err == nil {
		fmt.Fprintf(w, "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=... aws --endpoint-url %s --region %s dynamodb list-tables\n", testenv.AWSAccessKeyID, stack.Dynalite.Endpoint, testenv.AWSRegion)
	}
	fmt.Fprintf(w, "Logs: %s\n", stack.Dir)
}

// cloneCommand clones the demo's state repository: its Git server wants
// the demo's (throwaway) credentials, so the URL carries them.
// requestTable prints requests with one more column, column.
func requestTable(w io.Writer, reqs []request, header string, column func(request) string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NAMESPACE\tNAME\tDESTINATION\tCOMMIT\tAPPLIED\tREADY\tREASON\t%s\n", header)
	for _, r := range reqs {
		applied, ready := "", ""
		var reason string
		if c := meta.FindStatusCondition(r.st.Conditions, v1alpha1.AppliedCondition); c != nil {
			applied = string(c.Status)
		}
		if c := meta.FindStatusCondition(r.st.Conditions, v1alpha1.ReadyCondition); c != nil {
			ready, reason = string(c.Status), c.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ns, r.name, r.st.Destination, statestore.Short(r.st.Commit), applied, ready, reason, column(r))
	}
	tw.Flush()
}

func cloneCommand(repoURL string) string {
	return "git clone " + testenv.AuthURL(repoURL)
}
