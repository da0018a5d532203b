package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	kratixv1alpha1 "github.com/switchyard-dev/switchyard/api/kratix/v1alpha1"
	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// applyKratixPromise applies a Kratix Promise file as it is, grants the
// router the rights `router rbac` prints for the Promise it imports, and
// waits until the Kratix Promise reports Ready.
func applyKratixPromise(t *testing.T, file string) string {
	t.Helper()
	ctx := context.Background()
	objs := testenv.MustReadObjects(t, testenv.RepoRoot()+"/"+file)
	if len(objs) != 1 || objs[0].GetAPIVersion() != "platform.kratix.io/v1alpha1" {
		t.Fatalf("%s: want one platform.kratix.io/v1alpha1 object", file)
	}
	if err := testenv.CreateFile(ctx, platform, testenv.RepoRoot()+"/"+file); err != nil {
		t.Fatal(err)
	}
	name := objs[0].GetName()
	imported := &v1alpha1.Promise{}
	testenv.WaitFor(t, time.Minute, "Promise "+name+" imported", func() (bool, string) {
		err := platform.Get(ctx, types.NamespacedName{Name: name}, imported)
		return err == nil, fmt.Sprint(err)
	})
	if err := testenv.GrantPromise(ctx, platform, imported, testenv.SecretsNamespace); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "Kratix Promise "+name+" Ready", func() (bool, string) {
		var k kratixv1alpha1.Promise
		if err := platform.Get(ctx, types.NamespacedName{Name: name}, &k); err != nil {
			return false, err.Error()
		}
		c := apimeta.FindStatusCondition(k.Status.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
	})
	return name
}

var tableRequestGVK = schema.GroupVersionKind{Group: "aws.switchyard.dev", Version: "v1alpha1", Kind: "DynamoDBTableRequest"}

// TestKratixDynamoDBEndToEnd: the Kratix-format DynamoDB Promise, applied
// as it is: its pipeline (cmd/dynamodb-pipeline) runs in a Job with the
// contract, its destination selector places the request, Flux applies the
// Table, the table is ACTIVE, and status.yaml's fields are on the request.
func TestKratixDynamoDBEndToEnd(t *testing.T) {
	ctx := context.Background()
	applyKratixPromise(t, "config/promises/dynamodb-kratix/promise.yaml")
	newNamespace(t, "team-kratix")
	req := &unstructured.Unstructured{}
	req.SetGroupVersionKind(tableRequestGVK)
	req.SetNamespace("team-kratix")
	req.SetName("ledger")
	req.Object["spec"] = map[string]any{"tableName": "kratix-ledger", "hashKey": map[string]any{"name": "id", "type": "S"},
		"destinationSelector": map[string]any{"region": "west"}}
	if err := platform.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	st := waitRequestReady(t, tableRequestGVK, "team-kratix", "ledger", metav1.ConditionTrue, v1alpha1.ResourcesReady, "", 3*time.Minute)
	if st.Destination != "west" {
		t.Errorf("placed on %q, want west (the pipeline's destination-selectors.yaml and the request's selector)", st.Destination)
	}
	_, u := requestStatus(t, tableRequestGVK, "team-kratix", "ledger")
	checkJobContract(t, u, contract{promise: "dynamodb-kratix", pipeline: "configure-table", plural: "dynamodbtablerequests", containers: "table"})
	for field, want := range map[string]string{"tableName": "kratix-ledger", "message": "table kratix-ledger requested"} {
		if got, _, _ := unstructured.NestedString(u.Object, "status", field); got != want {
			t.Errorf("status.%s = %q, want %q (from status.yaml)", field, got, want)
		}
	}
	path := "west/resources/team-kratix/dynamodb-kratix/ledger/configure-table.table.yaml"
	if got := repoFile(t, st.Commit, path); !strings.Contains(got, "tableName: kratix-ledger") {
		t.Errorf("commit %s: %s is %q, want the pipeline's Table", st.Commit, path, got)
	}
	testenv.WaitFor(t, time.Minute, "table kratix-ledger ACTIVE", func() (bool, string) {
		out, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("kratix-ledger")})
		if err != nil {
			return false, err.Error()
		}
		return out.Table.TableStatus == "ACTIVE", string(out.Table.TableStatus)
	})
	if err := platform.Delete(ctx, req); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "the request and its table gone", func() (bool, string) {
		_, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("kratix-ledger")})
		return err != nil, fmt.Sprint(err)
	})
}

// TestKratixExamplesRun: three Kratix-format Promises in the shapes the
// marketplace uses, applied as they are, run: a namespace Promise whose
// pipeline writes the destination selector, a Promise of two resource
// pipelines, and a Promise with promise and resource workflows.
func TestKratixExamplesRun(t *testing.T) {
	ctx := context.Background()
	// A destination only these requests can take: its labels are what
	// the examples select, and no other Promise's.
	d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: "examples", Labels: map[string]string{"environment": "dev", "tier": "gold"}},
		Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: store.Name}}}
	if err := stack.AddDestination(ctx, platform, d, destinations.StoreObject{Git: store}); err != nil {
		t.Fatal(err)
	}
	if err := waitTrue(ctx, d, v1alpha1.ReadyCondition); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ group, resource string }{{"", "namespaces"}, {"", "configmaps"}, {"apps", "deployments"}} {
		grantFeedback(t, stack.DestinationClient, r.group, r.resource)
	}
	newNamespace(t, "team-examples")
	examples := func(kind string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: "examples.switchyard.dev", Version: "v1alpha1", Kind: kind}
	}
	create := func(kind, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(examples(kind))
		u.SetNamespace("team-examples")
		u.SetName(name)
		u.Object["spec"] = spec
		if err := platform.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}

	t.Run("namespace, placed by its pipeline's selector", func(t *testing.T) {
		applyKratixPromise(t, "config/promises/kratix-examples/namespace.yaml")
		create("AppNamespace", "payments", map[string]any{"tier": "gold"})
		st := waitRequestReady(t, examples("AppNamespace"), "team-examples", "payments", metav1.ConditionTrue, v1alpha1.ResourcesReady, "", 3*time.Minute)
		if st.Destination != "examples" {
			t.Errorf("placed on %q, want examples, the only destination with tier=gold", st.Destination)
		}
	})

	t.Run("two resource pipelines", func(t *testing.T) {
		applyKratixPromise(t, "config/promises/kratix-examples/configmap.yaml")
		create("ConfigBundle", "settings", map[string]any{"colour": "red"})
		st := waitRequestReady(t, examples("ConfigBundle"), "team-examples", "settings", metav1.ConditionTrue, v1alpha1.ResourcesReady, "", 3*time.Minute)
		files := repoFiles(t, st.Commit, "examples/resources/team-examples/configmap/settings/")
		if len(files) != 2 {
			t.Errorf("the request's directory holds %v, want one file from each pipeline", files)
		}
	})

	t.Run("promise and resource workflows", func(t *testing.T) {
		applyKratixPromise(t, "config/promises/kratix-examples/webapp.yaml")
		for _, dest := range []string{"east", "west", "examples"} {
			if files := repoFiles(t, "HEAD", dest+"/dependencies/webapp/"); len(files) == 0 {
				t.Errorf("destination %s has no dependencies from the promise.configure pipeline", dest)
			}
		}
		// The Promise selects no destination; the request picks the one
		// with Flux running for it (other tests leave some without).
		create("WebApp", "shop", map[string]any{"destinationSelector": map[string]any{"tier": "gold"}})
		st := waitRequestReady(t, examples("WebApp"), "team-examples", "shop", metav1.ConditionFalse, v1alpha1.ResourceInProgress, "Deployment", 3*time.Minute)
		if !apimeta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition) {
			t.Errorf("ConfigureWorkflowCompleted: %v", apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConfigureWorkflowCompletedCondition))
		}
	})
}
