package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
)

// fluxManifests prints the Flux objects to apply on a destination cluster.
func fluxManifests(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("flux-manifests", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the platform cluster; empty means in-cluster or $KUBECONFIG")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: router flux-manifests [--kubeconfig F] <destination>")
	}
	c, err := platformClient(*kubeconfig)
	if err != nil {
		return err
	}
	var d v1alpha1.Destination
	if err := c.Get(ctx, types.NamespacedName{Name: fs.Arg(0)}, &d); err != nil {
		return fmt.Errorf("reading destination: %w", err)
	}
	st, err := destinations.GetStore(ctx, c, d.Spec.StateStoreRef)
	if err != nil {
		return fmt.Errorf("reading the destination's state store: %w", err)
	}
	return writeFlux(out, &d, st)
}

func writeFlux(out io.Writer, d *v1alpha1.Destination, st destinations.StoreObject) error {
	fmt.Fprintf(out, "# Flux objects for destination %s: apply them on its cluster.\n", d.Name)
	switch {
	case st.Git != nil && st.Git.Spec.SecretRef != nil:
		fmt.Fprintf(out, "# The GitRepository reads credentials from Secret %s/%s, which you create there\n", d.FluxNamespace(), destinations.SourceSecretName(d))
		fmt.Fprintf(out, "# (keys username and password, or identity and known_hosts for ssh).\n")
	case st.Bucket != nil && st.Bucket.Spec.AuthMethod != v1alpha1.IAMAuthMethod:
		fmt.Fprintf(out, "# The Bucket reads credentials from Secret %s/%s, which you create there\n", d.FluxNamespace(), destinations.SourceSecretName(d))
		fmt.Fprintf(out, "# (keys accesskey and secretkey).\n")
	}
	for _, obj := range destinations.Flux(d, st).List() {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "---\n%s", b)
	}
	return nil
}
