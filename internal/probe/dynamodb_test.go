package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

const secretValue = "probe-test-secret-7f3a"

// fakeEndpoint answers DescribeTable the way DynamoDB does, with status and body.
func fakeEndpoint(t *testing.T, status int, body string) (string, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".DescribeTable") {
			t.Errorf("unexpected call %s", r.Header.Get("X-Amz-Target"))
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &calls
}

func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func prober(secrets ...*corev1.Secret) *Prober {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	b := fake.NewClientBuilder().WithScheme(s)
	for _, sec := range secrets {
		b = b.WithObjects(sec)
	}
	return New(b.Build(), 2)
}

func secret(data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "aws"}, StringData: data,
		Data: func() map[string][]byte {
			out := map[string][]byte{}
			for k, v := range data {
				out[k] = []byte(v)
			}
			return out
		}()}
}

func target(url string) Target {
	return Target{Key: "k", Table: "orders", AWS: v1alpha1.AWSSpec{Endpoint: url, Region: "us-east-1",
		SecretRef: v1alpha1.SecretReference{Namespace: "ns", Name: "aws"}}}
}

func TestTable(t *testing.T) {
	good := secret(map[string]string{AccessKeyIDKey: "AKIDTEST", SecretAccessKeyKey: secretValue})
	active, _ := fakeEndpoint(t, 200, `{"Table":{"TableName":"orders","TableArn":"arn:aws:dynamodb:us-east-1:000000000000:table/orders","TableStatus":"ACTIVE"}}`)
	creating, _ := fakeEndpoint(t, 200, `{"Table":{"TableName":"orders","TableArn":"arn:x","TableStatus":"CREATING"}}`)
	missing, _ := fakeEndpoint(t, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`)
	refused, _ := fakeEndpoint(t, 400, `{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}`)
	tests := []struct {
		name    string
		prober  *Prober
		url     string
		reason  string
		arn     string
		message string
	}{
		{"active", prober(good), active, v1alpha1.TableActive, "arn:aws:dynamodb:us-east-1:000000000000:table/orders", "ACTIVE"},
		{"creating", prober(good), creating, v1alpha1.TableNotActive, "arn:x", "CREATING"},
		{"not found", prober(good), missing, v1alpha1.TableNotFound, "", "orders not found"},
		{"bad credentials", prober(good), refused, v1alpha1.InvalidCredentials, "", "refused the credentials in Secret ns/aws"},
		{"unreachable", prober(good), closedEndpoint(t), v1alpha1.EndpointUnreachable, "", "did not answer"},
		{"no Secret", prober(), active, v1alpha1.SecretNotFound, "", "ns/aws"},
		{"Secret without keys", prober(secret(map[string]string{AccessKeyIDKey: "AKIDTEST"})), active, v1alpha1.InvalidSecret, "", secretAccessKeyHint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.prober.Table(context.Background(), target(tt.url))
			if r.Reason != tt.reason || r.ARN != tt.arn || !strings.Contains(r.Message, tt.message) {
				t.Errorf("got %s %q %q; want %s %q containing %q", r.Reason, r.ARN, r.Message, tt.reason, tt.arn, tt.message)
			}
			if strings.Contains(r.Message, secretValue) {
				t.Errorf("message quotes the secret access key: %q", r.Message)
			}
		})
	}
}

const secretAccessKeyHint = "needs keys accessKeyID and secretAccessKey"

func TestTableBacksOff(t *testing.T) {
	url, calls := fakeEndpoint(t, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"not found"}`)
	p := prober(secret(map[string]string{AccessKeyIDKey: "AKIDTEST", SecretAccessKeyKey: secretValue}))
	first := p.Table(context.Background(), target(url))
	if first.RetryAfter != First {
		t.Fatalf("first RetryAfter %s, want %s", first.RetryAfter, First)
	}
	for range 10 {
		if r := p.Table(context.Background(), target(url)); r.Reason != v1alpha1.TableNotFound || r.RetryAfter <= 0 {
			t.Fatalf("during backoff: %+v", r)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("endpoint called %d times during one backoff period, want 1", n)
	}
	// A changed target (another table) is probed at once.
	other := target(url)
	other.Table = "other"
	p.Table(context.Background(), other)
	if n := calls.Load(); n != 2 {
		t.Errorf("endpoint called %d times after the target changed, want 2", n)
	}
}

// TestWaitingForDeletionKeepsLooking: a request being deleted waits for
// its table to go. An ACTIVE answer then is not final (ACK may not have
// deleted it yet, or it was busy updating): the probe must look again
// within Max, not after Recheck, or the deletion waits ten minutes for
// nothing.
func TestWaitingForDeletionKeepsLooking(t *testing.T) {
	url, _ := fakeEndpoint(t, 200, `{"Table":{"TableName":"orders","TableStatus":"ACTIVE","TableArn":"arn:aws:dynamodb:us-east-1:000000000000:table/orders"}}`)
	p := prober(secret(map[string]string{AccessKeyIDKey: "AKIDTEST", SecretAccessKeyKey: secretValue}))
	tg := target(url)
	tg.AwaitGone = true
	r := p.Table(context.Background(), tg)
	if r.Gone() {
		t.Fatalf("an ACTIVE table is gone: %+v", r)
	}
	if r.RetryAfter > Max {
		t.Fatalf("RetryAfter %s while waiting for the table to go, want at most %s", r.RetryAfter, Max)
	}
}
