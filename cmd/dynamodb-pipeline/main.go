// Command dynamodb-pipeline is the configure pipeline of the Kratix-format
// DynamoDB Promise (config/promises/dynamodb-kratix). Run as a container of
// a Kratix pipeline, it reads a DynamoDBTableRequest from
// /kratix/input/object.yaml and writes:
//
//	/kratix/output/table.yaml                      the ACK Table, the same the template Promise
//	                                               (config/promises/dynamodb) renders for the request
//	/kratix/metadata/destination-selectors.yaml    matchLabels from the request's spec.destinationSelector, if any
//	/kratix/metadata/status.yaml                   tableName, region (when the selector names one), message
//
// With KRATIX_WORKFLOW_ACTION=delete it writes nothing: the router removes
// what the configure run wrote. On an error it exits 1 with the error on
// stderr and in /dev/termination-log.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/switchyard-dev/switchyard/internal/pipelinekit"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// execute runs the command line and returns the exit code (see
// pipelinekit.Execute).
func execute(args []string, getenv func(string) string, out, errOut io.Writer) int {
	return pipelinekit.Execute(newCommand, args, getenv, out, errOut)
}

func newCommand(paths *pipelinekit.Paths, env pipelinekit.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dynamodb-pipeline",
		Short: "Configure pipeline of the Kratix-format DynamoDB Promise: a request in, an ACK Table out",
		Long: `dynamodb-pipeline reads a DynamoDB table request from the Kratix pipeline input and
writes the ACK Table for it, the destination selectors from its
spec.destinationSelector, and a status. On delete it writes nothing.

Each path defaults to the Kratix contract's, or to its environment variable
(PIPELINE_INPUT, PIPELINE_OUTPUT_DIR, PIPELINE_METADATA_DIR,
PIPELINE_TERMINATION_LOG) when set.`,
		Args:          cobra.NoArgs,
		SilenceErrors: true, // execute reports them, once
		SilenceUsage:  true, // a bad request is not a usage mistake
		RunE: func(*cobra.Command, []string) error {
			return run(env, *paths)
		},
	}
	f := cmd.Flags()
	f.StringVar(&paths.Input, "input", paths.Input, "the request to read")
	f.StringVar(&paths.OutputDir, "output-dir", paths.OutputDir, "where to write table.yaml")
	f.StringVar(&paths.MetadataDir, "metadata-dir", paths.MetadataDir, "where to write status.yaml and destination-selectors.yaml")
	f.StringVar(&paths.TerminationLog, "termination-log", paths.TerminationLog, "where to write the error on failure")
	return cmd
}

// run is the pipeline: check the run, read the request, write the Table,
// the selectors and the status.
func run(env pipelinekit.Env, paths pipelinekit.Paths) error {
	if err := env.CheckType(pipelinekit.TypeResource); err != nil {
		return err
	}
	configure, err := env.CheckAction()
	if err != nil || !configure {
		return err
	}
	req, err := pipelinekit.ReadObject(paths.Input)
	if err != nil {
		return err
	}
	t, err := tableFor(req)
	if err != nil {
		return fmt.Errorf("request %s: %w", requestName(req), err)
	}
	selector, err := pipelinekit.NestedStringMap(req, "spec", "destinationSelector")
	if err != nil {
		return fmt.Errorf("request %s: %w", requestName(req), err)
	}
	if err := pipelinekit.WriteManifests(paths.OutputDir, "table.yaml", t); err != nil {
		return err
	}
	if len(selector) > 0 {
		if err := pipelinekit.WriteDestinationSelectors(paths.MetadataDir, pipelinekit.Selector{MatchLabels: selector}); err != nil {
			return err
		}
	}
	return pipelinekit.WriteStatus(paths.MetadataDir, status(t, selector))
}

// status is what the pipeline tells the request's owner. The region is
// known only when the request's selector names one: placement picks the
// destination after the pipeline has run.
func status(t *table, selector map[string]string) map[string]any {
	s := map[string]any{
		"tableName": t.Spec.TableName,
		"message":   fmt.Sprintf("table %s requested", t.Spec.TableName),
	}
	if r := selector["region"]; r != "" {
		s["region"] = r
	}
	return s
}

func requestName(req map[string]any) string {
	return pipelinekit.NestedString(req, "metadata", "namespace") + "/" + pipelinekit.NestedString(req, "metadata", "name")
}
