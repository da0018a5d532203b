//go:build tools

// Package tools pins the Flux controllers that the end-to-end test and the
// local demo run as processes against the destination API server.
package tools

import (
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
