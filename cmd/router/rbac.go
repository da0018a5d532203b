package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/router"
)

// newRBACCmd prints the ClusterRole and ClusterRoleBinding that let the
// router serve one Promise's request kind, read from a file or the cluster.
func newRBACCmd(g *globals) *cobra.Command {
	var file, namespace string
	cmd := &cobra.Command{
		Use:   "rbac (PROMISE | -f FILE)",
		Short: "Print the RBAC that lets the router serve a Promise's request kind, and nothing else",
		Long: `Print the ClusterRole and ClusterRoleBinding that let the router's ServiceAccount
serve one Promise's request kind. The Promise is read from the cluster, or with
-f from a file (before it is applied).`,
		Example: `  router rbac dynamodb | kubectl apply -f -
  router rbac -f config/promises/dynamodb/promise.yaml`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (file == "") == (len(a) == 0) {
				return usageError{errors.New("name one Promise, or give -f, not both")}
			}
			var p v1alpha1.Promise
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := yaml.Unmarshal(b, &p); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				return writeRBAC(&p, namespace, cmd.OutOrStdout())
			}
			c, err := platformClient(g.kubeconfig)
			if err != nil {
				return err
			}
			if err := c.Get(cmd.Context(), types.NamespacedName{Name: a[0]}, &p); err != nil {
				return err
			}
			return writeRBAC(&p, namespace, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "read the Promise from this file instead of the cluster")
	cmd.Flags().StringVar(&namespace, "namespace", router.DefaultNamespace, "namespace of the router's ServiceAccount")
	return cmd
}

func writeRBAC(p *v1alpha1.Promise, namespace string, out io.Writer) error {
	role, binding, err := controller.RequestRBAC(p, namespace)
	if err != nil {
		return fmt.Errorf("promise %s: %w", p.Name, err)
	}
	fmt.Fprintf(out, "# Lets the router (ServiceAccount %s/%s) serve the request kind of Promise %s, and nothing else.\n", namespace, controller.RouterServiceAccount, p.Name)
	for _, o := range []any{role, binding} {
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "---\n%s", b)
	}
	return nil
}
