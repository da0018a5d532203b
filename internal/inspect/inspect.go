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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/destinations"
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
	fmt.Fprintln(tw, "DESTINATION\tNAMESPACE\tPROMISE\tNAME\tCOMMIT\tAGE")
	stores := make([]string, 0, len(byStore))
	for s := range byStore {
		stores = append(stores, s)
	}
	sort.Strings(stores)
	for i, name := range stores {
		w, err := destinations.OpenStore(ctx, c, refs[name], path.Join(tmp, fmt.Sprint(i)))
		if err != nil {
			return fmt.Errorf("reading store %s: %w", name, err)
		}
		err = listStore(tw, w, byStore[name])
		w.Close()
		if err != nil {
			return err
		}
	}
	return tw.Flush()
}

func listStore(out io.Writer, w statestore.Writer, dests []v1alpha1.Destination) error {
	sort.Slice(dests, func(i, j int) bool { return dests[i].Name < dests[j].Name })
	for _, d := range dests {
		dirs, err := w.Dirs(path.Join(d.EffectivePath(), statestore.ResourcesDir), 3)
		if err != nil {
			return fmt.Errorf("destination %s: %w", d.Name, err)
		}
		for _, dir := range dirs {
			parts := strings.Split(dir.Path, "/")
			ns, promise, name := parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
			commit, age := "older", "-"
			if dir.Commit != "" {
				commit = dir.Commit[:12]
			} else if !dir.When.IsZero() {
				commit = "-" // a bucket: revisions are not per directory
			}
			if !dir.When.IsZero() {
				age = time.Since(dir.When).Round(time.Second).String()
			}
			fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, ns, promise, name, commit, age)
		}
	}
	return nil
}

// Place shows where the request in file would go, why, and the manifests
// that would be written, without writing anything.
func Place(ctx context.Context, c client.Client, file string, out io.Writer) error {
	obj, err := readRequest(file)
	if err != nil {
		return err
	}
	var promises v1alpha1.PromiseList
	if err := c.List(ctx, &promises); err != nil {
		return fmt.Errorf("listing promises: %w", err)
	}
	var promise *v1alpha1.Promise
	for i := range promises.Items {
		if p := &promises.Items[i]; p.Status.APIVersion == obj.GetAPIVersion() && p.Status.Kind == obj.GetKind() {
			promise = p
		}
	}
	if promise == nil {
		return fmt.Errorf("no Promise serves %s %s", obj.GetAPIVersion(), obj.GetKind())
	}
	var dests v1alpha1.DestinationList
	if err := c.List(ctx, &dests); err != nil {
		return fmt.Errorf("listing destinations: %w", err)
	}
	// An existing request keeps its destination (placement is sticky).
	current := ""
	existing := obj.DeepCopy()
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); err == nil {
		current, _, _ = unstructured.NestedString(existing.Object, "status", "destination")
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, types.NamespacedName{Name: obj.GetNamespace()}, &ns); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading namespace %s: %w", obj.GetNamespace(), err)
	}
	p, err := controller.Preview(promise, obj, dests.Items, current, ns.Labels)
	if err != nil {
		return err
	}
	if p.Destination == "" {
		fmt.Fprintf(out, "# %s/%s would wait: %s (%s)\n", obj.GetNamespace(), obj.GetName(), p.Message, p.Reason)
		return nil
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
	return nil
}

func readRequest(file string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	obj := &unstructured.Unstructured{Object: m}
	if obj.GetKind() == "" || obj.GetName() == "" {
		return nil, fmt.Errorf("%s: want one request with apiVersion, kind and metadata.name", file)
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace("default")
	}
	return obj, nil
}
