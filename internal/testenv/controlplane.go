package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/switchyard-dev/switchyard/internal/router"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// assets returns KUBEBUILDER_ASSETS, building the control plane with
// hack/controlplane.sh when it is unset, so a plain `go test` works.
func assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	return script("controlplane.sh")
}

// Kubectl returns the kubectl that hack/controlplane.sh keeps beside the
// control plane, of the same Kubernetes version, for tests that apply
// manifests as a user does.
func Kubectl() (string, error) {
	dir, err := assets()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		// KUBEBUILDER_ASSETS from before kubectl was kept there.
		if dir, err = script("controlplane.sh"); err != nil {
			return "", err
		}
		bin = filepath.Join(dir, "kubectl")
	}
	return bin, nil
}

// ControlPlane is a running kube-apiserver and etcd with Switchyard's CRDs.
type ControlPlane struct {
	env    *envtest.Environment
	Config *rest.Config
}

// StartControlPlane starts a control plane and installs the CRDs in
// crdPaths (files or directories); none means Switchyard's, under
// config/crd/bases.
func StartControlPlane(crdPaths ...string) (*ControlPlane, error) {
	return StartControlPlaneWithFlags(nil, crdPaths...)
}

// StartControlPlaneWithFlags is StartControlPlane with more kube-apiserver
// flags (name without dashes, value), for example runtime-config to leave
// an API out as an older or restricted cluster would.
func StartControlPlaneWithFlags(flags map[string]string, crdPaths ...string) (*ControlPlane, error) {
	dir, err := assets()
	if err != nil {
		return nil, err
	}
	if len(crdPaths) == 0 {
		crdPaths = []string{filepath.Join(RepoRoot(), "config", "crd", "bases")}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: true,
	}
	for name, value := range flags {
		env.ControlPlane.GetAPIServer().Configure().Set(name, value)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane from %s: %w", dir, err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	return &ControlPlane{env: env, Config: cfg}, nil
}

// KubeConfig returns a kubeconfig for an admin user, for processes that
// talk to the control plane (a router under benchmark).
func (c *ControlPlane) KubeConfig() ([]byte, error) {
	return c.UserKubeConfig("admin", "system:masters")
}

// UserKubeConfig returns a kubeconfig for user name in groups, with only
// the rights RBAC gives them.
func (c *ControlPlane) UserKubeConfig(name string, groups ...string) ([]byte, error) {
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, err
	}
	return u.KubeConfig()
}

// Stop stops the control plane.
func (c *ControlPlane) Stop() error { return c.env.Stop() }

// StartTestControlPlane starts a control plane with Switchyard's CRDs for
// one test, stopped when the test ends, and returns it with an admin
// client.
func StartTestControlPlane(t testing.TB) (*ControlPlane, client.Client) {
	t.Helper()
	cp, err := StartControlPlane()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Log(err)
		}
	})
	c, err := client.New(cp.Config, client.Options{Scheme: router.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cp, c
}
