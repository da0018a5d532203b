package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/render"
	"github.com/switchyard-dev/switchyard/internal/scheduler"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// Placement is what the router would do with a request.
type Placement struct {
	scheduler.Decision
	// Dir and Files are what would be written, when placed.
	Dir   string
	Files map[string][]byte
}

// Preview decides where the request obj of Promise p would go among dests
// and renders it there, writing nothing (`router place --dry-run`). Loads
// are the destinations' status.placements; current is where the request
// is placed already ("" for a new one), as placement is sticky;
// namespaceLabels are its namespace's, for destinations that restrict
// namespaces.
func Preview(p *v1alpha1.Promise, obj *unstructured.Unstructured, dests []v1alpha1.Destination, current string, namespaceLabels map[string]string) (Placement, error) {
	sel, err := requestSelector(p, obj)
	if err != nil {
		return Placement{}, err
	}
	view := make([]scheduler.Destination, len(dests))
	for i := range dests {
		view[i] = schedulerDestination(&dests[i], int(dests[i].Status.Placements))
	}
	req := scheduler.Request{Key: schedulerKey(obj.GetKind(), types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}), Selector: sel, Current: current,
		Namespace: obj.GetNamespace(), NamespaceLabels: namespaceLabels}
	out := Placement{Decision: scheduler.Schedule(req, view)}
	dest := find(dests, out.Destination)
	if dest == nil {
		return out, nil
	}
	if out.Files, err = render.Request(p.Spec.Resources, renderInput(obj, p, dest)); err != nil {
		return out, fmt.Errorf("rendering Promise %s: %w", p.Name, err)
	}
	out.Dir, err = statestore.RequestDir(dest.EffectivePath(), obj.GetNamespace(), p.Name, obj.GetName())
	return out, err
}

// schedulerKey identifies a request for the scheduler's tie-break hash.
func schedulerKey(kind string, nn types.NamespacedName) string { return kind + "/" + nn.String() }

// renderInput is what a request's templates see on dest.
func renderInput(obj *unstructured.Unstructured, p *v1alpha1.Promise, dest *v1alpha1.Destination) render.Input {
	return render.Input{Request: obj.Object, Promise: p.Name, Destination: dest.Name, DestinationLabels: dest.Labels}
}
