package testenv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// AWS settings of the test endpoint: LocalStack's conventional fake
// credentials and region.
const (
	AWSRegion          = "us-east-1"
	AWSAccessKeyID     = "test"
	AWSSecretAccessKey = "test-secret-key-9d2e" // fake; tests check it never leaks
)

var tableGVK = schema.GroupVersionKind{Group: "dynamodb.services.k8s.aws", Version: "v1alpha1", Kind: "Table"}

const ackFinalizer = "finalizers.dynamodb.services.k8s.aws/Table"

// ACKStandIn stands in for the ACK DynamoDB controller, which cannot run
// here, and behaves as its runtime does where the router depends on it:
//
//   - A Table object whose table does not exist creates it; one whose
//     table exists (by name) takes the update path, as ACK's ReadOne
//     finding the table does: it adopts the table silently and makes it
//     match the spec (UpdateTable for the billing mode and throughput,
//     TagResource for the tags).
//   - It copies the ARN into status.ackResourceMetadata and sets the
//     ACK.ResourceSynced condition, True once the table is ACTIVE.
//   - Deleting the object deletes the table first (a finalizer), unless
//     the object is annotated services.k8s.aws/deletion-policy: retain;
//     then the table stays and only the finalizer goes.
//
// Everything else in the end-to-end test is the real thing.
type ACKStandIn struct {
	client.Client
	DynamoDB *dynamodb.Client
	cancel   context.CancelFunc
	done     chan error
}

// StartACKStandIn runs the stand-in against the API server at cfg and the
// DynamoDB endpoint.
func StartACKStandIn(cfg *rest.Config, endpoint string) (*ACKStandIn, error) {
	// One stand-in per destination cluster, several in one test process.
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		return nil, err
	}
	s := &ACKStandIn{Client: mgr.GetClient(), DynamoDB: DynamoDBClient(endpoint)}
	table := &unstructured.Unstructured{}
	table.SetGroupVersionKind(tableGVK)
	if err := ctrl.NewControllerManagedBy(mgr).Named("ack-standin").For(table).Complete(s); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- mgr.Start(ctx) }()
	return s, nil
}

// DynamoDBClient is an SDK client for the test endpoint.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{Region: AWSRegion, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(AWSAccessKeyID, AWSSecretAccessKey, "")})
}

// Stop stops the stand-in.
func (s *ACKStandIn) Stop() error {
	s.cancel()
	return <-s.done
}

// DeletionPolicyAnnotation set to DeletionPolicyRetain on a Table object
// keeps its table when the object is deleted.
const (
	DeletionPolicyAnnotation = "services.k8s.aws/deletion-policy"
	DeletionPolicyRetain     = "retain"
	ackSynced                = "ACK.ResourceSynced"
)

// Reconcile creates, adopts and updates, or deletes one table.
func (s *ACKStandIn) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(tableGVK)
	if err := s.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	name, _, _ := unstructured.NestedString(obj.Object, "spec", "tableName")
	desc, err := s.describe(ctx, name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return s.delete(ctx, obj, name, desc)
	}
	if controllerutil.AddFinalizer(obj, ackFinalizer) {
		if err := s.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	if desc == nil {
		if desc, err = s.create(ctx, obj, name); err != nil {
			return ctrl.Result{}, err
		}
	} else if desc, err = s.update(ctx, obj, desc); err != nil {
		return ctrl.Result{}, err
	}
	if err := s.setStatus(ctx, obj, desc); err != nil {
		return ctrl.Result{}, err
	}
	if desc.TableStatus != types.TableStatusActive {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// delete deletes the table, unless the object's deletion policy retains
// it, and then lets the object go.
func (s *ACKStandIn) delete(ctx context.Context, obj *unstructured.Unstructured, name string, desc *types.TableDescription) (ctrl.Result, error) {
	if desc != nil && obj.GetAnnotations()[DeletionPolicyAnnotation] != DeletionPolicyRetain {
		if desc.TableStatus != types.TableStatusDeleting {
			if _, err := s.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil && !notFound(err) {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	controllerutil.RemoveFinalizer(obj, ackFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(s.Update(ctx, obj))
}

// setStatus copies the table's ARN and status into obj, with the synced
// condition (its transition time kept while its status does not change).
func (s *ACKStandIn) setStatus(ctx context.Context, obj *unstructured.Unstructured, desc *types.TableDescription) error {
	synced, msg := "False", fmt.Sprintf("table is %s", desc.TableStatus)
	if desc.TableStatus == types.TableStatusActive {
		synced, msg = "True", "Resource synced successfully"
	}
	since := time.Now().UTC().Format(time.RFC3339)
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == ackSynced && m["status"] == synced {
			if t, ok := m["lastTransitionTime"].(string); ok {
				since = t
			}
		}
	}
	status := map[string]any{
		"ackResourceMetadata": map[string]any{"arn": aws.ToString(desc.TableArn), "region": AWSRegion, "ownerAccountID": "000000000000"},
		"tableStatus":         string(desc.TableStatus),
		"conditions":          []any{map[string]any{"type": ackSynced, "status": synced, "message": msg, "lastTransitionTime": since}},
	}
	if err := unstructured.SetNestedField(obj.Object, status, "status"); err != nil {
		return err
	}
	return s.Status().Update(ctx, obj)
}

// update is ACK's update path for a table that exists: whoever made it,
// it now belongs to obj, and is changed to match obj's spec.
func (s *ACKStandIn) update(ctx context.Context, obj *unstructured.Unstructured, desc *types.TableDescription) (*types.TableDescription, error) {
	if desc.TableStatus != types.TableStatusActive {
		return desc, nil // ACK requeues until the table can be changed
	}
	if in := billingUpdate(obj, desc); in != nil {
		out, err := s.DynamoDB.UpdateTable(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("updating table %s: %w", aws.ToString(desc.TableName), err)
		}
		desc = out.TableDescription
	}
	return desc, s.tag(ctx, obj, desc)
}

// billingUpdate is the UpdateTable that makes desc's billing match obj's
// spec, or nil.
func billingUpdate(obj *unstructured.Unstructured, desc *types.TableDescription) *dynamodb.UpdateTableInput {
	mode, _, _ := unstructured.NestedString(obj.Object, "spec", "billingMode")
	have := types.BillingModeProvisioned
	if desc.BillingModeSummary != nil {
		have = desc.BillingModeSummary.BillingMode
	} else if desc.ProvisionedThroughput == nil || aws.ToInt64(desc.ProvisionedThroughput.ReadCapacityUnits) == 0 {
		have = types.BillingModePayPerRequest
	}
	if mode != string(types.BillingModeProvisioned) {
		if have == types.BillingModePayPerRequest {
			return nil
		}
		return &dynamodb.UpdateTableInput{TableName: desc.TableName, BillingMode: types.BillingModePayPerRequest}
	}
	r, _, _ := unstructured.NestedInt64(obj.Object, "spec", "provisionedThroughput", "readCapacityUnits")
	w, _, _ := unstructured.NestedInt64(obj.Object, "spec", "provisionedThroughput", "writeCapacityUnits")
	if have == types.BillingModeProvisioned && desc.ProvisionedThroughput != nil &&
		aws.ToInt64(desc.ProvisionedThroughput.ReadCapacityUnits) == r && aws.ToInt64(desc.ProvisionedThroughput.WriteCapacityUnits) == w {
		return nil
	}
	return &dynamodb.UpdateTableInput{TableName: desc.TableName, BillingMode: types.BillingModeProvisioned,
		ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(r), WriteCapacityUnits: aws.Int64(w)}}
}

// tag puts obj's spec.tags on the table where they differ (ACK creates
// with tags; dynalite ignores Tags on CreateTable, so this runs after a
// create too).
func (s *ACKStandIn) tag(ctx context.Context, obj *unstructured.Unstructured, desc *types.TableDescription) error {
	specTags, _, _ := unstructured.NestedSlice(obj.Object, "spec", "tags")
	if len(specTags) == 0 {
		return nil
	}
	have := map[string]string{}
	if out, err := s.DynamoDB.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: desc.TableArn}); err == nil {
		for _, t := range out.Tags {
			have[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	var tags []types.Tag
	for _, t := range specTags {
		m, _ := t.(map[string]any)
		k, v := fmt.Sprint(m["key"]), fmt.Sprint(m["value"])
		if old, ok := have[k]; !ok || old != v {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	if len(tags) == 0 {
		return nil
	}
	_, err := s.DynamoDB.TagResource(ctx, &dynamodb.TagResourceInput{ResourceArn: desc.TableArn, Tags: tags})
	return err
}

func (s *ACKStandIn) describe(ctx context.Context, name string) (*types.TableDescription, error) {
	out, err := s.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return out.Table, nil
}

func (s *ACKStandIn) create(ctx context.Context, obj *unstructured.Unstructured, name string) (*types.TableDescription, error) {
	in := &dynamodb.CreateTableInput{TableName: aws.String(name)}
	attrs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "attributeDefinitions")
	for _, a := range attrs {
		m, _ := a.(map[string]any)
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(fmt.Sprint(m["attributeName"])), AttributeType: types.ScalarAttributeType(fmt.Sprint(m["attributeType"]))})
	}
	keys, _, _ := unstructured.NestedSlice(obj.Object, "spec", "keySchema")
	for _, k := range keys {
		m, _ := k.(map[string]any)
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{
			AttributeName: aws.String(fmt.Sprint(m["attributeName"])), KeyType: types.KeyType(fmt.Sprint(m["keyType"]))})
	}
	mode, _, _ := unstructured.NestedString(obj.Object, "spec", "billingMode")
	in.BillingMode = types.BillingMode(mode)
	if mode == string(types.BillingModeProvisioned) {
		r, _, _ := unstructured.NestedInt64(obj.Object, "spec", "provisionedThroughput", "readCapacityUnits")
		w, _, _ := unstructured.NestedInt64(obj.Object, "spec", "provisionedThroughput", "writeCapacityUnits")
		in.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(r), WriteCapacityUnits: aws.Int64(w)}
	}
	out, err := s.DynamoDB.CreateTable(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("creating table %s: %w", name, err)
	}
	return out.TableDescription, nil
}

func notFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
