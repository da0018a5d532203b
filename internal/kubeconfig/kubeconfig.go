package kubeconfig

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Insecure lists what a kubeconfig may use beyond inline credentials. The
// zero value allows nothing more.
type Insecure struct {
	// Exec allows user exec and auth-provider: programs and plugins the
	// kubeconfig's author chooses, run inside the router.
	Exec bool
	// TLS allows cluster insecure-skip-tls-verify.
	TLS bool
}

// ErrInvalid wraps the errors of a kubeconfig that cannot be used at all
// (unparsable, or its current context incomplete).
var ErrInvalid = errors.New("not usable")

// Field is one refused field.
type Field struct {
	// Path says where it is: `user "ci": tokenFile`.
	Path string
	// Why it is refused and what to use instead.
	Why string
}

// RefusedError is returned for a kubeconfig whose current context uses
// fields the router refuses. It names them, never their values.
type RefusedError struct {
	Fields []Field
}

func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Path + " (" + f.Why + ")"
	}
	return "refused: " + strings.Join(parts, ", ")
}

// Check parses raw and checks the cluster and user of its current context.
// It returns a *RefusedError for refused fields, an error wrapping
// ErrInvalid for an unusable kubeconfig, or nil. It reads no file and
// connects nowhere.
func Check(raw []byte, allow Insecure) error {
	_, err := load(raw, allow)
	return err
}

// RESTConfig checks raw as Check does and builds a rest.Config from a new
// kubeconfig holding only the checked fields of the current context's
// cluster and user, so nothing unchecked reaches client-go.
func RESTConfig(raw []byte, allow Insecure) (*rest.Config, error) {
	cfg, err := load(raw, allow)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		// client-go's message can quote values (a proxy URL with a password).
		return nil, fmt.Errorf("%w: client-go cannot use its current context", ErrInvalid)
	}
	return rc, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// load parses raw, checks its current context and returns a kubeconfig
// with copies of the checked fields only.
func load(raw []byte, allow Insecure) (*clientcmdapi.Config, error) {
	in, err := clientcmd.Load(raw)
	if err != nil {
		// The parser's message can quote the kubeconfig.
		return nil, invalid("it does not parse")
	}
	name := in.CurrentContext
	if name == "" {
		return nil, invalid("it has no current-context")
	}
	ctx := in.Contexts[name]
	if ctx == nil {
		return nil, invalid("current-context %q names no context", name)
	}
	cluster := in.Clusters[ctx.Cluster]
	if cluster == nil {
		return nil, invalid("context %q names no cluster", name)
	}
	if cluster.Server == "" {
		return nil, invalid("cluster %q has no server", ctx.Cluster)
	}
	user := &clientcmdapi.AuthInfo{} // no user: anonymous
	if ctx.AuthInfo != "" {
		if user = in.AuthInfos[ctx.AuthInfo]; user == nil {
			return nil, invalid("context %q names no user", name)
		}
	}
	refused := append(checkCluster(ctx.Cluster, cluster, allow), checkUser(ctx.AuthInfo, user, allow)...)
	if len(refused) > 0 {
		return nil, &RefusedError{Fields: refused}
	}
	out := clientcmdapi.NewConfig()
	out.Clusters["cluster"] = copyCluster(cluster, allow)
	out.AuthInfos["user"] = copyUser(user, allow)
	out.Contexts["context"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "user"}
	out.CurrentContext = "context"
	return out, nil
}

const (
	execFlag   = "; allowed only when the router runs with --insecure-kubeconfig-exec"
	fileOnHost = "names a file on the router's host"
)

func checkCluster(name string, c *clientcmdapi.Cluster, allow Insecure) []Field {
	var out []Field
	at := fmt.Sprintf("cluster %q: ", name)
	if c.CertificateAuthority != "" {
		out = append(out, Field{at + "certificate-authority", fileOnHost + "; use certificate-authority-data"})
	}
	if c.InsecureSkipTLSVerify && !allow.TLS {
		out = append(out, Field{at + "insecure-skip-tls-verify", "sends the credentials to any server that answers; " +
			"use certificate-authority-data, or run the router with --insecure-kubeconfig-tls"})
	}
	return out
}

func checkUser(name string, u *clientcmdapi.AuthInfo, allow Insecure) []Field {
	var out []Field
	at := fmt.Sprintf("user %q: ", name)
	if u.Exec != nil && !allow.Exec {
		out = append(out, Field{at + "exec", "runs a program in the router" + execFlag})
	}
	if u.AuthProvider != nil && !allow.Exec {
		out = append(out, Field{at + "auth-provider", "runs an auth plugin in the router" + execFlag})
	}
	if u.TokenFile != "" {
		out = append(out, Field{at + "tokenFile", fileOnHost + "; use token"})
	}
	if u.ClientCertificate != "" {
		out = append(out, Field{at + "client-certificate", fileOnHost + "; use client-certificate-data"})
	}
	if u.ClientKey != "" {
		out = append(out, Field{at + "client-key", fileOnHost + "; use client-key-data"})
	}
	return out
}

// execExtension is the cluster extension client-go hands to an exec
// plugin that asks for cluster information.
const execExtension = "client.authentication.k8s.io/exec"

// copyCluster copies the fields of c that carry their value inline.
func copyCluster(c *clientcmdapi.Cluster, allow Insecure) *clientcmdapi.Cluster {
	out := &clientcmdapi.Cluster{
		Server:                   c.Server,
		TLSServerName:            c.TLSServerName,
		InsecureSkipTLSVerify:    c.InsecureSkipTLSVerify && allow.TLS,
		CertificateAuthorityData: append([]byte(nil), c.CertificateAuthorityData...),
		ProxyURL:                 c.ProxyURL,
		DisableCompression:       c.DisableCompression,
	}
	if ext := c.Extensions[execExtension]; ext != nil && allow.Exec {
		out.Extensions = map[string]runtime.Object{execExtension: ext.DeepCopyObject()}
	}
	return out
}

// copyUser copies the fields of u that carry their value inline, and exec
// and auth-provider when allowed.
func copyUser(u *clientcmdapi.AuthInfo, allow Insecure) *clientcmdapi.AuthInfo {
	v := u.DeepCopy()
	out := &clientcmdapi.AuthInfo{
		ClientCertificateData: v.ClientCertificateData,
		ClientKeyData:         v.ClientKeyData,
		Token:                 v.Token,
		Impersonate:           v.Impersonate,
		ImpersonateUID:        v.ImpersonateUID,
		ImpersonateGroups:     v.ImpersonateGroups,
		ImpersonateUserExtra:  v.ImpersonateUserExtra,
		Username:              v.Username,
		Password:              v.Password,
	}
	if allow.Exec {
		out.Exec, out.AuthProvider = v.Exec, v.AuthProvider
	}
	return out
}
