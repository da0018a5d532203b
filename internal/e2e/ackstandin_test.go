package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestACKStandInDeletionPolicy: like ACK, the stand-in keeps the table of
// a Table object annotated services.k8s.aws/deletion-policy: retain when
// the object is deleted, and deletes the table of one without it.
func TestACKStandInDeletionPolicy(t *testing.T) {
	ctx := context.Background()
	for _, retain := range []bool{true, false} {
		name := fmt.Sprintf("standin-retain-%v", retain)
		tbl := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": tableGVK.GroupVersion().String(), "kind": tableGVK.Kind,
			"metadata": map[string]any{"name": name, "namespace": "default"},
			"spec": map[string]any{"tableName": name, "billingMode": "PAY_PER_REQUEST",
				"attributeDefinitions": []any{map[string]any{"attributeName": "id", "attributeType": "S"}},
				"keySchema":            []any{map[string]any{"attributeName": "id", "keyType": "HASH"}}},
		}}
		if retain {
			tbl.SetAnnotations(map[string]string{testenv.DeletionPolicyAnnotation: testenv.DeletionPolicyRetain})
		}
		if err := stack.DestinationClient.Create(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		waitSynced(t, tbl)
		deleteTableObject(t, tbl)
		_, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if retain && err != nil {
			t.Errorf("%s: the retained table is gone: %v", name, err)
		}
		if !retain && err == nil {
			t.Errorf("%s: the table outlived its object without a retain policy", name)
		}
		if retain {
			if _, err := stack.ACK.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestACKStandInCreatesAsSpecified: a provisioned, tagged table is made as
// its object says (the tags by the update path: dynalite ignores Tags on
// CreateTable), and is synced.
func TestACKStandInCreatesAsSpecified(t *testing.T) {
	ctx := context.Background()
	tbl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": tableGVK.GroupVersion().String(), "kind": tableGVK.Kind,
		"metadata": map[string]any{"name": "standin-provisioned", "namespace": "default"},
		"spec": map[string]any{"tableName": "standin-provisioned", "billingMode": "PROVISIONED",
			"provisionedThroughput": map[string]any{"readCapacityUnits": int64(2), "writeCapacityUnits": int64(3)},
			"attributeDefinitions":  []any{map[string]any{"attributeName": "id", "attributeType": "S"}},
			"keySchema":             []any{map[string]any{"attributeName": "id", "keyType": "HASH"}},
			"tags":                  []any{map[string]any{"key": "team", "value": "a"}}},
	}}
	if err := stack.DestinationClient.Create(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, tbl)
	testenv.WaitFor(t, 30*time.Second, "the table provisioned 2/3 and tagged", func() (bool, string) {
		out, err := stack.ACK.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("standin-provisioned")})
		if err != nil {
			return false, err.Error()
		}
		tags, err := stack.ACK.DynamoDB.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: out.Table.TableArn})
		if err != nil {
			return false, err.Error()
		}
		pt := out.Table.ProvisionedThroughput
		ok := out.Table.TableStatus == "ACTIVE" && pt != nil && aws.ToInt64(pt.ReadCapacityUnits) == 2 && aws.ToInt64(pt.WriteCapacityUnits) == 3 && len(tags.Tags) == 1
		return ok, fmt.Sprintf("%s, throughput %+v, %d tags", out.Table.TableStatus, pt, len(tags.Tags))
	})
	deleteTableObject(t, tbl)
}

// waitSynced waits until the stand-in reports tbl synced, with an ARN.
func waitSynced(t *testing.T, tbl *unstructured.Unstructured) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, tbl.GetName()+" synced", func() (bool, string) {
		if err := stack.DestinationClient.Get(context.Background(), client.ObjectKeyFromObject(tbl), tbl); err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(tbl.Object, "status", "conditions")
		arn, _, _ := unstructured.NestedString(tbl.Object, "status", "ackResourceMetadata", "arn")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == "ACK.ResourceSynced" && m["status"] == "True" && arn != "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("status %v", tbl.Object["status"])
	})
}

// deleteTableObject deletes tbl and waits until the stand-in let it go.
func deleteTableObject(t *testing.T, tbl *unstructured.Unstructured) {
	t.Helper()
	if err := stack.DestinationClient.Delete(context.Background(), tbl); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, tbl.GetName()+" object gone", func() (bool, string) {
		err := stack.DestinationClient.Get(context.Background(), client.ObjectKeyFromObject(tbl), tbl.DeepCopy())
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}
