package gitstate

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// BasicAuth is HTTP(S) basic auth. It returns nil (no auth) when both are
// empty.
func BasicAuth(username, password string) transport.AuthMethod {
	if username == "" && password == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: username, Password: password}
}

// SSHAuth is public-key auth whose host keys are checked against
// knownHosts (OpenSSH known_hosts format). There is no way to skip the
// check. The known_hosts content is written to dir, since the SSH library
// reads it from a file; it holds public keys only.
func SSHAuth(repoURL string, privateKey, knownHosts []byte, dir string) (transport.AuthMethod, error) {
	if len(knownHosts) == 0 {
		return nil, fmt.Errorf("knownHosts is empty: host keys are always verified")
	}
	user := "git"
	if u, err := url.Parse(repoURL); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	auth, err := gitssh.NewPublicKeys(user, privateKey, "")
	if err != nil {
		// The parse error names no key material.
		return nil, fmt.Errorf("parsing sshPrivateKey: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(file, knownHosts, 0o600); err != nil {
		return nil, err
	}
	cb, err := gitssh.NewKnownHostsCallback(file)
	if err != nil {
		return nil, fmt.Errorf("parsing knownHosts: %w", err)
	}
	auth.HostKeyCallback = cb
	return auth, nil
}
