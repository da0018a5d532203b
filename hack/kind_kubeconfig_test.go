package hack

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// A ServiceAccount token's shape (a JWT); the value means nothing.
const feedbackToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"

// kindKubeconfig is a kubeconfig as `kind get kubeconfig --internal` prints
// it: one cluster with its CA, and a user with the cluster-admin's client
// certificate and private key (made here, and valid).
type kindKubeconfig struct {
	yaml, ca, cert, key []byte
	server              string
}

func newKindKubeconfig(t *testing.T, clusters ...string) kindKubeconfig {
	t.Helper()
	if len(clusters) == 0 {
		clusters = []string{"localstack"}
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	adminKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	adminTmpl := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins"}},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	adminDER, err := x509.CreateCertificate(rand.Reader, adminTmpl, caTmpl, &adminKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(adminKey)
	k := kindKubeconfig{
		ca:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: adminDER}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		server: "https://" + clusters[0] + "-control-plane:6443",
	}
	cfg := clientcmdapi.NewConfig()
	for _, c := range clusters {
		name := "kind-" + c
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: "https://" + c + "-control-plane:6443", CertificateAuthorityData: k.ca}
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: k.cert, ClientKeyData: k.key}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	cfg.CurrentContext = "kind-" + clusters[0]
	if k.yaml, err = clientcmd.Write(*cfg); err != nil {
		t.Fatal(err)
	}
	return k
}

// leaks returns what of the admin's credentials b holds, in PEM or base64,
// or "".
func (k kindKubeconfig) leaks(b []byte) string {
	for what, secret := range map[string][]byte{"the admin's private key": k.key, "the admin's certificate": k.cert} {
		body := pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: mustPEM(secret)})
		middle := strings.Split(strings.TrimSpace(string(body)), "\n")[1] // a line of the key's own base64
		for _, form := range []string{string(secret), base64.StdEncoding.EncodeToString(secret), middle} {
			if bytes.Contains(b, []byte(form)) {
				return what
			}
		}
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		return "a private key"
	}
	return ""
}

func mustPEM(b []byte) []byte {
	block, _ := pem.Decode(b)
	return block.Bytes
}

// checkFeedbackKubeconfig fails unless b is a kubeconfig for k's cluster
// with the token user only.
func checkFeedbackKubeconfig(t *testing.T, b []byte, k kindKubeconfig) {
	t.Helper()
	if what := k.leaks(b); what != "" {
		t.Fatalf("the kubeconfig holds %s:\n%s", what, b)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatalf("not a kubeconfig: %v\n%s", err, b)
	}
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 || len(cfg.Contexts) != 1 {
		t.Fatalf("want one cluster, user and context, have %d, %d and %d:\n%s", len(cfg.Clusters), len(cfg.AuthInfos), len(cfg.Contexts), b)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("the current context %q names no cluster or user:\n%s", cfg.CurrentContext, b)
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster.Server != k.server || !bytes.Equal(cluster.CertificateAuthorityData, k.ca) || cluster.InsecureSkipTLSVerify {
		t.Errorf("cluster: server %s, CA %q, insecure %v; want %s and kind's CA", cluster.Server, cluster.CertificateAuthorityData, cluster.InsecureSkipTLSVerify, k.server)
	}
	only := clientcmdapi.AuthInfo{Token: feedbackToken}
	if ctx.AuthInfo != "switchyard-feedback" || user.Token != feedbackToken || !equalAuth(*user, only) {
		t.Errorf("user %s: %+v; want switchyard-feedback with the token only", ctx.AuthInfo, *user)
	}
}

func equalAuth(a, b clientcmdapi.AuthInfo) bool {
	a.LocationOfOrigin, b.LocationOfOrigin = "", ""
	a.Extensions, b.Extensions = nil, nil
	return len(a.ClientCertificateData) == 0 && len(a.ClientKeyData) == 0 && a.ClientCertificate == "" && a.ClientKey == "" &&
		a.Username == "" && a.Password == "" && a.Exec == nil && a.AuthProvider == nil && a.TokenFile == "" &&
		a.Impersonate == "" && a.Token == b.Token
}

// feedbackKubeconfig runs the script's feedback_kubeconfig with kubeconfig
// on stdin.
func feedbackKubeconfig(kubeconfig []byte, token string) (stdout, stderr []byte, err error) {
	cmd := exec.Command("bash", "-c", `source ./kind-two-clusters.sh && feedback_kubeconfig "$1"`, "feedback_kubeconfig", token)
	cmd.Stdin = bytes.NewReader(kubeconfig)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// TestFeedbackKubeconfig gives the script's kubeconfig builder a kubeconfig
// like kind's: what it prints has kind's server and CA, the token user
// only, and none of the admin's certificate or key. Input it cannot use
// safely is refused, with a message and nothing printed.
func TestFeedbackKubeconfig(t *testing.T) {
	k := newKindKubeconfig(t)
	if what := k.leaks(k.yaml); what != "the admin's private key" && what != "the admin's certificate" {
		t.Fatal("the leak check misses the admin's credentials in kind's kubeconfig")
	}
	out, stderr, err := feedbackKubeconfig(k.yaml, feedbackToken)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	checkFeedbackKubeconfig(t, out, k)

	for _, tt := range []struct {
		name, token string
		kubeconfig  []byte
	}{
		{"no token", "", k.yaml},
		{"a token that is not a JWT", "a b", k.yaml},
		{"a token that would add YAML", feedbackToken + "\nusers: []", k.yaml},
		{"two clusters", feedbackToken, newKindKubeconfig(t, "localstack", "platform").yaml},
		{"no CA", feedbackToken, bytes.ReplaceAll(k.yaml, []byte("certificate-authority-data:"), []byte("insecure-skip-tls-verify: true\n    x:"))},
		{"no kubeconfig", feedbackToken, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := feedbackKubeconfig(tt.kubeconfig, tt.token)
			if err == nil || len(out) > 0 || !strings.Contains(string(stderr), "feedback_kubeconfig: ") {
				t.Errorf("want a failure with a message and no output; err %v, stdout %q, stderr %q", err, out, stderr)
			}
		})
	}
}

// stubs stand in for the tools the script runs, so that a whole run (not a
// dry run) can go through here: each records its arguments in
// $STUB_DIR/log and answers as the real tool would where these tests look.
// kubectl runs the real kubectl for what needs no cluster (create
// --dry-run=client) and keeps what is piped to `apply -f -`, one file per
// apply named after the context, in $STUB_DIR/applied.
var stubs = map[string]string{
	"docker": `echo "docker $*" >>"$STUB_DIR/log"`,
	"helm":   `echo "helm $*" >>"$STUB_DIR/log"`,
	"kind": `echo "kind $*" >>"$STUB_DIR/log"
case "$1 ${2:-}" in
  "version "*) echo "kind v0.32.0 go1.26.8 linux/amd64" ;;
  "get kubeconfig") cat "$STUB_DIR/kind-kubeconfig" ;;
esac`,
	"kubectl": `echo "kubectl $*" >>"$STUB_DIR/log"
ctx=none
if [ "$1" = --context ]; then ctx=$2; shift 2; fi
case " $* " in
  *" --dry-run=client "*) KUBECONFIG="$STUB_DIR/no-kubeconfig" exec "$REAL_KUBECTL" "$@" ;;
  *" apply -f - "*) n=$(ls "$STUB_DIR/applied" | wc -l); cat >"$STUB_DIR/applied/$((n + 1))-$ctx.yaml" ;;
  *" get secret switchyard-feedback-token "*) [ -z "${STUB_TOKEN_FAILS:-}" ] || exit 1; echo "$STUB_TOKEN" ;;
esac`,
}

type stubRun struct {
	dir            string // $STUB_DIR
	stdout, stderr string
	err            error
}

// runWithStubs runs the script with args and the stubs first on the PATH,
// in an empty working directory with an empty TMPDIR, and fails the test
// if either holds anything afterwards: nothing the script handles, the
// admin's kubeconfig least of all, may be left on disk.
func runWithStubs(t *testing.T, k kindKubeconfig, env []string, args ...string) stubRun {
	t.Helper()
	r := stubRun{dir: t.TempDir()}
	bin := filepath.Join(r.dir, "bin")
	for _, d := range []string{bin, filepath.Join(r.dir, "applied")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/usr/bin/env bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.dir, "kind-kubeconfig"), k.yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("kind-two-clusters.sh")
	tmp, work := t.TempDir(), t.TempDir()
	cmd := exec.Command(script, args...)
	cmd.Dir = work
	cmd.Env = append(environWithout("LOCALSTACK_AUTH_TOKEN", "PATH", "TMPDIR"), append(env,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+tmp,
		"STUB_DIR="+r.dir, "REAL_KUBECTL="+kubectl(t), "STUB_TOKEN="+feedbackToken)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r.err = cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	for _, d := range []string{tmp, work} {
		if left, _ := os.ReadDir(d); len(left) > 0 {
			t.Errorf("the script left %s in %s", left[0].Name(), d)
		}
	}
	return r
}

// applied returns the objects piped to kubectl apply on context, in order.
func (r stubRun) applied(t *testing.T, context string) []*unstructured.Unstructured {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(r.dir, "applied", "*-"+context+".yaml"))
	sort.Slice(files, func(i, j int) bool { return seq(files[i]) < seq(files[j]) })
	var objs []*unstructured.Unstructured
	for _, f := range files {
		objs = append(objs, testenv.MustReadObjects(t, f)...)
	}
	return objs
}

func seq(path string) int {
	n, _ := strconv.Atoi(strings.SplitN(filepath.Base(path), "-", 2)[0])
	return n
}

// TestKindRunKeepsTheAdminKeyOut runs the whole script, tools stubbed, with
// kind handing out a kubeconfig that holds the cluster-admin's key. The
// Secret the router reads must hold a kubeconfig with the ServiceAccount
// token only, and the admin's key and certificate must reach no object
// applied anywhere, no tool's arguments and no file left behind.
func TestKindRunKeepsTheAdminKeyOut(t *testing.T) {
	k := newKindKubeconfig(t)
	r := runWithStubs(t, k, nil, "--store", "git")
	if r.err != nil || !strings.Contains(r.stdout, "== tables in LocalStack") {
		t.Fatalf("the run did not go to its end: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	var secret *unstructured.Unstructured
	for _, o := range r.applied(t, "kind-platform") {
		if o.GetKind() == "Secret" && o.GetName() == "localstack-kubeconfig" {
			secret = o
		}
	}
	if secret == nil {
		t.Fatalf("no Secret localstack-kubeconfig was applied to the platform cluster:\n%s", r.stdout)
	}
	value, _, _ := unstructured.NestedString(secret.Object, "data", "value")
	kubeconfig, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		t.Fatal(err)
	}
	checkFeedbackKubeconfig(t, kubeconfig, k)

	files, _ := filepath.Glob(filepath.Join(r.dir, "applied", "*"))
	for _, f := range append(files, filepath.Join(r.dir, "log")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if what := k.leaks(b); what != "" {
			t.Errorf("%s holds %s", filepath.Base(f), what)
		}
		objs, _ := testenv.DecodeObjects(b)
		for _, o := range objs {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			for key, v := range data {
				decoded, _ := base64.StdEncoding.DecodeString(v)
				if what := k.leaks(decoded); what != "" {
					t.Errorf("%s %s, key %s, holds %s", o.GetKind(), o.GetName(), key, what)
				}
			}
		}
	}
}

// TestKindRunFailsWithoutToken runs the script with the ServiceAccount's
// token unreadable: it must stop with a message naming the token Secret,
// before any kubeconfig reaches the platform cluster, and leave no file
// behind. (It used to carry on with an empty token.)
func TestKindRunFailsWithoutToken(t *testing.T) {
	k := newKindKubeconfig(t)
	r := runWithStubs(t, k, []string{"STUB_TOKEN_FAILS=1"}, "--store", "git")
	if r.err == nil || !strings.Contains(r.stderr, "switchyard-feedback-token") {
		t.Fatalf("want a failure naming the token Secret; err %v\n%s", r.err, r.stderr)
	}
	for _, o := range r.applied(t, "kind-platform") {
		if o.GetKind() == "Secret" && o.GetName() == "localstack-kubeconfig" {
			t.Errorf("Secret localstack-kubeconfig was applied anyway")
		}
	}
}
