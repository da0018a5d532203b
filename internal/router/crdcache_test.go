package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// gadgetCRD is a CRD the router did not install.
func gadgetCRD() *apiextensionsv1.CustomResourceDefinition {
	obj := &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr(true)}
	return &apiextensionsv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Gadget", ListKind: "GadgetList", Plural: "gadgets", Singular: "gadget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": *obj}}}}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// The router caches only the CRDs it installed: a cluster has hundreds of
// CRDs with large schemas, and the router reads none of the others. A
// Promise whose CRD name is taken by someone else's CRD still says so.
func TestCacheHoldsOnlyInstalledCRDs(t *testing.T) {
	startRouter(t)
	installPromise(t)
	crd := gadgetCRD()
	if err := k8s.Create(ctx(t), crd.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), crd) })

	mgr, err := ctrl.NewManager(routerConfig, router.ManagerOptions(ctrl.Options{
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}, routerNamespace))
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !mgr.GetCache().WaitForCacheSync(ctx(t)) {
		t.Fatal("the manager's cache did not start")
	}
	var list apiextensionsv1.CustomResourceDefinitionList
	if err := mgr.GetCache().List(ctx(t), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list.Items {
		names = append(names, c.Name)
		if c.Labels[v1alpha1.PromiseLabel] == "" {
			t.Errorf("the cache holds CRD %s, which no Promise installed", c.Name)
		}
	}
	if len(names) == 0 {
		t.Error("the cache holds no CRD, not even the DynamoDB Promise's")
	}

	// Someone else's CRD of the same name is a conflict, although the
	// cache does not hold it.
	api, err := json.Marshal(crd)
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.Promise{ObjectMeta: metav1.ObjectMeta{Name: "gadgets"},
		Spec: v1alpha1.PromiseSpec{API: runtime.RawExtension{Raw: api}}}
	if err := k8s.Create(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), p) })
	testenv.WaitFor(t, 30*time.Second, "Promise gadgets Ready=False (APIConflict)", func() (bool, string) {
		var got v1alpha1.Promise
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: "gadgets"}, &got); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Reason == v1alpha1.APIConflict, fmt.Sprintf("%s: %s", c.Reason, c.Message)
	})
}
