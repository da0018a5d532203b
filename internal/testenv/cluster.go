package testenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cluster is one destination cluster on loopback: an API server with
// Flux's and the ACK stand-in's CRDs, Flux's source- and
// kustomize-controller, and an ACK stand-in talking to a DynamoDB
// endpoint. Several clusters may share one endpoint, as clusters in one
// AWS account and region do.
type Cluster struct {
	Name         string
	ControlPlane *ControlPlane
	// Client talks to the cluster's API server.
	Client client.Client
	// KubeConfig is an admin kubeconfig for it (Flux's).
	KubeConfig []byte
	// FeedbackKubeConfig is the router's: the ServiceAccount of
	// config/destination/feedback-rbac.yaml, with only that Role's rights.
	FeedbackKubeConfig []byte
	Flux               *Flux
	ACK                *ACKStandIn
}

// StartCluster starts cluster name with Flux from fluxDir and an ACK
// stand-in on the DynamoDB endpoint, keeping logs and Flux's artifacts
// under dir. progress, when set, is told about each slow step. On error it
// stops what it started.
func StartCluster(dir, name, fluxDir, endpoint string, o FluxOptions, progress func(string)) (c *Cluster, err error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	started := &Cluster{Name: name}
	c = started
	defer func() {
		if err != nil {
			_ = started.Stop()
		}
	}()
	progress("starting the " + name + " API server with Flux's and the ACK stand-in's CRDs")
	if c.ControlPlane, err = StartControlPlane(filepath.Join(fluxDir, "crds"), ACKTableCRD()); err != nil {
		return nil, err
	}
	if c.KubeConfig, err = c.ControlPlane.KubeConfig(); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, name+".kubeconfig")
	if err := os.WriteFile(kubeconfig, c.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	if c.Client, err = client.New(c.ControlPlane.Config, client.Options{Scheme: destinationScheme()}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ensure(ctx, c.Client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil {
		return nil, err
	}
	if err := CreateFile(ctx, c.Client, filepath.Join(RepoRoot(), "config", "destination", "feedback-rbac.yaml")); err != nil {
		return nil, err
	}
	if c.FeedbackKubeConfig, err = c.ControlPlane.UserKubeConfig("system:serviceaccount:flux-system:switchyard-feedback",
		"system:serviceaccounts", "system:serviceaccounts:flux-system"); err != nil {
		return nil, err
	}
	progress("starting Flux's source-controller and kustomize-controller on " + name)
	if c.Flux, err = StartFlux(fluxDir, kubeconfig, dir, o); err != nil {
		return nil, err
	}
	if c.ACK, err = StartACKStandIn(c.ControlPlane.Config, endpoint); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop stops the stand-in, Flux and the API server.
func (c *Cluster) Stop() error {
	var errs []error
	if c.ACK != nil {
		errs = append(errs, c.ACK.Stop())
	}
	if c.Flux != nil {
		c.Flux.Stop()
	}
	if c.ControlPlane != nil {
		errs = append(errs, c.ControlPlane.Stop())
	}
	return errors.Join(errs...)
}
