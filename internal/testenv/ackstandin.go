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
// here: when a Table object appears on the destination it creates the
// table at the endpoint and copies its ARN and status into the object;
// when the object is deleted it deletes the table first (a finalizer, as
// ACK does), unless the object is annotated
// services.k8s.aws/deletion-policy: retain. Everything else in the
// end-to-end test is the real thing.
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

// Reconcile creates or deletes one table.
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
		if retained(obj) {
			return ctrl.Result{}, s.release(ctx, obj)
		}
		if desc != nil {
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
	if controllerutil.AddFinalizer(obj, ackFinalizer) {
		if err := s.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	if desc == nil {
		if desc, err = s.create(ctx, obj, name); err != nil {
			return ctrl.Result{}, err
		}
	}
	status := map[string]any{
		"ackResourceMetadata": map[string]any{"arn": aws.ToString(desc.TableArn), "region": AWSRegion, "ownerAccountID": "000000000000"},
		"tableStatus":         string(desc.TableStatus),
	}
	if err := unstructured.SetNestedField(obj.Object, status, "status"); err != nil {
		return ctrl.Result{}, err
	}
	if err := s.Status().Update(ctx, obj); err != nil {
		return ctrl.Result{}, err
	}
	if desc.TableStatus != types.TableStatusActive {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// DeletionPolicyAnnotation is ACK's per-object deletion policy
// (aws-controllers-k8s/runtime): "retain" keeps the AWS resource when the
// object is deleted.
const DeletionPolicyAnnotation = "services.k8s.aws/deletion-policy"

// retained reports whether obj asks ACK to keep its table on deletion.
func retained(obj *unstructured.Unstructured) bool {
	return obj.GetAnnotations()[DeletionPolicyAnnotation] == "retain"
}

// release lets a retained object go, leaving its table alone, as ACK does.
func (s *ACKStandIn) release(ctx context.Context, obj *unstructured.Unstructured) error {
	controllerutil.RemoveFinalizer(obj, ackFinalizer)
	return client.IgnoreNotFound(s.Update(ctx, obj))
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
