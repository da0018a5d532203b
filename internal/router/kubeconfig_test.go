package router_test

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/feedback"
	"github.com/switchyard-dev/switchyard/internal/kubeconfig"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// attacker is an HTTPS server standing in for one that the author of a
// kubeconfig Secret runs: every request is answered 403 and remembered.
type attacker struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests int
	seen     strings.Builder // method, URL, headers and body of each request
}

// startAttacker starts the server; it stops when the test ends.
func startAttacker(t *testing.T) *attacker {
	t.Helper()
	a := &attacker{}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.requests++
		fmt.Fprintf(&a.seen, "%s %s %v %s\n", r.Method, r.URL, r.Header, body)
		a.mu.Unlock()
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *attacker) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// saw reports whether s appears in anything the server was sent.
func (a *attacker) saw(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Contains(a.seen.String(), s)
}

// caPEM is the server's certificate, which verifies it.
func (a *attacker) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
}

// kubeConfigFor is a kubeconfig whose only context points at a's server,
// verified with its certificate inline, as user; mutate adjusts it.
func kubeConfigFor(t *testing.T, a *attacker, user *clientcmdapi.AuthInfo, mutate ...func(*clientcmdapi.Cluster)) []byte {
	t.Helper()
	cluster := &clientcmdapi.Cluster{Server: a.srv.URL, CertificateAuthorityData: a.caPEM()}
	for _, m := range mutate {
		m(cluster)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["destination"] = cluster
	cfg.AuthInfos["router"] = user
	cfg.Contexts["destination"] = &clientcmdapi.Context{Cluster: "destination", AuthInfo: "router"}
	cfg.CurrentContext = "destination"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes content to a new file in the test's temp dir.
func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// kubeConfigSecret creates a Secret holding kubeconfig under the key the
// router reads and returns a reference to it.
func kubeConfigSecret(t *testing.T, name string, kubeconfig []byte) *v1alpha1.SecretReference {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Data: map[string][]byte{feedback.KubeConfigKey: kubeconfig}}
	if err := k8s.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	track(s)
	return &v1alpha1.SecretReference{Namespace: s.Namespace, Name: s.Name}
}

// waitKubeConfigVerdict waits until the router has judged the kubeconfig
// of destination name (its Applied condition has left AwaitingFlux), or
// until a's server was contacted: that unsafe outcome ends the wait at
// once instead of at the deadline.
func waitKubeConfigVerdict(t *testing.T, name string, a *attacker) *v1alpha1.Destination {
	t.Helper()
	d := &v1alpha1.Destination{}
	testenv.WaitFor(t, 30*time.Second, "a verdict on the kubeconfig of "+name, func() (bool, string) {
		if a.count() > 0 {
			return true, ""
		}
		if err := k8s.Get(ctx(t), client.ObjectKey{Name: name}, d); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.AppliedCondition)
		if c == nil {
			return false, "no Applied condition"
		}
		return c.Reason != v1alpha1.AwaitingFlux, c.Reason + ": " + c.Message
	})
	if err := k8s.Get(ctx(t), client.ObjectKey{Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestUnsafeKubeConfigsAreRefused: a kubeconfig Secret that would make the
// router run a program, use an auth plugin or read a file on its host is
// refused before any client is built. The Destination is Ready=False with
// reason InsecureKubeConfig, naming the field but not its value, and the
// server the kubeconfig names receives nothing: no request, no token.
func TestUnsafeKubeConfigsAreRefused(t *testing.T) {
	scenario(t, "unsafe")
	const fileToken = "router-sa-token-b7c4e1f09a2d" // what a pod's token file would hold
	tokenFile := writeFile(t, "token", []byte(fileToken))
	marker := filepath.Join(t.TempDir(), "exec-ran")
	script := fmt.Sprintf(`touch %s; printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token-5d1e"}}'`, marker)

	tests := []struct {
		name string
		user func(a *attacker) *clientcmdapi.AuthInfo
		// ca, if set, adjusts the cluster; it returns the file it names.
		ca    func(a *attacker) (func(*clientcmdapi.Cluster), string)
		field string
		// hidden are values that must appear in no condition message.
		hidden []string
		// tokens must reach neither the server nor the router log.
		tokens []string
	}{
		{name: "exec", field: "exec", hidden: []string{"/bin/sh", marker}, tokens: []string{"exec-token-5d1e"},
			user: func(*attacker) *clientcmdapi.AuthInfo {
				return &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "/bin/sh", Args: []string{"-c", script},
					APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}}
			}},
		{name: "token-file", field: "tokenFile", hidden: []string{tokenFile, fileToken}, tokens: []string{fileToken},
			user: func(*attacker) *clientcmdapi.AuthInfo { return &clientcmdapi.AuthInfo{TokenFile: tokenFile} }},
		{name: "auth-provider", field: "auth-provider", hidden: []string{"oidc", "id-token-9a8b"}, tokens: []string{"id-token-9a8b"},
			user: func(a *attacker) *clientcmdapi.AuthInfo {
				return &clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc",
					Config: map[string]string{"idp-issuer-url": a.srv.URL, "client-id": "router", "id-token": "id-token-9a8b"}}}
			}},
		{name: "ca-file", field: "certificate-authority", tokens: []string{"inline-token-3f9e"},
			user: func(*attacker) *clientcmdapi.AuthInfo { return &clientcmdapi.AuthInfo{Token: "inline-token-3f9e"} },
			ca: func(a *attacker) (func(*clientcmdapi.Cluster), string) {
				caFile := writeFile(t, "ca.crt", a.caPEM())
				return func(c *clientcmdapi.Cluster) { c.CertificateAuthorityData, c.CertificateAuthority = nil, caFile }, caFile
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAttacker(t) // one each, so no case sees another's requests
			var mutate []func(*clientcmdapi.Cluster)
			hidden := tt.hidden
			if tt.ca != nil {
				m, file := tt.ca(a)
				mutate, hidden = append(mutate, m), append(hidden, file)
			}
			name := "unsafe-" + tt.name
			d := &v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels("unsafe")},
				Spec: v1alpha1.DestinationSpec{StateStoreRef: v1alpha1.StateStoreReference{Kind: v1alpha1.GitStateStoreKind, Name: "unsafe"},
					KubeConfigSecretRef: kubeConfigSecret(t, name+"-kubeconfig", kubeConfigFor(t, a, tt.user(a), mutate...))}}
			if err := k8s.Create(ctx(t), d); err != nil {
				t.Fatal(err)
			}
			track(d)
			d = waitKubeConfigVerdict(t, name, a)

			if n := a.count(); n != 0 {
				t.Errorf("the kubeconfig's server received %d request(s)", n)
			}
			for _, s := range tt.tokens {
				if a.saw(s) {
					t.Errorf("the kubeconfig's server was sent the token %q", s)
				}
				if strings.Contains(routerLog.String(), s) {
					t.Errorf("the router log contains the token %q", s)
				}
			}
			for _, typ := range []string{v1alpha1.ReadyCondition, v1alpha1.AppliedCondition} {
				c := meta.FindStatusCondition(d.Status.Conditions, typ)
				if c == nil {
					t.Errorf("no %s condition", typ)
					continue
				}
				if c.Reason != v1alpha1.InsecureKubeConfig || !strings.Contains(c.Message, tt.field) {
					t.Errorf("%s is %s %s: %q; want reason %s naming %s", typ, c.Status, c.Reason, c.Message, v1alpha1.InsecureKubeConfig, tt.field)
				}
				if typ == v1alpha1.ReadyCondition && c.Status != metav1.ConditionFalse {
					t.Errorf("Ready is %s, want False", c.Status)
				}
				for _, h := range hidden {
					if strings.Contains(c.Message, h) {
						t.Errorf("%s message shows the value %q: %q", typ, h, c.Message)
					}
				}
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the router ran the kubeconfig's exec command")
	}
}

// TestInlineKubeConfigReachesItsServer is the control for the test above:
// the same server, named by a kubeconfig with only inline credentials, is
// contacted with its token, so a count of zero there means refused, not
// "never tried".
func TestInlineKubeConfigReachesItsServer(t *testing.T) {
	a := startAttacker(t)
	scenario(t, "inline")
	const token = "inline-token-c2d8"
	newDestination(t, "inline-1", "inline", labels("inline"), func(d *v1alpha1.Destination) {
		d.Spec.KubeConfigSecretRef = kubeConfigSecret(t, "inline-1-kubeconfig", kubeConfigFor(t, a, &clientcmdapi.AuthInfo{Token: token}))
	})
	testenv.WaitFor(t, 30*time.Second, "the server to be sent the inline token", func() (bool, string) {
		return a.saw("Bearer " + token), fmt.Sprintf("%d request(s)", a.count())
	})
}

// TestRefusedKubeConfigShowsOnPlacedRequests: a destination whose
// kubeconfig is replaced by one the router refuses keeps its requests
// (placements are sticky), and they say why the router cannot see Flux
// there: Applied has reason InsecureKubeConfig.
func TestRefusedKubeConfigShowsOnPlacedRequests(t *testing.T) {
	a := startAttacker(t)
	scenario(t, "refused")
	newDestination(t, "refused-1", "refused", labels("refused"))
	newNamespace(t, "team-refused")
	createRequest(t, "team-refused", "placed", tableSpec("placed", "refused", nil))
	waitReadyRequest(t, "team-refused", "placed")

	const fileToken = "router-sa-token-0e6f2a9c41"
	ref := kubeConfigSecret(t, "refused-1-kubeconfig", kubeConfigFor(t, a,
		&clientcmdapi.AuthInfo{TokenFile: writeFile(t, "token", []byte(fileToken))},
		func(c *clientcmdapi.Cluster) { c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true }))
	d := &v1alpha1.Destination{}
	d.Name = "refused-1"
	patch := fmt.Sprintf(`{"spec":{"kubeConfigSecretRef":{"namespace":%q,"name":%q}}}`, ref.Namespace, ref.Name)
	if err := k8s.Patch(ctx(t), d, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the request's Applied to say InsecureKubeConfig", func() (bool, string) {
		if a.count() > 0 {
			return true, ""
		}
		st, err := requestStatus(t, "team-refused", "placed")
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.AppliedCondition)
		if c == nil {
			return false, "no Applied condition"
		}
		return c.Reason == v1alpha1.InsecureKubeConfig, c.Reason + ": " + c.Message
	})
	if n := a.count(); n != 0 {
		t.Fatalf("the kubeconfig's server received %d request(s)", n)
	}
	st := mustStatus(t, "team-refused", "placed")
	if st.Destination != "refused-1" {
		t.Errorf("the request moved to %q", st.Destination)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.AppliedCondition); !strings.Contains(c.Message, "tokenFile") ||
		!strings.Contains(c.Message, "insecure-skip-tls-verify") {
		t.Errorf("Applied message %q does not name tokenFile and insecure-skip-tls-verify", c.Message)
	}
	if a.saw(fileToken) || strings.Contains(routerLog.String(), fileToken) {
		t.Error("the token file's content left the router")
	}
}

// TestInsecureKubeConfigTLSFlag: with --insecure-kubeconfig-tls
// (router.Options.InsecureKubeConfig.TLS) a kubeconfig that skips TLS
// verification is used, where by default it is refused.
func TestInsecureKubeConfigTLSFlag(t *testing.T) {
	a := startAttacker(t)
	g := testenv.StartGitServer(t)
	startRouterWith(t, routerConfig, router.Options{DataDir: t.TempDir(), StoreInterval: 2 * time.Second,
		InsecureKubeConfig: kubeconfig.Insecure{TLS: true}})
	newStore(t, g, "skiptls")
	const token = "inline-token-71ab"
	raw := kubeConfigFor(t, a, &clientcmdapi.AuthInfo{Token: token},
		func(c *clientcmdapi.Cluster) { c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true })
	if err := kubeconfig.Check(raw, kubeconfig.Insecure{}); err == nil {
		t.Fatal("the kubeconfig is accepted without the flag: this test shows nothing")
	}
	newDestination(t, "skiptls-1", "skiptls", labels("skiptls"), func(d *v1alpha1.Destination) {
		d.Spec.KubeConfigSecretRef = kubeConfigSecret(t, "skiptls-1-kubeconfig", raw)
	})
	testenv.WaitFor(t, 30*time.Second, "the server to be sent the inline token", func() (bool, string) {
		return a.saw("Bearer " + token), fmt.Sprintf("%d request(s)", a.count())
	})
}

// TestOwnKubeConfigsAreAccepted: the kubeconfigs the e2e test and the demo
// put in Destination Secrets (testenv's, as for Flux's and the router's
// identities) use only inline credentials, so no flag is needed for them.
func TestOwnKubeConfigsAreAccepted(t *testing.T) {
	for _, user := range []string{"admin", "system:serviceaccount:flux-system:switchyard-feedback"} {
		raw, err := cp.UserKubeConfig(user)
		if err != nil {
			t.Fatal(err)
		}
		if err := kubeconfig.Check(raw, kubeconfig.Insecure{}); err != nil {
			t.Errorf("%s: %v", user, err)
		}
	}
}
