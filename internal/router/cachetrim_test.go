package router_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/router"
)

// The cache keeps of each object what the router reads and drops the
// rest; an annotation the router would erase by updating a cached object
// (Promises, Destinations) stays.
func TestCacheTransform(t *testing.T) {
	transform := router.ManagerOptions(ctrl.Options{}, "").Cache.DefaultTransform
	lastApplied := map[string]string{corev1.LastAppliedConfigAnnotation: "{}", "keep": "yes"}
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}

	req := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "aws.switchyard.dev/v1alpha1", "kind": "DynamoDBRequest",
		"spec": map[string]any{"tableName": "t"}, "status": map[string]any{"destination": "d1"},
		"extra": "dropped",
	}}
	req.SetName("r")
	req.SetAnnotations(map[string]string{corev1.LastAppliedConfigAnnotation: "{}", "keep": "yes"})
	req.SetManagedFields(managed)
	if _, err := transform(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := req.Object["extra"]; ok {
		t.Error("request: a top-level field other than metadata, spec and status was kept")
	}
	if req.Object["spec"] == nil || req.Object["status"] == nil || req.GetName() != "r" {
		t.Errorf("request: spec, status or name lost: %v", req.Object)
	}
	if a := req.GetAnnotations(); a[corev1.LastAppliedConfigAnnotation] != "" || a["keep"] != "yes" {
		t.Errorf("request annotations %v, want only keep", a)
	}
	if req.GetManagedFields() != nil {
		t.Error("request: managedFields kept")
	}

	d := &v1alpha1.Destination{}
	d.Annotations, d.ManagedFields = lastApplied, managed
	if _, err := transform(d); err != nil {
		t.Fatal(err)
	}
	if d.Annotations[corev1.LastAppliedConfigAnnotation] == "" {
		t.Error("destination: last-applied-configuration dropped, which the router's update would then erase")
	}
	if d.ManagedFields != nil {
		t.Error("destination: managedFields kept")
	}

	ns := &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	ns.Labels = map[string]string{"team": "a"}
	if _, err := transform(ns); err != nil {
		t.Fatal(err)
	}
	if ns.Spec.Finalizers != nil || ns.Status.Phase != "" || ns.Labels["team"] != "a" {
		t.Errorf("namespace: want labels only, got %+v", ns)
	}
}
