// Package workflow runs Promise workflows with Kratix's pipeline contract:
// each Pipeline of a workflow runs as a Job on the platform cluster, whose
// first init container (the router's own "pipeline read") writes the object
// to /kratix/input/object.yaml, whose next init containers are the
// Pipeline's, and whose last container (the router's "pipeline write")
// hands /kratix/output and /kratix/metadata over in a WorkflowOutput owned by
// the Job.
//
// The package builds those Jobs (Job), the ServiceAccount and RBAC each
// Pipeline runs with (Access), packs and unpacks the output (Pack, Unpack)
// and decides, from the Jobs that exist, what a workflow does next (Next).
// It talks to no API server: the controllers do.
package workflow
