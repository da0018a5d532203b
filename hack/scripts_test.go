// Package hack holds the repository's scripts; its test checks them.
package hack

import (
	"errors"
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

// bash4 lists what bash 3.2 lacks (macOS still ships 3.2 as /bin/bash), as
// patterns over a script line with its comment removed, and the version
// that brought each.
var bash4 = []struct{ what, pattern string }{
	{"associative arrays, namerefs and declare -g/-l/-u (4.0-4.3)", `\b(declare|local|typeset|readonly)\s+(-[a-zA-Z]+\s+)*-[a-zA-Z]*[AnglNu]`},
	{"case conversion ${v,,} ${v^^} (4.0)", `\$\{[#!]?[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?(\^|,)`},
	{"mapfile and readarray (4.0)", `\b(mapfile|readarray)\b`},
	{"&>> (4.0)", `&>>`},
	{"|& (4.0)", `\|&`},
	{"coproc (4.0)", `\bcoproc\b`},
	{";& and ;;& in case (4.0)", `;;&|;&\s*$`},
	{"{fd}> redirections (4.1)", `(^|[^$A-Za-z0-9_])\{[A-Za-z_][A-Za-z0-9_]*\}[<>]`},
	{"test -v (4.2)", `(\[\[?|\btest)\s+(!\s+)?-v\s`},
	{"printf %(...)T (4.2)", `%\([^)]*\)T`},
	{"printf -v into an array element (4.1)", `\bprintf\s+-v\s+[A-Za-z_][A-Za-z0-9_]*\[`},
	{"negative array indexes (4.3)", `\$\{[A-Za-z_][A-Za-z0-9_]*\[-[0-9]`},
	{"negative substring length ${v:o:-n} (4.2)", `\$\{[A-Za-z_][A-Za-z0-9_]*:[^}:]*:\s*-[0-9]`},
	{"wait -n (4.3)", `\bwait\s+-n\b`},
	{"read -N and read -i (4.0-4.1)", `\bread\s+(-[a-zA-Z]+\s+)*-[a-zA-Z]*[Ni]`},
	{"${v@Q} transformations (4.4)", `\$\{[^}]*@[QEPAaKkUuL]\}`},
	{"shopt options newer than 3.2", `\bshopt\s+-s\s+.*\b(globstar|lastpipe|autocd|checkjobs|dirspell|direxpand|inherit_errexit|localvar_inherit|assoc_expand_once|patsub_replacement|globasciiranges)\b`},
	{"$BASHPID, $EPOCHSECONDS, $SRANDOM and friends (4.0-5.1)", `\$\{?(BASHPID|EPOCHSECONDS|EPOCHREALTIME|SRANDOM|BASH_ARGV0|BASH_COMPAT)\b`},
	// Before 4.4, "${a[@]}" of an empty array is an unbound variable under
	// set -u, which every script here sets: guard it as ${a[@]+"${a[@]}"}.
	{`"${array[@]}" under set -u (an error on an empty array before 4.4)`, `\$\{[A-Za-z_][A-Za-z0-9_]*\[[@*]\]\}`},
}

var (
	comment = regexp.MustCompile(`(^|\s)#.*$`)
	// guarded is the idiom that expands an empty array under set -u.
	guarded = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]\+"\$\{[A-Za-z_][A-Za-z0-9_]*\[[@*]\]\}"\}`)
)

// newerThan32 returns what of bash4 a script line uses, its comment and
// guarded array expansions aside.
func newerThan32(line string) []string {
	code := guarded.ReplaceAllString(comment.ReplaceAllString(line, ""), "")
	var uses []string
	for _, f := range bash4 {
		if regexp.MustCompile(f.pattern).MatchString(code) {
			uses = append(uses, f.what)
		}
	}
	return uses
}

// TestScriptsRunOnBash32 greps every script for bash features newer than
// 3.2. shellcheck runs on them too, in TestShellcheck. Running them under a
// real bash 3.2 is stronger, but no package registry our machines reach
// ships one: with one first on the PATH as bash (macOS's /bin/bash, or one
// built from GNU's sources), `go test ./hack/` runs the kind script's tests
// under it.
func TestScriptsRunOnBash32(t *testing.T) {
	scripts, _ := filepath.Glob("*.sh")
	scripts = append(scripts, "../.ci/run")
	for _, script := range scripts {
		b, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, what := range newerThan32(line) {
				t.Errorf("%s:%d uses %s, which bash 3.2 lacks:\n\t%s", script, i+1, what, strings.TrimSpace(line))
			}
		}
	}
}

// TestBash4PatternsMatch keeps the patterns above honest: each catches its
// feature, and none fires on what bash 3.2 runs.
func TestBash4PatternsMatch(t *testing.T) {
	bad := []string{
		`declare -A how=(`, `local -n ref=$1`, `declare -g x=1`, `echo "${name,,}"`, `echo "${name^^}"`, `mapfile -t lines < f`,
		`cmd &>> log`, `cmd |& tee log`, `coproc cat`, `  a) echo ;;&`, `exec {fd}>file`, `[[ -v HOME ]]`,
		`printf '%(%F)T'`, `printf -v arr[1] %s x`, `echo "${arr[-1]}"`, `echo "${s:0:-1}"`, `wait -n`, `read -N 1 c`,
		`echo "${v@Q}"`, `shopt -s globstar`, `echo $BASHPID`, `for a in "${args[@]}"; do`,
	}
	ok := []string{
		`local missing=0 tool`, `declare -a list`, `echo "${name:-x}"`, `echo "${#name}"`, `run "$@"`, `x=$((a - 1))`,
		`for a in ${args[@]+"${args[@]}"}; do`, `case $1 in a) ;; esac`, `printf -v out %s x`, `read -r line`, `[ -n "$x" ]`,
		`echo "${s: -1}"`, `tr '[:upper:]' '[:lower:]'`, `cmd >/dev/null 2>&1`, `echo "${2:-}"`, `echo x ${out}>f`,
	}
	for _, line := range bad {
		if len(newerThan32(line)) == 0 {
			t.Errorf("no pattern catches %q", line)
		}
	}
	for _, line := range ok {
		if m := newerThan32(line); len(m) > 0 {
			t.Errorf("%q, fine on bash 3.2, is taken for %v", line, m)
		}
	}
}

// TestKindArguments checks the script's answers to wrong arguments: exit
// status 2 and a message saying what is wrong (--store without a value
// used to exit 1 and say nothing).
func TestKindArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run", "--store"}, "--store needs a value: git or bucket"},
		{[]string{"--store", "--dry-run"}, "--store takes git or bucket, not '--dry-run'"},
		{[]string{"--dry-run", "--store", "nfs"}, "--store takes git or bucket, not 'nfs'"},
		{[]string{"--dry-run", "--store="}, "--store takes git or bucket, not ''"},
		{[]string{"--dry-run", "--stores"}, "unknown argument --stores"},
	} {
		cmd := exec.Command("./kind-two-clusters.sh", tt.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: %v, %q; want exit status 2 and %q", tt.args, err, stderr.String(), tt.want)
		}
	}
	out, err := exec.Command("./kind-two-clusters.sh", "--dry-run", "--store=bucket").Output()
	if err != nil || !strings.Contains(string(out), "config/kind/platform-bucket.yaml") {
		t.Errorf("--store=bucket: %v\n%s", err, out)
	}
	help, err := exec.Command("./kind-two-clusters.sh", "--help").Output()
	if err != nil || !strings.Contains(string(help), "--store bucket") || strings.Contains(string(help), "set -e") {
		t.Errorf("--help: %v\n%s", err, help)
	}
}
