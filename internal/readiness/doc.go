// Package readiness computes a request's status.outputs and readiness from
// the objects it rendered, as the destination reports them. It is pure:
// objects in, result out; package feedback reads the objects and package
// controller writes the result.
//
// # Expressions
//
// A Promise's spec.status holds CEL expressions in ${...}. Compile checks
// them once per Promise generation, against one variable per resource
// template (the object it renders, of type dyn: the router has no schema
// of the destination's kinds when the Promise is applied). Evaluate runs
// them per request, with the API server's cost limits.
//
// # kstatus
//
// Without readyWhen, each object's readiness is kstatus's
// (sigs.k8s.io/cli-utils/pkg/kstatus), what Flux's health checks use.
package readiness
