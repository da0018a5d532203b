// Package hack holds the repository's scripts; its test checks them.
package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShellcheck runs shellcheck on every script. It is skipped only when
// shellcheck is missing and SWITCHYARD_REQUIRE_SHELLCHECK is unset (CI
// sets it).
func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("SWITCHYARD_REQUIRE_SHELLCHECK") != "" {
			t.Fatal("shellcheck is not installed")
		}
		t.Skip("shellcheck is not installed")
	}
	scripts, _ := filepath.Glob("*.sh")
	scripts = append(scripts, "../.ci/run")
	cmd := exec.Command("shellcheck", append([]string{"-x", "-P", "SCRIPTDIR"}, scripts...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// TestKindDryRun runs the kind demo's dry run, which prints every step
// without needing Docker or kind, and checks that every file and
// kustomization it applies exists in the repository (the config tests
// validate them against an API server).
func TestKindDryRun(t *testing.T) {
	for _, tt := range []struct {
		store, platform string
	}{
		{"git", "config/kind/platform.yaml"},
		{"bucket", "config/kind/platform-bucket.yaml"},
	} {
		out, err := exec.Command("./kind-two-clusters.sh", "--dry-run", "--store", tt.store).CombinedOutput()
		if err != nil {
			t.Fatalf("dry run --store %s: %v\n%s", tt.store, err, out)
		}
		root, _ := filepath.Abs("..")
		files := regexp.MustCompile(`-[fk] (`+regexp.QuoteMeta(root)+`/\S+)`).FindAllStringSubmatch(string(out), -1)
		if len(files) < 5 || !strings.Contains(string(out), "-f "+filepath.Join(root, tt.platform)) {
			t.Fatalf("dry run --store %s applies %d files, want the manifests and %s:\n%s", tt.store, len(files), tt.platform, out)
		}
		for _, f := range files {
			if _, err := os.Stat(f[1]); err != nil {
				t.Errorf("the script applies %s, which does not exist", f[1])
			}
		}
	}
	if out, err := exec.Command("./kind-two-clusters.sh", "--dry-run", "--store", "nfs").CombinedOutput(); err == nil {
		t.Errorf("--store nfs accepted:\n%s", out)
	}
	down, err := exec.Command("./kind-two-clusters.sh", "--dry-run", "--down").CombinedOutput()
	if err != nil || !strings.Contains(string(down), "kind delete cluster --name platform") {
		t.Errorf("--down dry run: %v\n%s", err, down)
	}
}
