package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/controller"
	"github.com/switchyard-dev/switchyard/internal/router"
)

// rbac prints the ClusterRole and ClusterRoleBinding that let the router
// serve one Promise's request kind, read from a file or from the cluster.
func rbac(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rbac", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the platform cluster; empty means in-cluster or $KUBECONFIG")
	file := fs.String("f", "", "read the Promise from this file instead of the cluster")
	namespace := fs.String("namespace", router.DefaultNamespace, "namespace of the router's ServiceAccount")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var p v1alpha1.Promise
	switch {
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	case fs.NArg() == 1:
		c, err := platformClient(*kubeconfig)
		if err != nil {
			return err
		}
		if err := c.Get(ctx, types.NamespacedName{Name: fs.Arg(0)}, &p); err != nil {
			return err
		}
	default:
		return errors.New("usage: router rbac <promise> | router rbac -f promise.yaml")
	}
	return writeRBAC(&p, *namespace, out)
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
