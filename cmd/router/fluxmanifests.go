package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/destinations"
)

// newFluxManifestsCmd prints the Flux objects to apply on a destination cluster.
func newFluxManifestsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "flux-manifests DESTINATION",
		Short: "Print the Flux objects to apply on a destination's cluster",
		Long: `Print the Flux objects (a GitRepository or Bucket, and the Kustomizations) that
make a destination's cluster apply its directory of the state store. Apply them
on that cluster.`,
		Example: `  router flux-manifests localstack-eu | kubectl --context destination apply -f -
  router flux-manifests localstack-eu --kubeconfig /tmp/switchyard-demo/platform.kubeconfig`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return fluxManifests(cmd.Context(), g.kubeconfig, a[0], cmd.OutOrStdout())
		},
	}
}

func fluxManifests(ctx context.Context, kubeconfig, name string, out io.Writer) error {
	c, err := platformClient(kubeconfig)
	if err != nil {
		return err
	}
	var d v1alpha1.Destination
	if err := c.Get(ctx, types.NamespacedName{Name: name}, &d); err != nil {
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
