package testenv

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/render"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReadObjects decodes every object in a multi-document YAML file.
func ReadObjects(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := DecodeObjects(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

// DecodeObjects decodes every object in multi-document YAML (or JSON).
func DecodeObjects(b []byte) ([]*unstructured.Unstructured, error) {
	objs, err := render.Objects(b)
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// CreateFile creates every object in a YAML file, skipping those that exist.
func CreateFile(ctx context.Context, c client.Client, path string) error {
	objs, err := ReadObjects(path)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := ensure(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

// WaitForEvent waits until an event with reason regards the object named
// name in namespace ns ("" for a cluster-scoped one). Events are recorded
// asynchronously, so one is looked for until a deadline, never once.
func WaitForEvent(t testing.TB, c client.Reader, ns, name, reason string) {
	t.Helper()
	WaitFor(t, 30*time.Second, fmt.Sprintf("a %s event regarding %s/%s", reason, ns, name), func() (bool, string) {
		reasons := EventReasons(t, c, ns, name)
		return slices.Contains(reasons, reason), fmt.Sprintf("events: %v", reasons)
	})
}

// EventReasons lists the reasons of the events in namespace ns regarding
// the object named name.
func EventReasons(t testing.TB, c client.Reader, ns, name string) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// MustReadObjects is ReadObjects for a test: an error fails it.
func MustReadObjects(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := ReadObjects(path)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
