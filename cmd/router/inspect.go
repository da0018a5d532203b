package main

import (
	"context"
	"errors"
	"flag"
	"io"

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

func stateLs(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("state ls", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the platform cluster; empty means in-cluster or $KUBECONFIG")
	only := fs.String("destination", "", "list only this destination")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := platformClient(*kubeconfig)
	if err != nil {
		return err
	}
	return inspect.State(ctx, c, *only, out)
}

func place(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("place", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the platform cluster; empty means in-cluster or $KUBECONFIG")
	file := fs.String("f", "", "file with the request (YAML)")
	dryRun := fs.Bool("dry-run", false, "required: place only previews, it never writes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*dryRun || *file == "" {
		return errors.New("usage: router place --dry-run -f request.yaml")
	}
	c, err := platformClient(*kubeconfig)
	if err != nil {
		return err
	}
	return inspect.Place(ctx, c, *file, out)
}
