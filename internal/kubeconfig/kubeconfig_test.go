package kubeconfig

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// config is a kubeconfig with one context, "dest", using cluster "c" and
// user "u"; mutate adjusts it before it is written out.
func config(t *testing.T, mutate func(*clientcmdapi.Config, *clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	c := &clientcmdapi.Cluster{Server: "https://dest.example.com:6443", CertificateAuthorityData: []byte("ca-data")}
	u := &clientcmdapi.AuthInfo{Token: "inline-token"}
	cfg.Clusters["c"], cfg.AuthInfos["u"] = c, u
	cfg.Contexts["dest"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "dest"
	if mutate != nil {
		mutate(cfg, c, u)
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type edit = func(*clientcmdapi.Config, *clientcmdapi.Cluster, *clientcmdapi.AuthInfo)

func TestCheck(t *testing.T) {
	exec := &clientcmdapi.ExecConfig{Command: "/usr/bin/cloud-login", Args: []string{"token"},
		APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
	secret := "/var/run/secrets/kubernetes.io/serviceaccount/token"
	all := Insecure{Exec: true, TLS: true}
	tests := []struct {
		name  string
		edit  edit
		allow Insecure
		// refused lists the fields the error must name, in order; nil
		// means accepted. invalid means refused as not a usable kubeconfig.
		refused []string
		invalid bool
	}{
		{name: "inline token and CA"},
		{name: "client certificate inline", edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{ClientCertificateData: []byte("cert"), ClientKeyData: []byte("key")}
		}},
		{name: "basic auth", edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{Username: "admin", Password: "pw"}
		}},
		{name: "impersonation", edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Impersonate, u.ImpersonateGroups = "flux-reader", []string{"readers"}
		}},
		{name: "proxy and server name", edit: func(_ *clientcmdapi.Config, c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.ProxyURL, c.TLSServerName = "http://proxy.example.com:3128", "api.internal"
		}},
		{name: "anonymous over http", edit: func(cfg *clientcmdapi.Config, c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.Server, c.CertificateAuthorityData = "http://127.0.0.1:8080", nil
			cfg.Contexts["dest"].AuthInfo = ""
		}},
		{name: "exec", edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{Exec: exec}
		}, refused: []string{`user "u": exec`}},
		{name: "exec allowed", allow: Insecure{Exec: true}, edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{Exec: exec}
		}},
		{name: "exec not allowed by tls", allow: Insecure{TLS: true}, edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{Exec: exec}
		}, refused: []string{`user "u": exec`}},
		{name: "auth-provider", edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc"}}
		}, refused: []string{`user "u": auth-provider`}},
		{name: "auth-provider allowed", allow: Insecure{Exec: true}, edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc"}}
		}},
		{name: "tokenFile", allow: all, edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{TokenFile: secret}
		}, refused: []string{`user "u": tokenFile`}},
		{name: "tokenFile beside a token", allow: all, edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.TokenFile = secret // client-go re-reads it to refresh the token
		}, refused: []string{`user "u": tokenFile`}},
		{name: "client certificate files", allow: all, edit: func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			*u = clientcmdapi.AuthInfo{ClientCertificate: "/etc/router/tls.crt", ClientKey: "/etc/router/tls.key"}
		}, refused: []string{`user "u": client-certificate`, `user "u": client-key`}},
		{name: "CA file", allow: all, edit: func(_ *clientcmdapi.Config, c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.CertificateAuthority = nil, "/etc/ssl/ca.crt"
		}, refused: []string{`cluster "c": certificate-authority`}},
		{name: "insecure TLS", edit: func(_ *clientcmdapi.Config, c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
		}, refused: []string{`cluster "c": insecure-skip-tls-verify`}},
		{name: "insecure TLS allowed", allow: Insecure{TLS: true}, edit: func(_ *clientcmdapi.Config, c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
		}},
		{name: "the finding: tokenFile to an unverified server", edit: func(_ *clientcmdapi.Config, c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
			*u = clientcmdapi.AuthInfo{TokenFile: secret}
		}, refused: []string{`cluster "c": insecure-skip-tls-verify`, `user "u": tokenFile`}},
		{name: "unused entries are ignored", edit: func(cfg *clientcmdapi.Config, _ *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			cfg.AuthInfos["other"] = &clientcmdapi.AuthInfo{Exec: exec, TokenFile: secret}
			cfg.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://x", CertificateAuthority: "/etc/ca"}
			cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "other"}
		}},
		{name: "no current-context", invalid: true, edit: func(cfg *clientcmdapi.Config, _ *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			cfg.CurrentContext = ""
		}},
		{name: "current-context undefined", invalid: true, edit: func(cfg *clientcmdapi.Config, _ *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			cfg.CurrentContext = "elsewhere"
		}},
		{name: "cluster undefined", invalid: true, edit: func(cfg *clientcmdapi.Config, _ *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			delete(cfg.Clusters, "c")
		}},
		{name: "user undefined", invalid: true, edit: func(cfg *clientcmdapi.Config, _ *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			delete(cfg.AuthInfos, "u")
		}},
		{name: "no server", invalid: true, edit: func(_ *clientcmdapi.Config, c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) {
			c.Server = ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := config(t, tt.edit)
			err := Check(raw, tt.allow)
			var refused *RefusedError
			switch {
			case tt.invalid:
				if err == nil || errors.As(err, &refused) {
					t.Fatalf("got %v, want an invalid kubeconfig", err)
				}
			case tt.refused == nil:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			default:
				if !errors.As(err, &refused) {
					t.Fatalf("got %v, want *RefusedError", err)
				}
				var got []string
				for _, f := range refused.Fields {
					got = append(got, f.Path)
				}
				if strings.Join(got, "; ") != strings.Join(tt.refused, "; ") {
					t.Fatalf("refused %q, want %q", got, tt.refused)
				}
				// Fields are named, values never shown.
				for _, value := range []string{secret, "/usr/bin/cloud-login", "/etc/router/tls", "/etc/ssl/ca.crt", "oidc", "inline-token"} {
					if strings.Contains(err.Error(), value) {
						t.Fatalf("the error shows the value %q: %v", value, err)
					}
				}
			}
			if _, rerr := RESTConfig(raw, tt.allow); (rerr == nil) != (err == nil) {
				t.Fatalf("Check says %v but RESTConfig says %v", err, rerr)
			}
		})
	}
}

// An unparsable kubeconfig is reported without quoting it.
func TestCheckDoesNotQuoteGarbage(t *testing.T) {
	err := Check([]byte("apiVersion: v1\nkind: Config\nusers: secret-token-4e2a\n"), Insecure{})
	if err == nil || strings.Contains(err.Error(), "secret-token-4e2a") {
		t.Fatalf("got %v", err)
	}
}

// RESTConfig uses the current context's cluster and user only, and only
// their checked fields.
func TestRESTConfig(t *testing.T) {
	raw := config(t, func(cfg *clientcmdapi.Config, c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		c.TLSServerName = "api.internal"
		u.Impersonate = "flux-reader"
		cfg.AuthInfos["other"] = &clientcmdapi.AuthInfo{Token: "other-token"}
		cfg.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://other.example.com"}
		cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "other"}
	})
	cfg, err := RESTConfig(raw, Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://dest.example.com:6443" || cfg.BearerToken != "inline-token" || cfg.BearerTokenFile != "" ||
		string(cfg.CAData) != "ca-data" || cfg.CAFile != "" || cfg.ServerName != "api.internal" ||
		cfg.Impersonate.UserName != "flux-reader" || cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.Insecure {
		t.Fatalf("unexpected config: %+v", cfg)
	}

	raw = config(t, func(_ *clientcmdapi.Config, _ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		*u = clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "cloud-login",
			APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}}
	})
	if cfg, err = RESTConfig(raw, Insecure{Exec: true}); err != nil {
		t.Fatal(err)
	}
	if cfg.ExecProvider == nil || cfg.ExecProvider.Command != "cloud-login" {
		t.Fatalf("exec not passed on when allowed: %+v", cfg.ExecProvider)
	}
}
