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
		testenv.WaitFor(t, 30*time.Second, name+" synced", func() (bool, string) {
			if err := stack.DestinationClient.Get(ctx, client.ObjectKeyFromObject(tbl), tbl); err != nil {
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
		if err := stack.DestinationClient.Delete(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 30*time.Second, name+" object gone", func() (bool, string) {
			err := stack.DestinationClient.Get(ctx, client.ObjectKeyFromObject(tbl), tbl.DeepCopy())
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
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
