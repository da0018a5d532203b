package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCIInstallsOnlyWhatIsMissing runs .ci/run on machines simulated by
// PATH (stand-ins for git, make, node, npm, go and apt-get that log their
// arguments), so that no system package is touched: it installs only what
// is missing, never Debian's npm next to a Node.js from elsewhere, and
// stops with a clear message when a version is too old.
func TestCIInstallsOnlyWhatIsMissing(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tools   []string // present; apt-get always is
		node    string   // node --version
		gover   string   // go env GOVERSION
		apt     string   // what apt-get install gets ("" for no call)
		fail    string   // in stderr when .ci/run must fail
		makeLog string   // make's arguments and whether shellcheck is required, a line each
	}{
		{name: "node 20 from elsewhere, shellcheck missing", tools: []string{"git", "make", "node", "npm", "go"}, node: "v20.11.1", gover: "go1.26.0",
			apt: "install -y -qq shellcheck", makeLog: "verify\nSWITCHYARD_REQUIRE_SHELLCHECK=1\ntest\nSWITCHYARD_REQUIRE_SHELLCHECK=1\n"},
		{name: "nothing missing", tools: []string{"git", "make", "node", "npm", "go", "shellcheck"}, node: "v22.1.0", gover: "go1.26.2",
			makeLog: "verify\nSWITCHYARD_REQUIRE_SHELLCHECK=1\ntest\nSWITCHYARD_REQUIRE_SHELLCHECK=1\n"},
		{name: "no node at all", tools: []string{"git", "make", "go", "shellcheck"}, node: "v20.0.0", gover: "go1.26.0",
			apt: "install -y -qq nodejs npm", makeLog: "verify\nSWITCHYARD_REQUIRE_SHELLCHECK=1\ntest\nSWITCHYARD_REQUIRE_SHELLCHECK=1\n"},
		{name: "node without npm", tools: []string{"git", "make", "node", "go", "shellcheck"}, node: "v20.11.1", gover: "go1.26.0",
			fail: "is installed without npm; install npm from the same source as node"},
		{name: "node 18", tools: []string{"git", "make", "node", "npm", "go", "shellcheck"}, node: "v18.19.0", gover: "go1.26.0",
			fail: "Node.js 20 or newer is required, found v18.19.0"},
		{name: "old go", tools: []string{"git", "make", "node", "npm", "go", "shellcheck"}, node: "v20.11.1", gover: "go1.25.4",
			fail: "go.mod needs Go 1.26.0, found 1.25.4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin, pkgs, logs := t.TempDir(), t.TempDir(), t.TempDir()
			// The utilities the script uses, and nothing else of the system.
			for _, u := range []string{"bash", "env", "awk", "sed", "sort", "head", "dirname", "cp"} {
				p, err := exec.LookPath(u)
				if err != nil {
					t.Skipf("%s is not installed", u)
				}
				if err := os.Symlink(p, filepath.Join(bin, u)); err != nil {
					t.Fatal(err)
				}
			}
			stub := func(dir, name, body string) {
				script := "#!" + filepath.Join(bin, "bash") + "\necho \"$*\" >> " + filepath.Join(logs, name) + "\n" + body + "\n"
				if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// What apt-get installs: package nodejs brings node (Debian's 20).
			for _, tool := range []string{"git", "make", "npm", "shellcheck"} {
				stub(pkgs, tool, "")
			}
			stub(pkgs, "node", "echo v20.19.2")
			stub(bin, "apt-get", `for p in "$@"; do case $p in -*|update|install) ;; nodejs) cp `+pkgs+`/node `+bin+`/ ;; *) cp `+pkgs+`/"$p" `+bin+`/ ;; esac; done`)
			for _, tool := range tt.tools {
				switch tool {
				case "node":
					stub(bin, "node", "echo "+tt.node)
				case "go":
					stub(bin, "go", `if [ "$1" = env ]; then echo `+tt.gover+`; else echo "go version `+tt.gover+`"; fi`)
				case "make": // logs whether TestShellcheck would be required
					stub(bin, "make", `echo "SWITCHYARD_REQUIRE_SHELLCHECK=${SWITCHYARD_REQUIRE_SHELLCHECK:-}" >> `+filepath.Join(logs, "make"))
				default:
					stub(bin, tool, "")
				}
			}
			cmd := exec.Command(filepath.Join(bin, "bash"), "../.ci/run")
			cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir()}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tt.fail != "" {
				if err == nil || !strings.Contains(stderr.String(), tt.fail) {
					t.Errorf("err %v, stderr %q; want a failure saying %q", err, stderr.String(), tt.fail)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
			}
			apt, _ := os.ReadFile(filepath.Join(logs, "apt-get"))
			if want := map[bool]string{true: "update -qq\n" + tt.apt + "\n", false: ""}[tt.apt != ""]; string(apt) != want {
				t.Errorf("apt-get ran with:\n%s\nwant:\n%s", apt, want)
			}
			if mk, _ := os.ReadFile(filepath.Join(logs, "make")); string(mk) != tt.makeLog {
				t.Errorf("make ran with:\n%s\nwant:\n%s", mk, tt.makeLog)
			}
		})
	}
}
