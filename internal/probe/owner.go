package probe

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// TableGVK is ACK's DynamoDB Table.
var TableGVK = schema.GroupVersionKind{Group: "dynamodb.services.k8s.aws", Version: "v1alpha1", Kind: "Table"}

// ACKSynced is the condition type ACK sets True when a resource matches
// its object's spec.
const ACKSynced = "ACK.ResourceSynced"

// Own judges whether the table r describes is the one ACK made for the
// request's Table object obj (nil: not on the destination). ACK takes a
// Table object naming an existing table as that table (it reads by name,
// then updates), so "ACK reports it" is not enough; the table is the
// request's when
//
//   - ACK reports the object synced (ACK.ResourceSynced True) with the
//     table's ARN, and
//   - the table was created when the object existed or later (compared to
//     the second: an object's creationTimestamp has no finer resolution),
//     or it has the ARN the request recorded as its own before.
//
// Otherwise the reason is TableNotSynced (wait for ACK) or TableNotOwned
// (the table is someone else's; waiting does not help). r is returned
// with Owned set when the table is the request's.
func Own(r Result, t Target, obj *unstructured.Unstructured) Result {
	o := t.Owner
	name := fmt.Sprintf("Table %s/%s on destination %s", o.Namespace, o.Name, o.Destination)
	if obj == nil {
		return notOwned(r, v1alpha1.TableNotSynced, fmt.Sprintf("table %s exists but the %s is not there (yet)", t.Table, name))
	}
	created := obj.GetCreationTimestamp().Time
	if r.ARN != o.Recorded && r.Created.Truncate(time.Second).Before(created) {
		return notOwned(r, v1alpha1.TableNotOwned, fmt.Sprintf(
			"table %s (%s) was created at %s, before this request's %s (%s): ACK adopted an existing table, which is not this request's; delete the request or use another table name",
			t.Table, r.ARN, r.Created.UTC().Format(time.RFC3339), name, created.UTC().Format(time.RFC3339)))
	}
	status, msg := ackSynced(obj)
	arn, _, _ := unstructured.NestedString(obj.Object, "status", "ackResourceMetadata", "arn")
	switch {
	case status != "True" || arn == "":
		return notOwned(r, v1alpha1.TableNotSynced, fmt.Sprintf("ACK has not synced the %s yet (%s %q, ARN %q): %s", name, ACKSynced, status, arn, msg))
	case arn != r.ARN:
		return notOwned(r, v1alpha1.TableNotOwned, fmt.Sprintf("ACK reports ARN %s for the %s, but table %s at the endpoint is %s", arn, name, t.Table, r.ARN))
	}
	r.Owned = true
	return r
}

func notOwned(r Result, reason, msg string) Result {
	r.Reason, r.Message, r.Owned = reason, msg, false
	return r
}

// ackSynced returns the status and message of obj's ACK.ResourceSynced
// condition ("" when it has none).
func ackSynced(obj *unstructured.Unstructured) (string, string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == ACKSynced {
			status, _ := m["status"].(string)
			msg, _ := m["message"].(string)
			return status, msg
		}
	}
	return "", "no such condition"
}
