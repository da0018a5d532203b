package router_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestMetricsNeedAuthorisation: the metrics endpoint refuses anonymous
// clients and authenticated ones without get on /metrics, and serves a
// ServiceAccount bound to config/rbac/metrics_reader_role.yaml.
func TestMetricsNeedAuthorisation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startRouter(t, func(o *ctrl.Options) { o.Metrics = router.MetricsOptions(addr, true) })

	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.CreateFile(ctx(t), k8s, filepath.Join(testenv.RepoRoot(), "config", "rbac", "metrics_reader_role.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prometheus", "nosy"} {
		if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-reads-switchyard"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "switchyard-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "default"}}}
	if err := k8s.Create(ctx(t), binding); err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx(t), sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	// The certificate is self-signed: the test checks access, not TLS.
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.WaitFor(t, 30*time.Second, "the metrics endpoint", func() (bool, string) {
		code, body := get("")
		return code != 0, body
	})
	prom, nosy := token("prometheus"), token("nosy")
	for _, c := range []struct {
		who   string
		token string
		want  int
	}{{"anonymous", "", http.StatusUnauthorized}, {"a ServiceAccount without the role", nosy, http.StatusForbidden}, {"the metrics reader", prom, http.StatusOK}} {
		var code int
		var body string
		// RBAC caches in the API server take a moment to see the binding.
		testenv.WaitFor(t, 10*time.Second, c.who+" answered as expected", func() (bool, string) {
			code, body = get(c.token)
			return code == c.want, fmt.Sprintf("status %d", code)
		})
		if c.want == http.StatusOK && !strings.Contains(body, "switchyard_") {
			t.Errorf("metrics body lacks switchyard_ metrics")
		}
	}
	if err := k8s.Delete(ctx(t), binding); err != nil {
		t.Error(err)
	}
}
