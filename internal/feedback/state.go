package feedback

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// State is what the router sees of Flux on one destination.
type State struct {
	// Configured is false when the destination has no kubeConfigSecretRef.
	Configured bool
	// Err says why the destination cannot be read; "" when it can.
	Err string
	// Refused is true when Err says the kubeconfig was refused (package
	// kubeconfig): the router built no client from it.
	Refused bool
	// Synced is true once the watch has listed the destination's objects.
	Synced bool
	// SourceKind is GitRepository or Bucket.
	SourceKind string
	// Source is the GitRepository or Bucket; Dependencies and Resources
	// are the Kustomizations.
	Source, Dependencies, Resources Object
	// Neighbours names, comma-separated, the dependencies Kustomizations
	// of other destinations in the same Flux namespace of the same
	// cluster: they apply the same dependencies, so this destination's
	// cleanup must not prune them.
	Neighbours string
}

// Object is one Flux object as the router sees it.
type Object struct {
	// Name is namespace/name on the destination.
	Name  string
	Found bool
	// Ready is the status of its Ready condition, with reason and message.
	Ready   metav1.ConditionStatus
	Reason  string
	Message string
	// Revision is the source's artifact revision, or the Kustomization's
	// last applied revision (main@sha1:<hash>, or sha256:<digest> for a
	// Bucket).
	Revision string
}

// Contains reports whether commit head includes commit c (see
// statestore.Writer.Contains).
type Contains func(head, c string) (bool, error)

// Applied says whether Flux applied commit (or a later one), as the
// status, reason and message of an Applied condition. commit "" asks only
// whether Flux is healthy.
func (s State) Applied(commit string, contains Contains) (metav1.ConditionStatus, string, string) {
	switch {
	case !s.Configured:
		return metav1.ConditionUnknown, v1alpha1.NoFeedback,
			"the destination has no spec.kubeConfigSecretRef, so the router cannot see Flux there; Flux applies commits within its polling interval"
	case s.Refused:
		return metav1.ConditionUnknown, v1alpha1.InsecureKubeConfig, s.Err
	case s.Err != "":
		return metav1.ConditionUnknown, v1alpha1.DestinationUnreachable, s.Err
	case !s.Synced:
		return metav1.ConditionUnknown, v1alpha1.AwaitingFlux, "connecting to the destination's API server"
	case !s.Source.Found:
		return metav1.ConditionFalse, v1alpha1.FluxNotFound, fmt.Sprintf("%s %s not found on the destination; apply what `router flux-manifests` prints", s.SourceKind, s.Source.Name)
	case !s.Resources.Found:
		return metav1.ConditionFalse, v1alpha1.FluxNotFound, fmt.Sprintf("Kustomization %s not found on the destination; apply what `router flux-manifests` prints", s.Resources.Name)
	}
	applied := s.Resources.Revision
	waiting := fmt.Sprintf("waiting for Flux to apply %s (last applied: %s)", statestore.Short(commit), orNone(applied))
	if head := SHA(applied); head != "" {
		if commit == "" {
			commit = head
		}
		ok, err := contains(head, commit)
		switch {
		case ok:
			return metav1.ConditionTrue, v1alpha1.InSync, "Flux applied " + applied
		case errors.Is(err, statestore.ErrUnknownCommit):
			waiting += "; the router does not know that revision yet (someone else's write)"
		case err != nil:
			return metav1.ConditionUnknown, v1alpha1.AwaitingFlux, fmt.Sprintf("comparing %s with %s: %v", statestore.Short(commit), applied, err)
		}
	}
	for _, o := range []Object{s.Source, s.Dependencies, s.Resources} {
		// A Kustomization waiting for its dependency is not failing.
		if o.Found && o.Ready == metav1.ConditionFalse && o.Reason != meta.DependencyNotReadyReason {
			return metav1.ConditionFalse, v1alpha1.FluxFailed, fmt.Sprintf("%s: %s", o.Name, o.Message)
		}
	}
	return metav1.ConditionFalse, v1alpha1.AwaitingFlux, waiting
}

// SHA returns the commit of a Flux revision such as main@sha1:<hash>, or
// the digest of sha256:<digest>, or "".
func SHA(revision string) string {
	if i := strings.LastIndex(revision, ":"); i >= 0 {
		return revision[i+1:]
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// AppliedOn says whether Flux on destination d applied commit or a later
// revision, and otherwise what is pending, for a person. It goes by what
// the router sees of Flux there (s). When the router cannot see Flux (no
// kubeConfigSecretRef, or its kubeconfig does not work) it goes by the
// revision a person put in d's FluxAppliedAnnotation, and says how to
// give one: it never assumes that Flux applied anything.
func AppliedOn(d *v1alpha1.Destination, s State, commit string, contains Contains) (bool, string) {
	if s.Configured && s.Err == "" {
		status, _, msg := s.Applied(commit, contains)
		return status == metav1.ConditionTrue, msg
	}
	why := "the router cannot see Flux on " + d.Name + " (it has no spec.kubeConfigSecretRef)"
	if s.Err != "" {
		why = "the router cannot see Flux on " + d.Name + ": " + s.Err
	}
	ask := fmt.Sprintf("%s; once Flux there applied %s or a later revision, annotate the Destination with %s=<that revision>",
		why, commit, v1alpha1.FluxAppliedAnnotation)
	rev := d.Annotations[v1alpha1.FluxAppliedAnnotation]
	if rev == "" {
		return false, ask
	}
	head := SHA(rev)
	if head == "" {
		head = rev
	}
	ok, err := contains(head, commit)
	switch {
	case ok:
		return true, fmt.Sprintf("Flux applied %s (%s)", rev, v1alpha1.FluxAppliedAnnotation)
	case err != nil && !errors.Is(err, statestore.ErrUnknownCommit):
		return false, fmt.Sprintf("comparing %s with %s (%s): %v", statestore.Short(commit), rev, v1alpha1.FluxAppliedAnnotation, err)
	}
	// Not the annotation's value: a message that changes with it would
	// change the status of every waiting request at each confirmation.
	return false, fmt.Sprintf("the revision in %s does not include %s yet; %s", v1alpha1.FluxAppliedAnnotation, statestore.Short(commit), ask)
}
