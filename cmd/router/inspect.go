package main

import (
	"errors"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/switchyard-dev/switchyard/internal/inspect"
	"github.com/switchyard-dev/switchyard/internal/router"
)

// platformClient connects to the platform cluster.
func platformClient(kubeconfig string) (client.Client, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: router.Scheme()})
}

func newStateCmd(g *globals) *cobra.Command {
	state := &cobra.Command{
		Use:   "state",
		Short: "Inspect the state stores",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var only string
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the requests each destination's directory holds, with the commit that last changed each",
		Long: `List, per destination, the requests its directory holds in the state store, with the
commit that last changed each and its age. It reads each store (a clone into a
temporary directory, or a bucket listing) with the credentials its Secret holds.`,
		Example: `  router state ls --kubeconfig /tmp/switchyard-demo/platform.kubeconfig
  router state ls --destination localstack-eu`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := platformClient(g.kubeconfig)
			if err != nil {
				return err
			}
			return inspect.State(cmd.Context(), c, only, cmd.OutOrStdout())
		},
	}
	ls.Flags().StringVar(&only, "destination", "", "list only this destination")
	state.AddCommand(ls)
	return state
}

func newPlaceCmd(g *globals) *cobra.Command {
	var file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "place --dry-run -f FILE",
		Short: "Show where a request would go, why, and the manifests that would be written",
		Long: `Show where each request in a file would go, why, and the manifests that would be
written, without writing anything. --dry-run is required: place only previews.

Each request first goes through the API server's own defaulting and validation
(a server-side dry-run), so the preview shows the CRD's defaults, and a request the
API server would refuse is reported as refused. Objects that are not requests (the
file's Namespaces, say) are skipped with a line saying so.`,
		Example: `  router place --dry-run -f config/samples/requests.yaml
  router place -f request.yaml --dry-run --kubeconfig /tmp/switchyard-demo/platform.kubeconfig`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				return usageError{errors.New("--dry-run is required: place only previews, it never writes")}
			}
			c, err := platformClient(g.kubeconfig)
			if err != nil {
				return err
			}
			return inspect.Place(cmd.Context(), c, file, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file with the request (YAML)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "required: place only previews, it never writes")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}
