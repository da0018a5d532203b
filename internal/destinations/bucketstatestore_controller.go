package destinations

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/ownstatus"
	"github.com/switchyard-dev/switchyard/internal/shutdown"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// BucketStateStoreReconciler opens a writer per BucketStateStore and checks
// that the bucket can be listed and written.
type BucketStateStoreReconciler struct {
	*StoreReconciler
	written ownstatus.Pending
}

// +kubebuilder:rbac:groups=switchyard.dev,resources=bucketstatestores,verbs=get;list;watch
// +kubebuilder:rbac:groups=switchyard.dev,resources=bucketstatestores/status,verbs=get;update;patch

// SetupWithManager registers the reconciler.
func (r *BucketStateStoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.BucketStateStore{}, builder.WithPredicates(ownstatus.Changed)).Named("bucketstatestore").Complete(shutdown.Quiet(r))
}

// Reconcile checks one store.
func (r *BucketStateStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ref := v1alpha1.StateStoreReference{Kind: v1alpha1.BucketStateStoreKind, Name: req.Name}
	var st v1alpha1.BucketStateStore
	return r.reconcile(ctx, ref, &st, &st.Status, &r.written, func() metav1.Condition { return r.check(ctx, ref, &st) })
}

// check opens the writer, lists the bucket and makes the write check.
func (r *BucketStateStoreReconciler) check(ctx context.Context, ref v1alpha1.StateStoreReference, st *v1alpha1.BucketStateStore) metav1.Condition {
	cfg, key, cond := bucketConfig(ctx, r.SecretReader, st)
	if cond != nil {
		return *cond
	}
	w, err := r.Stores.open(ref, key, func() (statestore.Writer, error) {
		cfg.MaxBatch = r.Stores.MaxBatch
		return bucketstate.Open(cfg)
	})
	if err != nil {
		return notReady(v1alpha1.BucketUnreachable, err.Error())
	}
	rev, err := r.refresh(ctx, ref, st, w)
	if err != nil {
		return notReady(v1alpha1.BucketUnreachable, err.Error())
	}
	if err := w.(*bucketstate.Writer).CheckWrite(ctx); err != nil {
		return notReady(v1alpha1.BucketUnreachable, err.Error())
	}
	st.Status.Revision = rev
	msg := fmt.Sprintf("listed and wrote bucket %s at %s; revision %s", cfg.Bucket, cfg.Endpoint, rev)
	if rev == "" {
		msg = fmt.Sprintf("bucket %s at %s is writable and holds nothing under %q yet", cfg.Bucket, cfg.Endpoint, st.Spec.Path)
	}
	return metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.Reconciled, Message: msg}
}

// bucketConfig builds the writer configuration and a key that changes
// whenever it or the credentials change.
func bucketConfig(ctx context.Context, secrets client.Reader, st *v1alpha1.BucketStateStore) (bucketstate.Config, string, *metav1.Condition) {
	cfg := bucketstate.Config{Endpoint: bucketstate.EndpointURL(st.Spec.Endpoint, st.Spec.Insecure), Bucket: st.Spec.BucketName,
		Region: st.Spec.Region, Root: st.Spec.Path, Name: st.Name}
	parts := []string{cfg.Endpoint, cfg.Bucket, cfg.Region, cfg.Root, st.Spec.AuthMethod}
	if st.Spec.AuthMethod == v1alpha1.IAMAuthMethod {
		// The SDK's chain: environment, web identity (IRSA), instance role.
		c, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
		if err != nil {
			cond := notReady(v1alpha1.InvalidSecret, fmt.Sprintf("loading the AWS SDK's default credentials: %v", err))
			return cfg, "", &cond
		}
		cfg.Credentials = aws.NewCredentialsCache(c.Credentials)
		return cfg, hash(parts...), nil
	}
	ref := st.Spec.SecretRef
	if ref == nil {
		cond := notReady(v1alpha1.InvalidSecret, "authMethod accessKey needs spec.secretRef")
		return cfg, "", &cond
	}
	data, cond := readSecret(ctx, secrets, ref, st.Spec.AuthMethod, "accessKeyID", "secretAccessKey")
	if cond != nil {
		return cfg, "", cond
	}
	id, secret := string(data["accessKeyID"]), string(data["secretAccessKey"])
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	return cfg, hash(append(parts, id, secret)...), nil
}
