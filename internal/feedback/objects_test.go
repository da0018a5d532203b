package feedback_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/readiness"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// Many tenants share the router: a request reads only objects that carry
// its own UID, under the exact names it rendered. An object of the same
// name with another request's UID, or with none, is not its; a change of
// an object wakes only the request whose UID it carries.
func TestReadObjectsReadsOnlyTheRequestsOwn(t *testing.T) {
	cp := startDestination(t)
	admin := withObjsNamespace(t, cp)
	ctx := context.Background()
	for name, uid := range map[string]string{"mine": "uid-a", "theirs": "uid-b", "unlabelled": ""} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "objs", Name: name}, Data: map[string]string{"k": name}}
		if uid != "" {
			cm.Labels = map[string]string{v1alpha1.RequestUIDLabel: uid}
		}
		if _, err := admin.CoreV1().ConfigMaps("objs").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	w, _ := startWatchers(t, kubeconfig)
	gk := schema.GroupKind{Group: "test", Kind: "Req"}
	events := w.ObjectEvents(gk)
	w.Track("uid-a", gk, types.NamespacedName{Namespace: "team", Name: "a"})
	ensureD(t, ctx, w)
	cm := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	read := func(uid, name string) (*readiness.Object, string) {
		objs := []readiness.Object{{Template: "cm", GVK: cm, Namespace: "objs", Name: name}}
		why, _ := w.ReadObjects(ctx, "d", uid, objs)
		return &objs[0], why
	}
	testenv.WaitFor(t, 30*time.Second, "the ConfigMap watch to list", func() (bool, string) {
		o, why := read("uid-a", "mine")
		return o.Live != nil, why
	})
	for _, tt := range []struct{ uid, name string }{{"uid-a", "theirs"}, {"uid-a", "unlabelled"}, {"uid-b", "mine"}, {"", "unlabelled"}} {
		if o, why := read(tt.uid, tt.name); o.Live != nil || why != "" {
			t.Errorf("request %q read ConfigMap %s (%q): %v", tt.uid, tt.name, why, o.Live)
		}
	}
	if o, _ := read("uid-a", "mine"); o.Live.Object["data"].(map[string]any)["k"] != "mine" {
		t.Errorf("read %v", o.Live.Object)
	}

	// The initial list woke request a (its object was added); drain, then
	// a change of b's object must not wake a, and a change of a's must.
	drain := func() {
		for {
			select {
			case <-events:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	drain()
	patch := func(name string) {
		if _, err := admin.CoreV1().ConfigMaps("objs").Patch(ctx, name, types.MergePatchType, []byte(`{"data":{"x":"`+name+`"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	patch("theirs")
	select {
	case e := <-events:
		t.Errorf("a change of another request's object woke %s/%s", e.Object.GetNamespace(), e.Object.GetName())
	case <-time.After(time.Second):
	}
	patch("mine")
	select {
	case e := <-events:
		if got := e.Object.GetNamespace() + "/" + e.Object.GetName(); got != "team/a" {
			t.Errorf("woke %s, want team/a", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("a change of the request's object did not wake it within 10 s")
	}
	if _, why := read("uid-a", "x"); why != "" {
		t.Errorf("a missing object: %q, want it read as absent", why)
	}
	objs := []readiness.Object{{Template: "x", GVK: schema.GroupVersionKind{Group: "nowhere.example", Version: "v1", Kind: "Thing"}, Namespace: "objs", Name: "x"}}
	if why, retry := w.ReadObjects(ctx, "d", "uid-a", objs); !strings.Contains(why, "not served on destination d") || retry < 10*time.Second {
		t.Errorf("a kind the destination does not serve: %q, look again after %s; want a message and a long delay (discovery is asked each time)", why, retry)
	}
}

// A kind the router may not list on the destination leaves its requests
// waiting with the API server's answer, not silently.
func TestReadObjectsSaysWhyAKindIsNotWatched(t *testing.T) {
	cp := startDestination(t)
	// A user with no rights at all.
	kubeconfig, err := cp.UserKubeConfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	w, ctx := startWatchers(t, kubeconfig)
	ensureD(t, ctx, w)
	testenv.WaitFor(t, 30*time.Second, "a message quoting the API server's refusal", func() (bool, string) {
		objs := []readiness.Object{{Template: "cm", GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: "objs", Name: "x"}}
		why, _ := w.ReadObjects(ctx, "d", "uid", objs)
		return strings.Contains(why, "waiting for the router's watch of ConfigMap on destination d") && strings.Contains(why, "forbidden"), why
	})
}

// A request that renders a Secret is read without the Secret's data: the
// router never holds it, so no output expression can copy it into the
// request's status.
func TestReadObjectsHoldsNoSecretData(t *testing.T) {
	cp := startDestination(t)
	admin := withObjsNamespace(t, cp)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "objs", Name: "conn", Labels: map[string]string{v1alpha1.RequestUIDLabel: "uid-a"}},
		Data: map[string][]byte{"password": []byte("hunter2")}, Type: corev1.SecretTypeOpaque}
	if _, err := admin.CoreV1().Secrets("objs").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := cp.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	w, wctx := startWatchers(t, kubeconfig)
	ensureD(t, wctx, w)
	objs := []readiness.Object{{Template: "conn", GVK: schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, Namespace: "objs", Name: "conn"}}
	testenv.WaitFor(t, 30*time.Second, "the Secret watch to list", func() (bool, string) {
		why, _ := w.ReadObjects(ctx, "d", "uid-a", objs)
		return objs[0].Live != nil, why
	})
	if _, ok := objs[0].Live.Object["data"]; ok {
		t.Errorf("the router holds the Secret's data: %v", objs[0].Live.Object["data"])
	}
	if objs[0].Live.GetName() != "conn" || objs[0].Live.Object["type"] != "Opaque" {
		t.Errorf("the Secret's other fields are gone too: %v", objs[0].Live.Object)
	}
}
