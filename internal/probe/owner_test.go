package probe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

const arn = "arn:aws:dynamodb:us-east-1:000000000000:table/orders"

var objectCreated = time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)

// tableObject is the request's Table object as ACK leaves it.
func tableObject(synced string, arn string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(TableGVK)
	u.SetNamespace("switchyard-dynamodb")
	u.SetName("team-a.orders")
	u.SetCreationTimestamp(metav1.NewTime(objectCreated))
	status := map[string]any{}
	if synced != "" {
		status["conditions"] = []any{map[string]any{"type": ACKSynced, "status": synced, "message": "ack says"}}
	}
	if arn != "" {
		status["ackResourceMetadata"] = map[string]any{"arn": arn}
	}
	u.Object["status"] = status
	return u
}

func ownedTarget(recorded string) Target {
	return Target{Key: "k", Table: "orders", Owner: Owner{Destination: "east", Namespace: "switchyard-dynamodb", Name: "team-a.orders", Recorded: recorded}}
}

func TestOwn(t *testing.T) {
	active := func(created time.Time) Result {
		return Result{Reason: v1alpha1.TableActive, Message: "table orders is ACTIVE", ARN: arn, Status: "ACTIVE", Created: created}
	}
	after, sameSecond, before := objectCreated.Add(2*time.Second), objectCreated.Add(300*time.Millisecond), objectCreated.Add(-time.Hour)
	tests := []struct {
		name   string
		r      Result
		target Target
		obj    *unstructured.Unstructured
		reason string
		owned  bool
		msg    string
	}{
		{"created by ACK for the object", active(after), ownedTarget(""), tableObject("True", arn), v1alpha1.TableActive, true, "ACTIVE"},
		{"created in the object's second", active(sameSecond), ownedTarget(""), tableObject("True", arn), v1alpha1.TableActive, true, "ACTIVE"},
		{"updating, but ours", Result{Reason: v1alpha1.TableNotActive, ARN: arn, Status: "UPDATING", Created: after}, ownedTarget(""), tableObject("True", arn), v1alpha1.TableNotActive, true, ""},
		{"older than the object: adopted", active(before), ownedTarget(""), tableObject("True", arn), v1alpha1.TableNotOwned, false, "ACK adopted an existing table"},
		{"older, but the ARN recorded as ours", active(before), ownedTarget(arn), tableObject("True", arn), v1alpha1.TableActive, true, ""},
		{"older, another ARN recorded", active(before), ownedTarget("arn:other"), tableObject("True", arn), v1alpha1.TableNotOwned, false, "before this request's Table switchyard-dynamodb/team-a.orders on destination east"},
		{"no Table object", active(after), ownedTarget(""), nil, v1alpha1.TableNotSynced, false, "is not there"},
		{"not synced", active(after), ownedTarget(""), tableObject("False", arn), v1alpha1.TableNotSynced, false, "ack says"},
		{"no condition", active(after), ownedTarget(""), tableObject("", arn), v1alpha1.TableNotSynced, false, "has not synced"},
		{"synced without an ARN", active(after), ownedTarget(""), tableObject("True", ""), v1alpha1.TableNotSynced, false, "has not synced"},
		{"another ARN", active(after), ownedTarget(""), tableObject("True", "arn:elsewhere"), v1alpha1.TableNotOwned, false, "ACK reports ARN arn:elsewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Own(tt.r, tt.target, tt.obj)
			if got.Reason != tt.reason || got.Owned != tt.owned || !strings.Contains(got.Message, tt.msg) {
				t.Errorf("got %s owned=%v %q; want %s owned=%v containing %q", got.Reason, got.Owned, got.Message, tt.reason, tt.owned, tt.msg)
			}
			if got.Active() && !got.Owned {
				t.Errorf("Active but not owned")
			}
		})
	}
}

type readers map[string]client.Reader

func (r readers) Reader(dest string) (client.Reader, error) {
	if c := r[dest]; c != nil {
		return c, nil
	}
	return nil, errors.New("not followed")
}

func TestTableWithOwner(t *testing.T) {
	good := secret(map[string]string{AccessKeyIDKey: "AKIDTEST", SecretAccessKeyKey: secretValue})
	// Created long before the object: an existing table ACK adopted.
	old, _ := fakeEndpoint(t, 200, `{"Table":{"TableName":"orders","TableArn":"`+arn+`","TableStatus":"ACTIVE","CreationDateTime":1.7e9}}`)
	fresh, _ := fakeEndpoint(t, 200, `{"Table":{"TableName":"orders","TableArn":"`+arn+`","TableStatus":"ACTIVE","CreationDateTime":1.9e9}}`)
	east := fake.NewClientBuilder().WithObjects(tableObject("True", arn)).Build()
	tests := []struct {
		name, url, dest, reason string
	}{
		{"ours", fresh, "east", v1alpha1.TableActive},
		{"adopted", old, "east", v1alpha1.TableNotOwned},
		{"destination not followed", fresh, "west", v1alpha1.DestinationUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prober(good)
			p.Objects = readers{"east": east}
			target := target(tt.url)
			target.Owner = ownedTarget("").Owner
			target.Owner.Destination = tt.dest
			if r := p.Table(context.Background(), target); r.Reason != tt.reason {
				t.Errorf("got %s: %s; want %s", r.Reason, r.Message, tt.reason)
			}
		})
	}
}
