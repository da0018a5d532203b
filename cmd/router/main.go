// Command router is the Switchyard request router. Its commands follow
// kubectl's conventions (cobra): `router help`, `router <command> --help`
// with examples, flags before or after arguments, `router completion
// bash`, and `router version`.
//
//	router run [flags]                           run the manager against a cluster
//	router flux-manifests <destination>          print the Flux objects for a destination
//	router state ls [--destination D]            list the requests in the state store
//	router place --dry-run -f request.yaml       show where a request would go, and its manifests
//	router rbac <promise> | -f promise.yaml      print the RBAC that lets the router serve a Promise's kind
//	router version                               print the version, commit and API versions
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	os.Exit(execute(ctrl.SetupSignalHandler(), os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command line args and returns the process's exit code:
// 0 on success (help included), 1 on any error, printed to errOut with a
// pointer to the command's help when the command line itself was wrong.
func execute(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(errOut, "Error:", err)
	var u usageError
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "required flag") {
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return 1
}

// globals are the flags every command shares.
type globals struct {
	kubeconfig string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "router",
		Short: "Switchyard: routes requests for Promises to the clusters that serve them",
		Long: `router runs Switchyard's request router, and inspects what it placed and wrote.

Most commands read the platform cluster named by --kubeconfig (empty: in-cluster,
or $KUBECONFIG, or ~/.kube/config, as kubectl does).`,
		SilenceErrors: true, // execute prints them, once
		SilenceUsage:  true, // a failing command is not a usage mistake
	}
	root.PersistentFlags().StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig of the platform cluster; empty means in-cluster or $KUBECONFIG")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunCmd(g), newFluxManifestsCmd(g), newStateCmd(g), newPlaceCmd(g), newRBACCmd(g), newVersionCmd(), newPipelineCmd(g))
	return root
}

// usageError is a mistake in the command line: execute points to --help.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// args wraps a cobra argument check so that its error is a usageError.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
