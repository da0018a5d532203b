package gitstate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/switchyard-dev/switchyard/internal/gitstate"
	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// sshServer starts an SSH Git server with one empty repository and returns
// its URL and a known_hosts line for its host key.
func sshServer(t *testing.T) (url, knownHostsLine string) {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	srv.KeyDir(keyDir)
	if err := srv.ListenSSH(); err != nil {
		t.Fatal(err)
	}
	go srv.StartSSH()
	t.Cleanup(func() { srv.StopSSH(); os.RemoveAll(srv.Root()) })
	testenv.Git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", filepath.Join(srv.Root(), "state.git"))

	pemBytes, err := os.ReadFile(filepath.Join(keyDir, "gitkit.rsa"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.SSHAddress(), "ssh://git@")
	return srv.SSHAddress() + "/state.git", knownhosts.Line([]string{knownhosts.Normalize(addr)}, signer.PublicKey())
}

func clientKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestSSHChecksHostKeys(t *testing.T) {
	url, known := sshServer(t)
	key := clientKey(t)

	writeWith := func(knownHosts string) error {
		auth, err := gitstate.SSHAuth(url, key, []byte(knownHosts), t.TempDir())
		if err != nil {
			return err
		}
		w, err := gitstate.Open(gitstate.Config{URL: url, Dir: t.TempDir(), Auth: auth, Retries: 1})
		if err != nil {
			return err
		}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = w.Write(ctx, "ssh", file("d/resources/ns/p/a", "x.yaml", "a"))
		return err
	}
	if err := writeWith(known); err != nil {
		t.Fatalf("write over SSH with the right host key: %v", err)
	}
	// Another server's key in known_hosts: the write must be refused.
	_, other := sshServer(t)
	host, _, _ := strings.Cut(known, " ")
	_, rest, _ := strings.Cut(other, " ")
	err := writeWith(host + " " + rest)
	if err == nil || !strings.Contains(err.Error(), "key mismatch") {
		t.Fatalf("write with a wrong host key: %v", err)
	}
	if _, err := gitstate.SSHAuth(url, key, nil, t.TempDir()); err == nil {
		t.Fatal("empty knownHosts accepted")
	}
}
