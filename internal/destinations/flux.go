package destinations

import (
	"path"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// FluxObjects are what Flux on a destination needs to apply the
// destination's directory: one GitRepository and two Kustomizations, the
// resources one depending on the dependencies one so CRDs and namespaces
// land first.
type FluxObjects struct {
	GitRepository *sourcev1.GitRepository
	// Dependencies and Resources are the two Kustomizations.
	Dependencies, Resources *kustomizev1.Kustomization
}

// List returns the objects in the order to apply them.
func (f FluxObjects) List() []runtime.Object {
	return []runtime.Object{f.GitRepository, f.Dependencies, f.Resources}
}

// GitSecretName is the Secret the GitRepository reads credentials from on
// the destination, when the store has any. The user creates it there (Flux's
// keys: username and password, or identity and known_hosts).
func GitSecretName(d *v1alpha1.Destination) string { return d.FluxName() + "-git" }

// Flux builds the Flux objects for destination d of store st.
func Flux(d *v1alpha1.Destination, st *v1alpha1.GitStateStore) FluxObjects {
	ns, name := d.FluxNamespace(), d.FluxName()
	interval := metav1.Duration{Duration: time.Minute}
	if d.Spec.Flux.Interval != nil {
		interval = *d.Spec.Flux.Interval
	}
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
		ObjectMeta: objectMeta(ns, name, d),
		Spec: sourcev1.GitRepositorySpec{
			URL:       url,
			Reference: &sourcev1.GitRepositoryRef{Branch: branch},
			Interval:  interval,
		},
	}
	if st.Spec.SecretRef != nil {
		repo.Spec.SecretRef = &meta.LocalObjectReference{Name: GitSecretName(d)}
	}
	dir := path.Join(st.Spec.Path, d.EffectivePath())
	kustomization := func(sub string) *kustomizev1.Kustomization {
		return &kustomizev1.Kustomization{
			TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
			ObjectMeta: objectMeta(ns, name+"-"+sub, d),
			Spec: kustomizev1.KustomizationSpec{
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: name},
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
	return FluxObjects{GitRepository: repo, Dependencies: deps, Resources: res}
}

func objectMeta(ns, name string, d *v1alpha1.Destination) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
		"app.kubernetes.io/managed-by": "switchyard",
		"switchyard.dev/destination":   d.Name,
	}}
}
