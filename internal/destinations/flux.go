package destinations

import (
	"path"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/bucketstate"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// FluxObjects are what Flux on a destination needs to apply the
// destination's directory: one source (a GitRepository, or a Bucket for a
// BucketStateStore) and two Kustomizations, the resources one depending on
// the dependencies one so CRDs and namespaces land first.
type FluxObjects struct {
	Source client.Object
	// Dependencies and Resources are the two Kustomizations.
	Dependencies, Resources *kustomizev1.Kustomization
}

// List returns the objects in the order to apply them.
func (f FluxObjects) List() []runtime.Object {
	return []runtime.Object{f.Source, f.Dependencies, f.Resources}
}

// SourceSecretName is the Secret the Flux source reads credentials from on
// the destination, when the store has any. The user creates it there with
// Flux's keys: username and password, or identity and known_hosts, for
// Git; accesskey and secretkey for a bucket.
func SourceSecretName(d *v1alpha1.Destination) string {
	if d.Spec.StateStoreRef.EffectiveKind() == v1alpha1.BucketStateStoreKind {
		return d.FluxName() + "-bucket"
	}
	return d.FluxName() + "-git"
}

// Flux builds the Flux objects for destination d of store st.
func Flux(d *v1alpha1.Destination, st StoreObject) FluxObjects {
	ns, name := d.FluxNamespace(), d.FluxName()
	interval := metav1.Duration{Duration: time.Minute}
	if d.Spec.Flux.Interval != nil {
		interval = *d.Spec.Flux.Interval
	}
	var source client.Object
	kind := sourcev1.GitRepositoryKind
	if st.Bucket != nil {
		source, kind = bucket(d, st.Bucket, interval), sourcev1.BucketKind
	} else {
		source = gitRepository(d, st.Git, interval)
	}
	dir := path.Join(st.Path(), d.EffectivePath())
	kustomization := func(sub string) *kustomizev1.Kustomization {
		return &kustomizev1.Kustomization{
			TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
			ObjectMeta: objectMeta(ns, name+"-"+sub, d),
			Spec: kustomizev1.KustomizationSpec{
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: kind, Name: name},
				Path:      "./" + path.Join(dir, sub),
				Interval:  interval,
				// The router removes a request's files to delete it, so
				// Flux must delete what it no longer finds.
				Prune: true,
			},
		}
	}
	deps := kustomization(statestore.DependenciesDir)
	res := kustomization(statestore.ResourcesDir)
	res.Spec.DependsOn = []kustomizev1.DependencyReference{{Name: deps.Name}}
	return FluxObjects{Source: source, Dependencies: deps, Resources: res}
}

func gitRepository(d *v1alpha1.Destination, st *v1alpha1.GitStateStore, interval metav1.Duration) *sourcev1.GitRepository {
	branch := st.Spec.Branch
	if branch == "" {
		branch = "main"
	}
	url := st.Spec.URL
	if d.Spec.Flux.URL != "" {
		url = d.Spec.Flux.URL
	}
	repo := &sourcev1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.GitRepositoryKind},
		ObjectMeta: objectMeta(d.FluxNamespace(), d.FluxName(), d),
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Reference: &sourcev1.GitRepositoryRef{Branch: branch},
			Interval:  interval,
		},
	}
	if st.Spec.SecretRef != nil {
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: SourceSecretName(d)}
	}
	return repo
}

// bucket reads the whole store (its path), like a GitRepository reads the
// whole repository, so its revision is the store's revision; the
// Kustomizations pick the destination's directories. The control
// directory is ignored, so the version marker and write checks never change
// what Flux sees.
func bucket(d *v1alpha1.Destination, st *v1alpha1.BucketStateStore, interval metav1.Duration) *sourcev1.Bucket {
	endpoint := bucketstate.EndpointURL(st.Spec.Endpoint, st.Spec.Insecure)
	if d.Spec.Flux.URL != "" {
		endpoint = d.Spec.Flux.URL
	}
	insecure := strings.HasPrefix(endpoint, "http://")
	b := &sourcev1.Bucket{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.BucketKind},
		ObjectMeta: objectMeta(d.FluxNamespace(), d.FluxName(), d),
		Spec: sourcev1.BucketSpec{
			Provider:   sourcev1.BucketProviderGeneric,
			BucketName: st.Spec.BucketName,
			// Flux's generic provider takes host[:port] and insecure.
			Endpoint: strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://"), "/"),
			Insecure: insecure,
			Region:   st.Spec.Region,
			Interval: interval,
			Ignore:   ptr("/" + path.Join(st.Spec.Path, bucketstate.ControlDir) + "/"),
		},
	}
	if st.Spec.Path != "" {
		b.Spec.Prefix = st.Spec.Path + "/"
	}
	if st.Spec.AuthMethod == v1alpha1.IAMAuthMethod {
		// Flux's generic provider has no credential chain: with IAM, the
		// aws provider uses source-controller's own identity (IRSA).
		b.Spec.Provider = sourcev1.BucketProviderAmazon
	} else {
		b.Spec.SecretRef = &meta.LocalObjectReference{Name: SourceSecretName(d)}
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func objectMeta(ns, name string, d *v1alpha1.Destination) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
		"app.kubernetes.io/managed-by": "switchyard",
		"switchyard.dev/destination":   d.Name,
	}}
}
