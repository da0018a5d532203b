package inspect

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/destinations"
	"github.com/switchyard-dev/switchyard/internal/render"
	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// State lists, per destination (only one when only is set), the requests
// its directory holds in the state store, with the commit that last
// changed each and its age. It reads each store (a clone into a temporary
// directory, or a bucket listing) with the credentials its Secret holds.
func State(ctx context.Context, c client.Client, only string, out io.Writer) error {
	var list v1alpha1.DestinationList
	if err := c.List(ctx, &list); err != nil {
		return fmt.Errorf("listing destinations: %w", err)
	}
	byStore := map[string][]v1alpha1.Destination{}
	refs := map[string]v1alpha1.StateStoreReference{}
	for _, d := range list.Items {
		if only == "" || d.Name == only {
			ref := d.Spec.StateStoreRef
			byStore[ref.String()] = append(byStore[ref.String()], d)
			refs[ref.String()] = ref
		}
	}
	if only != "" && len(byStore) == 0 {
		return fmt.Errorf("destination %s not found", only)
	}
	tmp, err := os.MkdirTemp("", "switchyard-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fromStatus := 0
	fmt.Fprintln(tw, "DESTINATION\tNAMESPACE\tPROMISE\tNAME\tCOMMIT\tAGE")
	stores := make([]string, 0, len(byStore))
	for s := range byStore {
		stores = append(stores, s)
	}
	sort.Strings(stores)
	commitOf := statusCommit(ctx, c) // one Promise cache for every store
	for i, name := range stores {
		w, err := destinations.OpenStore(ctx, c, refs[name], path.Join(tmp, fmt.Sprint(i)))
		if err != nil {
			return fmt.Errorf("reading store %s: %w", name, err)
		}
		n, err := listStore(tw, w, byStore[name], commitOf)
		w.Close()
		if err != nil {
			return err
		}
		fromStatus += n
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if fromStatus > 0 {
		fmt.Fprintln(out, "\nA bucket keeps no history per directory: its COMMIT is the revision (digest) in the request's status, the one its last write made.")
	}
	return nil
}

// statusCommit returns a lookup of the commit (or bucket revision) in a
// request's status, "" when the request or its Promise is gone.
func statusCommit(ctx context.Context, c client.Client) func(ns, promise, name string) string {
	kinds := map[string]*v1alpha1.Promise{}
	return func(ns, promise, name string) string {
		p, ok := kinds[promise]
		if !ok {
			p = &v1alpha1.Promise{}
			if err := c.Get(ctx, types.NamespacedName{Name: promise}, p); err != nil {
				p = nil
			}
			kinds[promise] = p
		}
		if p == nil || p.Status.Kind == "" {
			return ""
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(p.Status.APIVersion)
		u.SetKind(p.Status.Kind)
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
			return ""
		}
		commit, _, _ := unstructured.NestedString(u.Object, "status", "commit")
		return commit
	}
}

// listStore writes a row per request directory of dests and returns how
// many took their commit from the request's status (a bucket's).
func listStore(out io.Writer, w statestore.Writer, dests []v1alpha1.Destination, statusCommit func(ns, promise, name string) string) (int, error) {
	fromStatus := 0
	sort.Slice(dests, func(i, j int) bool { return dests[i].Name < dests[j].Name })
	for _, d := range dests {
		dirs, err := w.Dirs(path.Join(d.EffectivePath(), statestore.ResourcesDir), 3)
		if err != nil {
			return 0, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		for _, dir := range dirs {
			parts := strings.Split(dir.Path, "/")
			ns, promise, name := parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
			commit, age := "older", "-"
			if dir.Commit != "" {
				commit = statestore.Short(dir.Commit)
			} else if !dir.When.IsZero() { // a bucket: revisions are not per directory
				commit = "-"
				if c := statusCommit(ns, promise, name); len(c) >= 12 {
					commit, fromStatus = statestore.Short(c), fromStatus+1
				}
			}
			if !dir.When.IsZero() {
				age = time.Since(dir.When).Round(time.Second).String()
			}
			fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, ns, promise, name, commit, age)
		}
	}
	return fromStatus, nil
}

// Place shows, for every request in file, where it would go, why, and the
// manifests that would be written, without writing anything. Each request
// first goes through the API server's own defaulting and validation (a
// server-side dry-run create, or update when it exists), so the preview
// renders what the router would read, and a request the API server would
// refuse is reported as refused. Objects no Promise serves (the file's
// Namespaces, say) are skipped with a line saying so; a Namespace in the
// file lends its labels to the requests in it while the cluster lacks it.
func Place(ctx context.Context, c client.Client, file string, out io.Writer) error {
	objs, err := readObjects(file)
	if err != nil {
		return err
	}
	var promises v1alpha1.PromiseList
	if err := c.List(ctx, &promises); err != nil {
		return fmt.Errorf("listing promises: %w", err)
	}
	var dests v1alpha1.DestinationList
	if err := c.List(ctx, &dests); err != nil {
		return fmt.Errorf("listing destinations: %w", err)
	}
	inFile := map[string]map[string]string{} // the file's Namespaces: name -> labels
	for _, o := range objs {
		if o.GetAPIVersion() == "v1" && o.GetKind() == "Namespace" {
			inFile[o.GetName()] = o.GetLabels()
		}
	}
	requests, refused := 0, 0
	for _, obj := range objs {
		promise := servedBy(promises.Items, obj)
		if promise == nil {
			fmt.Fprintf(out, "# skipping %s %s: not a request (no Promise serves %s %s)\n", obj.GetKind(), obj.GetName(), obj.GetAPIVersion(), obj.GetKind())
			continue
		}
		requests++
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		if err := placeOne(ctx, c, promise, obj, dests.Items, inFile, out); err != nil {
			refused++
			fmt.Fprintf(out, "# %s/%s would be refused: %v\n", obj.GetNamespace(), obj.GetName(), err)
		}
	}
	switch {
	case requests == 0:
		return fmt.Errorf("%s holds no request: no Promise serves any of its objects", file)
	case refused > 0:
		return fmt.Errorf("%d of %d requests in %s would be refused", refused, requests, file)
	}
	return nil
}

// servedBy is the Promise that serves obj's kind, or nil.
func servedBy(promises []v1alpha1.Promise, obj *unstructured.Unstructured) *v1alpha1.Promise {
	for i := range promises {
		if p := &promises[i]; p.Status.APIVersion == obj.GetAPIVersion() && p.Status.Kind == obj.GetKind() {
			return p
		}
	}
	return nil
}

// placeOne previews one request: the API server's defaults and validation,
// then the scheduler and the Promise's templates, as the router runs them.
func placeOne(ctx context.Context, c client.Client, promise *v1alpha1.Promise, obj *unstructured.Unstructured, dests []v1alpha1.Destination, inFile map[string]map[string]string, out io.Writer) error {
	// An existing request keeps its destination (placement is sticky).
	current := ""
	existing := obj.DeepCopy()
	switch err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); {
	case err == nil:
		current, _, _ = unstructured.NestedString(existing.Object, "status", "destination")
	case apierrors.IsNotFound(err):
		existing = nil
	default:
		return fmt.Errorf("reading the request: %w", err)
	}
	var ns corev1.Namespace
	nsLabels, nsExists := map[string]string(nil), true
	switch err := c.Get(ctx, types.NamespacedName{Name: obj.GetNamespace()}, &ns); {
	case err == nil:
		nsLabels = ns.Labels
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading namespace %s: %w", obj.GetNamespace(), err)
	default:
		labels, created := inFile[obj.GetNamespace()]
		if !created {
			return fmt.Errorf("namespace %s does not exist, and the file does not create it", obj.GetNamespace())
		}
		nsLabels, nsExists = labels, false
		fmt.Fprintf(out, "# %s/%s: namespace %s is created by the file; defaults and validation checked in namespace %s\n", obj.GetNamespace(), obj.GetName(), obj.GetNamespace(), metav1.NamespaceDefault)
	}
	request, err := serverDryRun(ctx, c, obj, existing, nsExists)
	if err != nil {
		return err
	}
	p, err := controller.Preview(promise, request, dests, current, nsLabels)
	if err != nil {
		return err
	}
	writePlacement(out, request, p)
	return nil
}

// serverDryRun sends obj through the API server's defaulting, validation
// and admission without storing it: a dry-run update when the request
// exists, else a dry-run create (in the default namespace when obj's does
// not exist yet). It returns the object the API server would store.
func serverDryRun(ctx context.Context, c client.Client, obj, existing *unstructured.Unstructured, nsExists bool) (*unstructured.Unstructured, error) {
	u := obj.DeepCopy()
	if existing != nil {
		u.SetResourceVersion(existing.GetResourceVersion())
		if err := c.Update(ctx, u, client.DryRunAll); err != nil {
			return nil, fmt.Errorf("the API server refuses the update: %w", err)
		}
		return u, nil
	}
	if !nsExists {
		u.SetNamespace(metav1.NamespaceDefault)
	}
	if err := c.Create(ctx, u, client.DryRunAll); err != nil {
		return nil, fmt.Errorf("the API server refuses it: %w", err)
	}
	u.SetNamespace(obj.GetNamespace())
	return u, nil
}

func writePlacement(out io.Writer, obj *unstructured.Unstructured, p controller.Placement) {
	if p.Destination == "" {
		fmt.Fprintf(out, "# %s/%s would wait: %s (%s)\n", obj.GetNamespace(), obj.GetName(), p.Message, p.Reason)
		return
	}
	fmt.Fprintf(out, "# %s/%s -> destination %s: %s (%s)\n", obj.GetNamespace(), obj.GetName(), p.Destination, p.Message, p.Reason)
	names := make([]string, 0, len(p.Files))
	for n := range p.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "# %s\n---\n%s", path.Join(p.Dir, n), p.Files[n])
	}
}

// readObjects reads every object in a multi-document YAML (or JSON) file.
func readObjects(file string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	objs, err := render.Objects(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i, u := range objs {
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d: want an object with apiVersion, kind and metadata.name", file, i+1)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no objects", file)
	}
	return objs, nil
}
