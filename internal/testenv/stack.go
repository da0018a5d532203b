package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/probe"
	"github.com/switchyard-dev/switchyard/internal/router"
)

// Stack is everything around the router in the end-to-end test and the
// local demo, on loopback: a platform API server, a destination API server
// running Flux's source- and kustomize-controller, a Git server with one
// state repository, an S3 server with one state bucket, a DynamoDB
// endpoint and the ACK stand-in.
type Stack struct {
	Dir      string
	Platform *ControlPlane
	// Cluster is the destination cluster; DestinationClient, Flux and ACK
	// are its parts, named here for the tests that use them most.
	Cluster *Cluster
	// DestinationClient talks to the destination API server.
	DestinationClient client.Client
	Git               *GitServer
	RepoURL           string
	S3                *S3Server
	Flux              *Flux
	Dynalite          *Dynalite
	ACK               *ACKStandIn
	// Jobs runs the platform's workflow Jobs (there is no kubelet).
	Jobs *JobStandIn
}

// StackOptions tune the stack.
type StackOptions struct {
	Flux FluxOptions
	// Progress, when set, is told about each slow step.
	Progress func(string)
}

// StartStack starts the stack, keeping logs and data under dir. On error
// it stops what it started.
func StartStack(dir string, o StackOptions) (s *Stack, err error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	s = &Stack{Dir: dir}
	started := s // the returns below set s to nil
	defer func() {
		if err != nil {
			started.Stop()
			s = nil
		}
	}()
	progress("building or finding Flux (hack/flux.sh)")
	fluxDir, err := FluxDir()
	if err != nil {
		return nil, err
	}
	progress("starting the platform API server")
	if s.Platform, err = StartControlPlane(); err != nil {
		return nil, err
	}
	progress("building the project's images' programs and starting the Job stand-in")
	images, err := BuildImages(dir)
	if err != nil {
		return nil, err
	}
	if s.Jobs, err = StartJobStandIn(s.Platform.Config, images, filepath.Join(dir, "jobs")); err != nil {
		return nil, err
	}
	progress("starting the Git server")
	if s.Git, err = NewGitServer(); err != nil {
		return nil, err
	}
	if s.RepoURL, err = s.Git.CreateRepo("state"); err != nil {
		return nil, err
	}
	if s.S3, err = NewS3Server(StateBucket); err != nil {
		return nil, err
	}
	progress("installing (npm) and starting dynalite")
	if s.Dynalite, err = StartDynalite(dir); err != nil {
		return nil, err
	}
	if s.Cluster, err = StartCluster(dir, "destination", fluxDir, s.Dynalite.Endpoint, o.Flux, progress); err != nil {
		return nil, err
	}
	s.DestinationClient, s.Flux, s.ACK = s.Cluster.Client, s.Cluster.Flux, s.Cluster.ACK
	return s, nil
}

// Stop stops everything that was started.
func (s *Stack) Stop() {
	var errs []error
	if s.Cluster != nil {
		errs = append(errs, s.Cluster.Stop())
	}
	if s.Jobs != nil {
		errs = append(errs, s.Jobs.Stop())
	}
	if s.Dynalite != nil {
		s.Dynalite.Stop()
	}
	if s.Git != nil {
		s.Git.Close()
	}
	if s.S3 != nil {
		s.S3.Close()
	}
	if s.Platform != nil {
		errs = append(errs, s.Platform.Stop())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
	}
}

func destinationScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// SecretsNamespace holds the credentials Secrets on the platform.
const SecretsNamespace = "switchyard-system"

// Store returns the stack's GitStateStore (with basic auth), creating it
// and its Secret on the platform.
func (s *Stack) Store(ctx context.Context, platform client.Client, name string) (*v1alpha1.GitStateStore, error) {
	if err := ensure(ctx, platform, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SecretsNamespace}}); err != nil {
		return nil, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SecretsNamespace, Name: name + "-git"},
		StringData: map[string]string{"username": GitUser, "password": GitPassword}}
	if err := ensure(ctx, platform, secret); err != nil {
		return nil, err
	}
	st := &v1alpha1.GitStateStore{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.GitStateStoreSpec{
		URL: s.RepoURL, SecretRef: &v1alpha1.SecretReference{Namespace: SecretsNamespace, Name: secret.Name}}}
	return st, ensure(ctx, platform, st)
}

// StateBucket is the stack's state bucket.
const StateBucket = "switchyard-state"

// BucketStore returns a BucketStateStore (with access keys) on the stack's
// bucket under path, creating it and its Secret on the platform.
func (s *Stack) BucketStore(ctx context.Context, platform client.Client, name, path string) (*v1alpha1.BucketStateStore, error) {
	if err := ensure(ctx, platform, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SecretsNamespace}}); err != nil {
		return nil, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SecretsNamespace, Name: name + "-s3"},
		StringData: map[string]string{"accessKeyID": S3AccessKey, "secretAccessKey": S3SecretKey}}
	if err := ensure(ctx, platform, secret); err != nil {
		return nil, err
	}
	st := &v1alpha1.BucketStateStore{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.BucketStateStoreSpec{
		Endpoint: strings.TrimPrefix(s.S3.Endpoint, "http://"), Insecure: true, BucketName: StateBucket, Path: path,
		SecretRef: &v1alpha1.SecretReference{Namespace: SecretsNamespace, Name: secret.Name}}}
	return st, ensure(ctx, platform, st)
}

// AddDestination registers d (its stateStoreRef naming st) on the platform,
// with a kubeConfigSecretRef for the stack's destination cluster and AWS
// settings for dynalite, and applies what `router flux-manifests` would
// print, plus the source's credentials Secret, on that cluster.
func (s *Stack) AddDestination(ctx context.Context, platform client.Client, d *v1alpha1.Destination, st destinations.StoreObject) error {
	return s.AddDestinationOn(ctx, platform, s.Cluster, d, st)
}

// AddDestinationOn is AddDestination for destination cluster c.
func (s *Stack) AddDestinationOn(ctx context.Context, platform client.Client, c *Cluster, d *v1alpha1.Destination, st destinations.StoreObject) error {
	kubeconfig := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SecretsNamespace, Name: d.Name + "-kubeconfig"},
		Data: map[string][]byte{feedback.KubeConfigKey: c.FeedbackKubeConfig}}
	awsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: SecretsNamespace, Name: d.Name + "-aws"},
		StringData: map[string]string{probe.AccessKeyIDKey: AWSAccessKeyID, probe.SecretAccessKeyKey: AWSSecretAccessKey}}
	for _, o := range []client.Object{kubeconfig, awsSecret} {
		if err := ensure(ctx, platform, o); err != nil {
			return err
		}
	}
	d.Spec.KubeConfigSecretRef = &v1alpha1.SecretReference{Namespace: SecretsNamespace, Name: kubeconfig.Name}
	d.Spec.AWS = &v1alpha1.AWSSpec{Endpoint: s.Dynalite.Endpoint, Region: AWSRegion,
		SecretRef: v1alpha1.SecretReference{Namespace: SecretsNamespace, Name: awsSecret.Name}}
	if err := ensure(ctx, platform, d); err != nil {
		return err
	}
	flux := destinations.Flux(d, st)
	ns := flux.Source.GetNamespace()
	creds := map[string]string{"username": GitUser, "password": GitPassword}
	if st.Bucket != nil {
		creds = map[string]string{"accesskey": S3AccessKey, "secretkey": S3SecretKey}
	}
	sourceSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: destinations.SourceSecretName(d)}, StringData: creds}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, sourceSecret, flux.Source, flux.Dependencies, flux.Resources} {
		if err := ensure(ctx, c.Client, o); err != nil {
			return err
		}
	}
	return nil
}

// StartCluster starts another destination cluster, named name, on the
// stack's DynamoDB endpoint, with its logs under the stack's directory.
// The caller stops it.
func (s *Stack) StartCluster(name string, o FluxOptions) (*Cluster, error) {
	fluxDir, err := FluxDir()
	if err != nil {
		return nil, err
	}
	return StartCluster(filepath.Join(s.Dir, name), name, fluxDir, s.Dynalite.Endpoint, o, nil)
}

// ensure creates o unless it exists.
func ensure(ctx context.Context, c client.Client, o client.Object) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
	}
	return nil
}

// StartRouter runs the router in-process against the platform API server
// with options o, until the returned stop is called. It may be called
// again after stop, to restart the router in the same process. It runs as
// the router's ServiceAccount in SecretsNamespace, with the RBAC
// config/rbac ships (see AsRouter).
func (s *Stack) StartRouter(o router.Options) (stop func(), err error) {
	admin, err := client.New(s.Platform.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		return nil, err
	}
	cfg, err := AsRouter(context.Background(), admin, s.Platform.Config, SecretsNamespace)
	if err != nil {
		return nil, err
	}
	o.Namespace = SecretsNamespace
	if o.PipelineImage == "" {
		o.PipelineImage = RouterImage
	}
	// A restarted router registers controllers of the same names again.
	skip := true
	mgr, err := ctrl.NewManager(cfg, router.ManagerOptions(ctrl.Options{
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: &skip}}, o.Namespace))
	if err != nil {
		return nil, err
	}
	stores, err := router.Setup(mgr, o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		<-done
		stores.Close()
	}, nil
}
