package feedback

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// contains answers for the history a <- b <- c; x is someone else's
// commit the clone lacks.
func contains(head, c string) (bool, error) {
	if head == "x" || c == "x" {
		return false, fmt.Errorf("%w: x", statestore.ErrUnknownCommit)
	}
	parents := map[string]string{"b": "a", "c": "b"}
	for h := head; h != ""; h = parents[h] {
		if h == c {
			return true, nil
		}
	}
	return false, nil
}

// seen is a healthy destination whose Flux applied revision applied.
func seen(applied string) State {
	ok := Object{Name: "flux-system/k", Found: true, Ready: metav1.ConditionTrue}
	res := ok
	res.Revision = "main@sha1:" + applied
	return State{Configured: true, Synced: true, Source: ok, Dependencies: ok, Resources: res}
}

func TestApplied(t *testing.T) {
	failing := seen("a")
	failing.Resources.Ready, failing.Resources.Reason, failing.Resources.Message = metav1.ConditionFalse, "BuildFailed", "kustomize build failed: boom"
	waitingDep := seen("a")
	waitingDep.Resources.Ready, waitingDep.Resources.Reason = metav1.ConditionFalse, "DependencyNotReady"
	noKustomization := seen("a")
	noKustomization.Resources = Object{Name: "flux-system/k"}

	tests := []struct {
		name    string
		state   State
		commit  string
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"no kubeconfig", State{}, "a", metav1.ConditionUnknown, v1alpha1.NoFeedback, "kubeConfigSecretRef"},
		{"unreachable", State{Configured: true, Err: "refused"}, "a", metav1.ConditionUnknown, v1alpha1.DestinationUnreachable, "refused"},
		{"kubeconfig refused", State{Configured: true, Refused: true, Err: `user "u": tokenFile`}, "a", metav1.ConditionUnknown, v1alpha1.InsecureKubeConfig, "tokenFile"},
		{"not synced", State{Configured: true}, "a", metav1.ConditionUnknown, v1alpha1.AwaitingFlux, "connecting"},
		{"no Kustomization", noKustomization, "a", metav1.ConditionFalse, v1alpha1.FluxNotFound, "flux-manifests"},
		{"applied exactly", seen("b"), "b", metav1.ConditionTrue, v1alpha1.InSync, "main@sha1:b"},
		{"applied a descendant", seen("c"), "a", metav1.ConditionTrue, v1alpha1.InSync, ""},
		{"not yet", seen("a"), "c", metav1.ConditionFalse, v1alpha1.AwaitingFlux, "last applied: main@sha1:a"},
		{"unknown revision", seen("x"), "c", metav1.ConditionFalse, v1alpha1.AwaitingFlux, "does not know that revision yet"},
		{"Flux fails", failing, "c", metav1.ConditionFalse, v1alpha1.FluxFailed, "boom"},
		{"failing but already applied", failing, "a", metav1.ConditionTrue, v1alpha1.InSync, ""},
		{"waiting for dependencies is no failure", waitingDep, "c", metav1.ConditionFalse, v1alpha1.AwaitingFlux, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, msg := tt.state.Applied(tt.commit, contains)
			if status != tt.status || reason != tt.reason || !strings.Contains(msg, tt.message) {
				t.Errorf("Applied(%q) = %s %s %q; want %s %s containing %q", tt.commit, status, reason, msg, tt.status, tt.reason, tt.message)
			}
		})
	}
}

func TestAppliedOn(t *testing.T) {
	dest := func(confirmed string) *v1alpha1.Destination {
		d := &v1alpha1.Destination{}
		d.Name = "east"
		if confirmed != "" {
			d.Annotations = map[string]string{v1alpha1.FluxAppliedAnnotation: confirmed}
		}
		return d
	}
	tests := []struct {
		name    string
		dest    *v1alpha1.Destination
		state   State
		commit  string
		want    bool
		message string
	}{
		{"seen and applied", dest(""), seen("c"), "b", true, "Flux applied main@sha1:c"},
		{"seen, not yet", dest(""), seen("a"), "b", false, "waiting for Flux"},
		{"seen: a confirmation does not override Flux", dest("c"), seen("a"), "b", false, "waiting for Flux"},
		{"not seen, nothing confirmed: never assumed", dest(""), State{}, "b", false, "annotate the Destination with " + v1alpha1.FluxAppliedAnnotation + "=<that revision>"},
		{"not seen, the full commit is named", dest(""), State{}, "b", false, "applied b or a later"},
		{"unreachable, nothing confirmed", dest(""), State{Configured: true, Err: "refused"}, "b", false, "refused"},
		{"not seen, confirmed a later revision", dest("main@sha1:c"), State{}, "b", true, "Flux applied main@sha1:c"},
		{"not seen, confirmed a bare hash", dest("b"), State{}, "b", true, ""},
		{"unreachable, confirmed", dest("c"), State{Configured: true, Err: "refused"}, "a", true, ""},
		{"not seen, confirmed an older revision", dest("a"), State{}, "b", false, "does not include b"},
		{"not seen, confirmed an unknown revision", dest("x"), State{}, "b", false, "does not include b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := AppliedOn(tt.dest, tt.state, tt.commit, contains)
			if got != tt.want || !strings.Contains(msg, tt.message) {
				t.Errorf("AppliedOn(%q) = %v %q; want %v containing %q", tt.commit, got, msg, tt.want, tt.message)
			}
		})
	}
}

func TestSHA(t *testing.T) {
	for rev, want := range map[string]string{"main@sha1:abc": "abc", "sha1:abc": "abc", "": "", "abc": ""} {
		if got := SHA(rev); got != want {
			t.Errorf("SHA(%q) = %q, want %q", rev, got, want)
		}
	}
}
