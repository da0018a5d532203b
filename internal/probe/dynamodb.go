package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/secretref"
)

// Keys of the AWS credentials Secret.
const (
	AccessKeyIDKey     = "accessKeyID"
	SecretAccessKeyKey = "secretAccessKey"
)

// Backoff of one request's probe: from First, doubling to Max while the
// answer is not final; Recheck after the table was seen ACTIVE.
const (
	First   = 250 * time.Millisecond
	Max     = 30 * time.Second
	Recheck = 10 * time.Minute
	timeout = 5 * time.Second
)

// Target is one table to check.
type Target struct {
	// Key identifies the request; backoff is per key.
	Key   string
	AWS   v1alpha1.AWSSpec
	Table string
	// AwaitGone is set while the caller waits for the table to be deleted:
	// an ACTIVE table is then not final, and is looked at again within
	// Max, not Recheck.
	AwaitGone bool
	// Owner, when it has a Name, is the ACK Table object the request
	// rendered for the table: then the table counts only if it is the
	// object's (see Own). Without one the probe checks existence only.
	Owner Owner
}

// Owner is the ACK Table object a request rendered, on the cluster of a
// destination.
type Owner struct {
	Destination, Namespace, Name string
	// UID is the request's: an object of the name that does not carry it
	// in v1alpha1.RequestUIDLabel is another request's, and counts as
	// absent.
	UID string
	// Recorded is the ARN the request recorded as its own before
	// (status.verified.tableArn). A table older than the object but with this ARN
	// is still the request's: it moved to a new Table object, the table
	// kept.
	Recorded string
}

// ObjectReaders gives a client for a destination's API server.
type ObjectReaders interface {
	Reader(dest string) (client.Reader, error)
}

// Result is what a probe found.
type Result struct {
	// Reason is TableActive, TableNotActive, TableNotFound,
	// InvalidCredentials, EndpointUnreachable, SecretNotFound,
	// InvalidSecret or ProbeFailed.
	Reason  string
	Message string
	// ARN, Status and creation time of the table, when it exists.
	ARN, Status string
	Created     time.Time
	// Owned: the target has an Owner and the table is its (Own).
	Owned bool
	// RetryAfter is when to look again.
	RetryAfter time.Duration
}

// Active reports whether the table is ACTIVE (and, for a target with an
// Owner, the owner's).
func (r Result) Active() bool { return r.Reason == v1alpha1.TableActive }

// Gone reports whether the endpoint does not know the table.
func (r Result) Gone() bool { return r.Reason == v1alpha1.TableNotFound }

// Prober runs probes. The zero value is not usable; call New.
type Prober struct {
	// Objects reads Owners on destinations; set before use when targets
	// have Owners.
	Objects ObjectReaders

	secrets client.Reader
	sem     chan struct{}
	http    *http.Client

	mu    sync.Mutex
	state map[string]*entry
}

type entry struct {
	target Target
	next   time.Time
	delay  time.Duration
	last   Result
}

// New returns a Prober that reads credentials with secrets and runs at most
// concurrency probes at once.
func New(secrets client.Reader, concurrency int) *Prober {
	return &Prober{secrets: secrets, sem: make(chan struct{}, concurrency),
		http: &http.Client{Timeout: timeout}, state: map[string]*entry{}}
}

// Table checks t, or returns the last answer while t's backoff runs.
func (p *Prober) Table(ctx context.Context, t Target) Result {
	now := time.Now()
	p.mu.Lock()
	e := p.state[t.Key]
	if e != nil && e.target == t && now.Before(e.next) {
		r := e.last
		r.RetryAfter = e.next.Sub(now)
		p.mu.Unlock()
		return r
	}
	if e == nil || e.target != t {
		e = &entry{target: t}
		p.state[t.Key] = e
	}
	p.mu.Unlock()

	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{Reason: v1alpha1.ProbeFailed, Message: ctx.Err().Error(), RetryAfter: First}
	}
	r := p.describe(ctx, t)
	<-p.sem

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.Active() && !t.AwaitGone:
		e.delay = Recheck
	case e.delay == 0:
		e.delay = First
	default:
		e.delay = min(e.delay*2, Max)
	}
	e.last, e.next = r, time.Now().Add(e.delay)
	r.RetryAfter = e.delay
	return r
}

// Forget drops a request's backoff state.
func (p *Prober) Forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.state, key)
}

func (p *Prober) describe(ctx context.Context, t Target) Result {
	creds, res := p.credentials(ctx, t.AWS.SecretRef)
	if res != nil {
		return *res
	}
	cfg := aws.Config{Region: t.AWS.Region, Credentials: creds, HTTPClient: p.http, RetryMaxAttempts: 1}
	if t.AWS.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(t.AWS.Endpoint)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Table)})
	if err != nil {
		return classify(err, t)
	}
	d := out.Table
	r := Result{ARN: aws.ToString(d.TableArn), Status: string(d.TableStatus), Created: aws.ToTime(d.CreationDateTime)}
	if d.TableStatus == types.TableStatusActive {
		r.Reason, r.Message = v1alpha1.TableActive, fmt.Sprintf("table %s is ACTIVE", t.Table)
	} else {
		r.Reason, r.Message = v1alpha1.TableNotActive, fmt.Sprintf("table %s is %s", t.Table, d.TableStatus)
	}
	if t.Owner.Name == "" {
		return r
	}
	obj, res := p.owner(ctx, t.Owner)
	if res != nil {
		return *res
	}
	return Own(r, t, obj)
}

// owner reads the Table object o; a nil object means it does not exist.
func (p *Prober) owner(ctx context.Context, o Owner) (*unstructured.Unstructured, *Result) {
	if p.Objects == nil {
		return nil, &Result{Reason: v1alpha1.ProbeFailed, Message: "the prober cannot read objects on destinations"}
	}
	c, err := p.Objects.Reader(o.Destination)
	if err != nil {
		return nil, &Result{Reason: v1alpha1.DestinationUnreachable, Message: fmt.Sprintf("reading Table %s/%s on destination %s: %v", o.Namespace, o.Name, o.Destination, err)}
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(TableGVK)
	switch err := c.Get(ctx, k8stypes.NamespacedName{Namespace: o.Namespace, Name: o.Name}, obj); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, &Result{Reason: v1alpha1.DestinationUnreachable, Message: fmt.Sprintf("reading Table %s/%s on destination %s: %v", o.Namespace, o.Name, o.Destination, err)}
	case obj.GetLabels()[v1alpha1.RequestUIDLabel] != o.UID:
		return nil, nil
	}
	return obj, nil
}

func (p *Prober) credentials(ctx context.Context, ref v1alpha1.SecretReference) (aws.CredentialsProvider, *Result) {
	var s corev1.Secret
	if err := p.secrets.Get(ctx, k8stypes.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, &s); err != nil {
		reason := v1alpha1.ProbeFailed
		switch {
		case apierrors.IsNotFound(err):
			reason = v1alpha1.SecretNotFound
		case errors.Is(err, secretref.ErrCrossNamespace):
			reason = v1alpha1.CrossNamespaceRef
		}
		return nil, &Result{Reason: reason, Message: fmt.Sprintf("reading AWS credentials Secret %s/%s: %v", ref.Namespace, ref.Name, err)}
	}
	id, secret := string(s.Data[AccessKeyIDKey]), string(s.Data[SecretAccessKeyKey])
	if id == "" || secret == "" {
		return nil, &Result{Reason: v1alpha1.InvalidSecret, Message: fmt.Sprintf("Secret %s/%s needs keys %s and %s", ref.Namespace, ref.Name, AccessKeyIDKey, SecretAccessKeyKey)}
	}
	return credentials.NewStaticCredentialsProvider(id, secret, ""), nil
}

// classify turns an SDK error into a reason and a message that names the
// problem without quoting credentials.
func classify(err error, t Target) Result {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ResourceNotFoundException":
			return Result{Reason: v1alpha1.TableNotFound, Message: fmt.Sprintf("table %s not found at %s", t.Table, endpoint(t))}
		case "UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
			"MissingAuthenticationTokenException", "IncompleteSignatureException", "ExpiredTokenException":
			return Result{Reason: v1alpha1.InvalidCredentials, Message: fmt.Sprintf("%s refused the credentials in Secret %s/%s: %s",
				endpoint(t), t.AWS.SecretRef.Namespace, t.AWS.SecretRef.Name, api.ErrorCode())}
		}
		return Result{Reason: v1alpha1.ProbeFailed, Message: fmt.Sprintf("DescribeTable %s at %s: %s", t.Table, endpoint(t), api.ErrorCode())}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return Result{Reason: v1alpha1.EndpointUnreachable, Message: fmt.Sprintf("%s did not answer: %v", endpoint(t), netErr)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Result{Reason: v1alpha1.EndpointUnreachable, Message: fmt.Sprintf("%s did not answer within %s", endpoint(t), timeout)}
	}
	return Result{Reason: v1alpha1.ProbeFailed, Message: fmt.Sprintf("DescribeTable %s at %s: %v", t.Table, endpoint(t), err)}
}

func endpoint(t Target) string {
	if t.AWS.Endpoint != "" {
		return t.AWS.Endpoint
	}
	return "the AWS endpoint of " + t.AWS.Region
}
