package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCommandLine runs the command line as a user types it, without a
// cluster: help exits 0 wherever it is asked for, flags are read after
// arguments too, and a mistake names itself and points to --help.
func TestCommandLine(t *testing.T) {
	const promise = "../../config/promises/dynamodb/promise.yaml"
	for _, tc := range []struct {
		args     []string
		code     int
		out, err []string // substrings of stdout, stderr
		notOut   []string
	}{
		{args: nil, out: []string{"Available Commands:", "flux-manifests", "place", "rbac", "run", "state", "version", "completion"}},
		{args: []string{"help"}, out: []string{"Available Commands:"}},
		{args: []string{"--help"}, out: []string{"Available Commands:"}},
		{args: []string{"-h"}, out: []string{"Available Commands:"}},
		{args: []string{"help", "place"}, out: []string{"router place --dry-run -f FILE", "Examples:"}},
		{args: []string{"run", "--help"}, out: []string{"Examples:", "--leader-elect", "--kubeconfig"}},
		{args: []string{"flux-manifests", "--help"}, out: []string{"Examples:", "router flux-manifests localstack-eu"}},
		{args: []string{"state", "ls", "-h"}, out: []string{"Examples:", "--destination"}},
		{args: []string{"place", "--help"}, out: []string{"Examples:", "--dry-run"}},
		{args: []string{"rbac", "--help"}, out: []string{"Examples:", "router rbac dynamodb"}},
		{args: []string{"version", "--help"}, out: []string{"Examples:"}},
		{args: []string{"version"}, out: []string{"version: ", "commit: ", "switchyard.dev/v1alpha1 (BucketStateStore, Destination, GitStateStore, Promise, WorkflowOutput)"}},
		{args: []string{"completion", "bash"}, out: []string{"bash completion", "__router_"}},

		// Flags before and after arguments: the kubeconfig is read (and is
		// missing) instead of a usage message.
		{args: []string{"flux-manifests", "localstack-eu", "--kubeconfig", "/nonexistent/kubeconfig"}, code: 1, err: []string{"/nonexistent/kubeconfig"}, notOut: []string{"Usage:"}},
		{args: []string{"--kubeconfig", "/nonexistent/kubeconfig", "flux-manifests", "localstack-eu"}, code: 1, err: []string{"/nonexistent/kubeconfig"}},
		{args: []string{"state", "ls", "--destination", "d", "--kubeconfig=/nonexistent/kubeconfig"}, code: 1, err: []string{"/nonexistent/kubeconfig"}},
		{args: []string{"rbac", "-f", promise, "--namespace", "elsewhere"}, out: []string{"ServiceAccount elsewhere/switchyard-router", "kind: ClusterRole"}},

		// Mistakes: what is wrong, and where help is.
		{args: []string{"nope"}, code: 1, err: []string{`unknown command "nope" for "router"`, "Run 'router --help' for usage."}},
		{args: []string{"state", "nope"}, code: 1, err: []string{`unknown command "nope" for "router state"`, "Run 'router state --help' for usage."}},
		{args: []string{"run", "--bogus"}, code: 1, err: []string{"unknown flag: --bogus", "Run 'router run --help' for usage."}},
		{args: []string{"flux-manifests"}, code: 1, err: []string{"accepts 1 arg(s), received 0", "Run 'router flux-manifests --help' for usage."}},
		{args: []string{"place", "--dry-run"}, code: 1, err: []string{`required flag(s) "filename" not set`, "Run 'router place --help'"}},
		{args: []string{"place", "-f", "request.yaml"}, code: 1, err: []string{"--dry-run is required", "Run 'router place --help'"}},
		{args: []string{"rbac"}, code: 1, err: []string{"name one Promise, or give -f", "Run 'router rbac --help'"}},
		{args: []string{"rbac", "dynamodb", "-f", promise}, code: 1, err: []string{"not both"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := execute(context.Background(), tc.args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errOut.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.notOut {
				if strings.Contains(out.String(), s) {
					t.Errorf("stdout has %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.err {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
			if tc.code == 0 && errOut.Len() > 0 {
				t.Errorf("stderr on success:\n%s", errOut.String())
			}
		})
	}
}

// TestVersionFromLdflags checks that the values `make build` sets win over
// the build information.
func TestVersionFromLdflags(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v0.9.0", "0123456789ab"
	var out bytes.Buffer
	if code := execute(context.Background(), []string{"version"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, s := range []string{"version: v0.9.0\n", "commit:  0123456789ab\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("lacks %q:\n%s", s, out.String())
		}
	}
}
