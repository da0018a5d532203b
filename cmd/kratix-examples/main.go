// Command kratix-examples is the pipeline image of the example Kratix
// Promises in config/promises/kratix-examples. Each subcommand is one
// pipeline step, run as a container with Kratix's contract (input in
// /kratix/input/object.yaml, manifests to /kratix/output, metadata to
// /kratix/metadata):
//
//	namespace     a Namespace named after the request (spec.name, else metadata.name);
//	              destination selector {tier: <spec.tier>} when the request sets one
//	configmap     a ConfigMap <name> holding the request's spec as data
//	labels        a ConfigMap <name>-labels labelled with the request's labels, for a second pipeline
//	deployment    a Deployment <name> of one replica of spec.image (default nginx)
//	dependencies  (a promise workflow) the Namespace <promise>-deps and a ConfigMap in it
//	scripted      for tests: fails (spec.failOn: configure|delete, spec.failMessage), asks for a
//	              retry until spec.retryUntil, adds spec.outputBytes random bytes, writes a
//	              ConfigMap <name>-scripted of spec.data
//
// Each writes status.yaml with a message. With KRATIX_WORKFLOW_ACTION=delete
// they write nothing. On an error the program exits 1 with the error on
// stderr and in /dev/termination-log.
package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/pipelinekit"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// execute runs the command line and returns the exit code (see
// pipelinekit.Execute).
func execute(args []string, getenv func(string) string, out, errOut io.Writer) int {
	return pipelinekit.Execute(newRootCmd, args, getenv, out, errOut)
}

func newRootCmd(paths *pipelinekit.Paths, env pipelinekit.Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "kratix-examples",
		Short: "Pipeline steps of Switchyard's example Kratix Promises",
		Long: `kratix-examples runs one step of an example Kratix Promise's pipeline: it reads
the object from the pipeline input and writes manifests and metadata.

Each path defaults to the Kratix contract's, or to its environment variable
(PIPELINE_INPUT, PIPELINE_OUTPUT_DIR, PIPELINE_METADATA_DIR,
PIPELINE_TERMINATION_LOG) when set.`,
		SilenceErrors: true, // execute reports them, once
		SilenceUsage:  true, // a bad object is not a usage mistake
		Args:          cobra.NoArgs,
		// Without a step a container would succeed having written
		// nothing, and its pipeline would look done.
		RunE: func(*cobra.Command, []string) error {
			return errors.New("name a step: " + stepNames())
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true // nobody types at a pipeline container
	f := root.PersistentFlags()
	f.StringVar(&paths.Input, "input", paths.Input, "the object to read")
	f.StringVar(&paths.OutputDir, "output-dir", paths.OutputDir, "where to write manifests")
	f.StringVar(&paths.MetadataDir, "metadata-dir", paths.MetadataDir, "where to write status.yaml and destination-selectors.yaml")
	f.StringVar(&paths.TerminationLog, "termination-log", paths.TerminationLog, "where to write the error on failure")
	for _, s := range steps {
		root.AddCommand(s.command(paths, env))
	}
	return root
}

func stepNames() string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// command is the subcommand that runs s.
func (s step) command(paths *pipelinekit.Paths, env pipelinekit.Env) *cobra.Command {
	return &cobra.Command{
		Use:   s.name,
		Short: s.short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return s.run(env, *paths)
		},
	}
}

// run checks the run, reads the object, and writes what the step makes
// of it. On delete there is nothing to write: the router removes what the
// configure run wrote.
func (s step) run(env pipelinekit.Env, paths pipelinekit.Paths) error {
	if err := env.CheckType(s.workflow); err != nil {
		return err
	}
	configure, err := env.CheckAction()
	if err != nil {
		return err
	}
	if !configure {
		return s.delete(paths)
	}
	obj, err := pipelinekit.ReadObject(paths.Input)
	if err != nil {
		return err
	}
	r, err := s.make(obj)
	if err != nil {
		return err
	}
	return r.write(paths)
}

// delete runs a step on delete: only the scripted step does anything
// (fail when asked); the router removes what the configure run wrote.
func (s step) delete(paths pipelinekit.Paths) error {
	if s.name != "scripted" {
		return nil
	}
	obj, err := pipelinekit.ReadObject(paths.Input)
	if err != nil {
		return err
	}
	return scriptedFailure(obj, pipelinekit.ActionDelete)
}

// write puts a step's result in the output and metadata directories.
func (r result) write(paths pipelinekit.Paths) error {
	if err := pipelinekit.WriteManifests(paths.OutputDir, r.file, r.objects...); err != nil {
		return err
	}
	if len(r.selector) > 0 {
		if err := pipelinekit.WriteDestinationSelectors(paths.MetadataDir, pipelinekit.Selector{MatchLabels: r.selector}); err != nil {
			return err
		}
	}
	for name, b := range r.extra {
		if err := os.WriteFile(filepath.Join(paths.OutputDir, name), b, 0o644); err != nil {
			return err
		}
	}
	if r.control != nil {
		if err := pipelinekit.WriteManifests(paths.MetadataDir, pipelinekit.ControlFile, r.control); err != nil {
			return err
		}
	}
	return pipelinekit.WriteStatus(paths.MetadataDir, r.status)
}
