// Package pipelinekit is what a program running as a container of a Kratix
// pipeline needs: where the contract's files are, the object it was run
// for, and how to write manifests, metadata and a failure.
//
// # The contract
//
// A pipeline container reads its object from /kratix/input/object.yaml,
// writes manifests to /kratix/output and may write, in /kratix/metadata,
// destination-selectors.yaml (a list of {matchLabels}), status.yaml (a map
// merged into the object's status) and workflow-control.yaml. The
// environment names the run: KRATIX_WORKFLOW_TYPE (resource or promise),
// KRATIX_WORKFLOW_ACTION (configure or delete), KRATIX_PROMISE_NAME,
// KRATIX_PIPELINE_NAME and KRATIX_OBJECT_*.
//
// # Paths in tests
//
// The containers of one pipeline share /kratix, so a later one sees what
// an earlier one wrote: WriteStatus merges into an existing status.yaml
// and WriteDestinationSelectors appends to an existing selectors file.
// Tests run programs on temporary directories by setting PIPELINE_INPUT,
// PIPELINE_OUTPUT_DIR, PIPELINE_METADATA_DIR and PIPELINE_TERMINATION_LOG
// (or the programs' flags), which default to the contract's paths.
package pipelinekit
