package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/internal/router"
	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// The pipeline commands are the router's own steps of a workflow Job
// (internal/workflow): they run inside the Job, as its ServiceAccount.
func newPipelineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Steps of a workflow Job: read the object in, hand the output over",
		Long: `The router runs these as the first and the last container of each workflow Job;
they are not meant to be run by hand. Both read the Kratix contract's KRATIX_*
environment variables.`,
		Hidden: true,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "read",
		Short: "Write the object the workflow runs for to " + workflow.InputDir + "/" + workflow.ObjectFile,
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return terminate(readObject(cmd.Context(), g))
		},
	}, &cobra.Command{
		Use:   "write",
		Short: "Hand " + workflow.OutputDir + " and " + workflow.MetadataDir + " over in a WorkflowOutput owned by the Job",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return terminate(writeOutput(cmd.Context(), g))
		},
	})
	return cmd
}

// terminationLog is where the kubelet reads a container's termination
// message, which the router reports on the request.
const terminationLog = "/dev/termination-log"

// terminate writes err, if any, to the termination log too.
func terminate(err error) error {
	if err != nil {
		_ = os.WriteFile(terminationLog, []byte(err.Error()), 0o644) // best effort: the log may be absent
	}
	return err
}

func readObject(ctx context.Context, g *globals) error {
	cfg, err := restConfig(g.kubeconfig)
	if err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Group: os.Getenv("KRATIX_OBJECT_GROUP"), Version: os.Getenv("KRATIX_OBJECT_VERSION"), Resource: os.Getenv("KRATIX_CRD_PLURAL")}
	name, ns := os.Getenv("KRATIX_OBJECT_NAME"), os.Getenv("KRATIX_OBJECT_NAMESPACE")
	if gvr.Version == "" || gvr.Resource == "" || name == "" {
		return errors.New("pipeline read needs KRATIX_OBJECT_VERSION, KRATIX_CRD_PLURAL and KRATIX_OBJECT_NAME")
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var r dynamic.ResourceInterface = dc.Resource(gvr)
	if cluster, _ := strconv.ParseBool(os.Getenv("KRATIX_CLUSTER_SCOPED")); !cluster {
		r = dc.Resource(gvr).Namespace(ns)
	}
	obj, err := r.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading %s %s/%s: %w", gvr.GroupResource(), ns, name, err)
	}
	obj.SetManagedFields(nil)
	b, err := yaml.Marshal(obj.Object)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(workflow.InputDir, workflow.ObjectFile), b, 0o644)
}

func writeOutput(ctx context.Context, g *globals) error {
	job, uid, ns := os.Getenv(workflow.EnvJobName), os.Getenv(workflow.EnvJobUID), os.Getenv(workflow.EnvJobNamespace)
	if job == "" || uid == "" || ns == "" {
		return fmt.Errorf("pipeline write needs %s, %s and %s", workflow.EnvJobName, workflow.EnvJobUID, workflow.EnvJobNamespace)
	}
	packed, err := workflow.Pack(workflow.OutputDir, workflow.MetadataDir)
	if err != nil {
		return fmt.Errorf("handing the output over: %w", err)
	}
	cfg, err := restConfig(g.kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: router.Scheme()})
	if err != nil {
		return err
	}
	out := &v1alpha1.WorkflowOutput{
		ObjectMeta: metav1.ObjectMeta{
			Name: job, Namespace: ns,
			Labels:          map[string]string{workflow.ManagedByLabel: workflow.ManagedBy, workflow.OutputLabel: uid},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job, UID: types.UID(uid), Controller: ptr.To(true)}},
		},
		Job:  v1alpha1.WorkflowJob{Name: job, UID: uid},
		Data: packed,
	}
	err = c.Create(ctx, out)
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("WorkflowOutput %s/%s exists already: a Job's output is handed over once", ns, job)
	}
	if err != nil {
		return fmt.Errorf("handing the output over in WorkflowOutput %s/%s: %w", ns, job, err)
	}
	fmt.Printf("handed %d bytes of output over in WorkflowOutput %s/%s\n", len(packed), ns, job)
	return nil
}
