package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// Two teams asking for one table name is the takeover of the trust issue:
// ACK adopts an existing table of the name, and deleting the second
// request's Table deletes the first team's table. Claims stop the second
// request before anything of it is written.

// TestClaimConflictOneDestination: team-b asks for team-a's table on the
// same destination. It waits with ClaimConflict and nothing in the repo;
// deleting it leaves team-a's table and data; once team-a's request is
// gone, a waiting team-b request proceeds by itself.
func TestClaimConflictOneDestination(t *testing.T) {
	newNamespace(t, "claim-a")
	newNamespace(t, "claim-b")
	east := map[string]any{"region": "east"}
	a := createRequest(t, request("claim-a", "orders", "claimed-orders", east))
	waitReady(t, "claim-a", "orders", time.Minute)
	putItem(t, "claimed-orders", "team-a")

	b := createRequest(t, request("claim-b", "orders", "claimed-orders", east))
	waitClaimConflict(t, "claim-b", "orders", "DynamoDBRequest claim-a/orders")
	checkNotWritten(t, "claim-b", "orders")
	testenv.WaitForEvent(t, platform, "claim-b", "orders", v1alpha1.ClaimConflict)

	deleteRequest(t, b)
	checkItem(t, "claimed-orders", "team-a")
	checkPlaced(t, testenv.Clone(t, stack.RepoURL), "claim-a", "orders", "claimed-orders", waitReady(t, "claim-a", "orders", time.Minute))

	// A new team-b request waits, then takes the name once team-a's
	// request and its table are gone, woken by the release (the fallback
	// recheck is a minute).
	b = createRequest(t, request("claim-b", "orders", "claimed-orders", east))
	waitClaimConflict(t, "claim-b", "orders", "DynamoDBRequest claim-a/orders")
	deleteRequest(t, a)
	released := time.Now()
	stB := waitReady(t, "claim-b", "orders", 45*time.Second)
	t.Logf("claim released: the waiting request was Ready %s after the holder went", time.Since(released).Round(time.Millisecond))
	checkPlaced(t, testenv.Clone(t, stack.RepoURL), "claim-b", "orders", "claimed-orders", stB)
	deleteRequest(t, b)
}

// TestClaimConflictSharedEndpoint: east and west are two destinations with
// one DynamoDB endpoint and region, so one namespace of table names.
func TestClaimConflictSharedEndpoint(t *testing.T) {
	newNamespace(t, "claim-c")
	newNamespace(t, "claim-d")
	c := createRequest(t, request("claim-c", "orders", "shared-orders", map[string]any{"region": "east"}))
	waitReady(t, "claim-c", "orders", time.Minute)
	putItem(t, "shared-orders", "team-c")

	d := createRequest(t, request("claim-d", "orders", "shared-orders", map[string]any{"region": "west"}))
	waitClaimConflict(t, "claim-d", "orders", "DynamoDBRequest claim-c/orders")
	checkNotWritten(t, "claim-d", "orders")
	deleteRequest(t, d)
	checkItem(t, "shared-orders", "team-c")
	deleteRequest(t, c)
}

// TestClaimConflictAcrossRestart: the second request is created while no
// router runs; the new router must know the first one holds the name
// before it decides anything.
func TestClaimConflictAcrossRestart(t *testing.T) {
	newNamespace(t, "claim-e")
	newNamespace(t, "claim-f")
	e := createRequest(t, request("claim-e", "orders", "restart-orders", map[string]any{"region": "east"}))
	waitReady(t, "claim-e", "orders", time.Minute)
	putItem(t, "restart-orders", "team-e")

	stopRouter()
	stopRouter = func() {}
	f := createRequest(t, request("claim-f", "orders", "restart-orders", map[string]any{"region": "west"}))
	checkNotWritten(t, "claim-f", "orders")
	stop, err := runRouter()
	if err != nil {
		t.Fatal(err)
	}
	stopRouter = stop
	waitClaimConflict(t, "claim-f", "orders", "DynamoDBRequest claim-e/orders")
	checkNotWritten(t, "claim-f", "orders")
	deleteRequest(t, f)
	checkItem(t, "restart-orders", "team-e")
	deleteRequest(t, e)
}

// TestTableCreatedOutOfBand: a table made directly at the endpoint, with
// the name a request then asks for. ACK adopts it, as it does any table
// of the name, and changes it to the request's spec; the request must
// never report it as its own.
func TestTableCreatedOutOfBand(t *testing.T) {
	ctx := context.Background()
	newNamespace(t, "claim-oob")
	_, err := stack.ACK.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("oob-orders"),
		BillingMode:           ddbtypes.BillingModeProvisioned,
		ProvisionedThroughput: &ddbtypes.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(1), WriteCapacityUnits: aws.Int64(1)},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("at"), AttributeType: ddbtypes.ScalarAttributeTypeN}},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("at"), KeyType: ddbtypes.KeyTypeRange}}})
	if err != nil {
		t.Fatal(err)
	}
	var arn string
	var created time.Time
	testenv.WaitFor(t, 30*time.Second, "table oob-orders ACTIVE", func() (bool, string) {
		out, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("oob-orders")})
		if err != nil {
			return false, err.Error()
		}
		arn, created = aws.ToString(out.Table.TableArn), aws.ToTime(out.Table.CreationDateTime)
		return out.Table.TableStatus == ddbtypes.TableStatusActive, string(out.Table.TableStatus)
	})
	// Creation times on the API server have a resolution of one second:
	// create the request in a later second than the table, as any real
	// out-of-band table is.
	testenv.WaitFor(t, 5*time.Second, "the second after the table's creation", func() (bool, string) {
		return time.Now().Truncate(time.Second).After(created), fmt.Sprintf("table created at %s", created)
	})
	req := request("claim-oob", "orders", "oob-orders", map[string]any{"region": "east"})
	req.Object["spec"].(map[string]any)["tags"] = map[string]any{"team": "oob"}
	r := createRequest(t, req)
	var msg string
	testenv.WaitFor(t, time.Minute, "Ready=False TableNotOwned", func() (bool, string) {
		st, err := status(t, "claim-oob", "orders")
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		if c.Status == metav1.ConditionTrue || st.Outputs["tableArn"] == arn || st.Verified["tableArn"] == arn {
			t.Fatalf("Ready %s (%s: %s) with outputs %v, verified %v: the out-of-band table %s is reported as the request's", c.Status, c.Reason, c.Message, st.Outputs, st.Verified, arn)
		}
		msg = c.Message
		return c.Reason == v1alpha1.TableNotOwned && strings.Contains(c.Message, "oob-orders"), c.Reason + ": " + c.Message
	})
	t.Logf("Ready: %s", msg)
	// ACK's update path made the table match the request's spec: what a
	// second request for an existing name does to its owner's table.
	testenv.WaitFor(t, 30*time.Second, "the adopted table on demand and tagged", func() (bool, string) {
		out, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("oob-orders")})
		if err != nil {
			return false, err.Error()
		}
		tags, err := stack.ACK.DynamoDB.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			return false, err.Error()
		}
		mode := ""
		if out.Table.BillingModeSummary != nil {
			mode = string(out.Table.BillingModeSummary.BillingMode)
		}
		tagged := len(tags.Tags) == 1 && aws.ToString(tags.Tags[0].Key) == "team" && aws.ToString(tags.Tags[0].Value) == "oob"
		return mode == string(ddbtypes.BillingModePayPerRequest) && tagged, fmt.Sprintf("billing mode %q, tags %d", mode, len(tags.Tags))
	})
	// ACK adopted the table, so deleting the request deletes it, as ACK
	// would; the Table object's deletion policy is what keeps a table.
	deleteRequest(t, r)
}

func createRequest(t *testing.T, r client.Object) client.Object {
	t.Helper()
	if err := platform.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// deleteRequest deletes r and waits until its finalizer let it go.
func deleteRequest(t *testing.T, r client.Object) {
	t.Helper()
	if err := platform.Delete(context.Background(), r); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, fmt.Sprintf("request %s/%s gone", r.GetNamespace(), r.GetName()), func() (bool, string) {
		st, err := status(t, r.GetNamespace(), r.GetName())
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return false, c.Reason + ": " + c.Message
	})
}

// waitClaimConflict waits until the request waits for a claim that holder
// (kind namespace/name) has: Written and Ready False with ClaimConflict.
// It fails at once if the request becomes Ready.
func waitClaimConflict(t *testing.T, ns, name, holder string) {
	t.Helper()
	testenv.WaitFor(t, time.Minute, fmt.Sprintf("%s/%s ClaimConflict naming %s", ns, name, holder), func() (bool, string) {
		st, err := status(t, ns, name)
		if err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ReadyCondition)
		written := meta.FindStatusCondition(st.Conditions, v1alpha1.WrittenCondition)
		if ready == nil || written == nil {
			return false, fmt.Sprintf("conditions %+v", st.Conditions)
		}
		if ready.Status == metav1.ConditionTrue {
			t.Fatalf("%s/%s is Ready (%s: %s) on %s with tableArn %q: it took %s's table", ns, name, ready.Reason, ready.Message, st.Destination, st.Outputs["tableArn"], holder)
		}
		return ready.Reason == v1alpha1.ClaimConflict && written.Reason == v1alpha1.ClaimConflict &&
				written.Status == metav1.ConditionFalse && strings.Contains(ready.Message, holder),
			fmt.Sprintf("Written %s %s; Ready %s %s: %s", written.Status, written.Reason, ready.Status, ready.Reason, ready.Message)
	})
}

// checkNotWritten checks that no destination's directory in the state
// repo holds anything of the request.
func checkNotWritten(t *testing.T, ns, name string) {
	t.Helper()
	dir := fmt.Sprintf("/resources/%s/dynamodb/%s/", ns, name)
	for _, f := range testenv.Files(t, stack.RepoURL) {
		if strings.Contains(f, dir) {
			t.Errorf("%s is in the state repo: the request was written", f)
		}
	}
}

// putItem and checkItem put and read an item naming its owner, to show a
// table survived with its data.
// putItem puts one item, naming its owner, into table; checkItem finds
// it there after whatever the test does.
func putItem(t *testing.T, table, owner string) {
	t.Helper()
	_, err := stack.ACK.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table),
		Item: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "row-1"},
			"at": &ddbtypes.AttributeValueMemberN{Value: "1"}, "owner": &ddbtypes.AttributeValueMemberS{Value: owner}}})
	if err != nil {
		t.Fatalf("putting an item in %s: %v", table, err)
	}
}

func checkItem(t *testing.T, table, owner string) {
	t.Helper()
	out, err := stack.ACK.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "row-1"}, "at": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
	if err != nil {
		t.Fatalf("%s's table %s: %v", owner, table, err)
	}
	got, _ := out.Item["owner"].(*ddbtypes.AttributeValueMemberS)
	if got == nil || got.Value != owner {
		t.Fatalf("%s's item in table %s is gone: %v", owner, table, out.Item)
	}
}
