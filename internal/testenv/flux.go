package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FluxDir returns the directory with Flux's controllers and crds/: $FLUX_ASSETS,
// or what hack/flux.sh builds.
func FluxDir() (string, error) {
	if dir := os.Getenv("FLUX_ASSETS"); dir != "" {
		return dir, nil
	}
	return script("flux.sh")
}

// Flux is Flux's source-controller and kustomize-controller running as
// processes against one API server, the way they run in a cluster but
// without one.
type Flux struct {
	Source, Kustomize *Process
}

// FluxOptions tune the controllers.
type FluxOptions struct {
	// RequeueDependency is how soon a Kustomization whose dependency is not
	// ready yet tries again (Flux's default is 30s).
	RequeueDependency time.Duration
}

// StartFlux starts both controllers with the kubeconfig file kubeconfig,
// logging and storing artifacts under dir.
func StartFlux(fluxDir, kubeconfig, dir string, o FluxOptions) (*Flux, error) {
	storage := filepath.Join(dir, "flux-artifacts")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	addrs := make([]string, 5)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	env := []string{"KUBECONFIG=" + kubeconfig}
	common := []string{"--watch-all-namespaces=true", "--enable-leader-election=false", "--log-level=info"}
	src, err := StartProcess(dir, "source-controller", filepath.Join(fluxDir, "source-controller"), env, append(common,
		"--storage-path="+storage, "--storage-addr="+addrs[0], "--storage-adv-addr="+addrs[0],
		"--metrics-addr="+addrs[1], "--health-addr="+addrs[2])...)
	if err != nil {
		return nil, err
	}
	args := append(common, "--metrics-addr="+addrs[3], "--health-addr="+addrs[4])
	if o.RequeueDependency > 0 {
		args = append(args, "--requeue-dependency="+o.RequeueDependency.String())
	}
	kus, err := StartProcess(dir, "kustomize-controller", filepath.Join(fluxDir, "kustomize-controller"), env, args...)
	if err != nil {
		src.Stop()
		return nil, err
	}
	f := &Flux{Source: src, Kustomize: kus}
	for _, c := range []struct {
		p    *Process
		addr string
	}{{src, addrs[2]}, {kus, addrs[4]}} {
		if err := c.p.waitListening(c.addr, time.Minute); err != nil {
			f.Stop()
			return nil, fmt.Errorf("flux: %w", err)
		}
	}
	return f, nil
}

// Stop stops both controllers.
func (f *Flux) Stop() {
	f.Kustomize.Stop()
	f.Source.Stop()
}
