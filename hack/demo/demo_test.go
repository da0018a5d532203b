package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testenv"
)

// TestDemo runs the demo as `make demo` does (built first, with a router
// binary), and checks what a newcomer does with what it prints: the clone
// command and the router commands work as shown, the README's worked
// example is what the demo prints (ports, hashes and times aside), and
// Ctrl-C stops it with exit status 0 and no demo.pid left behind.
//
// SWITCHYARD_UPDATE_README=1 (make readme-example) writes the README's
// example from this run instead of comparing.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	root := testenv.RepoRoot()
	bin, dir := t.TempDir(), filepath.Join(t.TempDir(), "demo")
	started := time.Now() // as make demo's clock, counting the build
	for _, b := range []struct{ out, pkg string }{{"demo", "./hack/demo"}, {"router", "./cmd/router"}} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	building := time.Since(started)
	routerBin := filepath.Join(bin, "router")
	var out testenv.SyncBuffer
	demo := exec.Command(filepath.Join(bin, "demo"), "-dir", dir, "-router", routerBin, "-started", fmt.Sprint(started.Unix()))
	demo.Dir, demo.Stdout, demo.Stderr = root, &out, &out
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- demo.Wait() }()
	defer func() {
		if demo.ProcessState == nil {
			_ = demo.Process.Kill()
			<-exited
		}
	}()
	testenv.WaitFor(t, 15*time.Minute, "the demo's report", func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("the demo ended: %v\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "Running until Ctrl-C"), "no report yet"
	})
	report := out.String()

	// The clock counts from the command's start, the build included
	// (-started has whole seconds).
	var clock float64
	if m := regexp.MustCompile(`\[\s*(\d+\.\d)s\] built the demo and the router`).FindStringSubmatch(report); m == nil {
		t.Errorf("the report does not start with the build:\n%s", report)
	} else if _, err := fmt.Sscan(m[1], &clock); err != nil || clock+0.1 < building.Seconds() {
		t.Errorf("the demo's clock says the build ended at %ss; it took %s", m[1], building.Round(100*time.Millisecond))
	}

	checkLookAround(t, report, root, routerBin)
	compareREADME(t, report, root, dir, routerBin)

	// Ctrl-C.
	if err := demo.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after Ctrl-C the demo exited with %v, want status 0\n%s", err, out.String()[len(report):])
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the demo still runs 2 minutes after Ctrl-C\n%s", out.String()[len(report):])
	}
	if _, err := os.Stat(filepath.Join(dir, "demo.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("demo.pid left behind after Ctrl-C (stat: %v)", err)
	}
}

// checkLookAround runs the commands the report prints to try, as shown.
func checkLookAround(t *testing.T, report, root, routerBin string) {
	clone := regexp.MustCompile(`(?m)^git clone \S+$`).FindString(report)
	if clone == "" {
		t.Fatalf("the report prints no clone command:\n%s", report)
	}
	cwd := t.TempDir()
	cmd := exec.Command("sh", "-c", clone)
	cmd.Dir, cmd.Env = cwd, append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", clone, err, b)
	} else if _, err := os.Stat(filepath.Join(cwd, "state", "localstack-eu", "resources")); err != nil {
		t.Errorf("%s: the clone lacks localstack-eu/resources: %v", clone, err)
	}
	lines := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(routerBin)+` .*$`).FindAllString(report, -1)
	if len(lines) < 2 {
		t.Fatalf("the report prints %d router commands, want state ls and place:\n%s", len(lines), report)
	}
	for _, line := range lines {
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "localstack-eu") {
			t.Errorf("%s: %v\n%s", line, err, b)
		}
	}
}

// compareREADME compares the README's worked example, and its `router
// state ls` output, with this run's.
func compareREADME(t *testing.T, report, root, dir, routerBin string) {
	readme := filepath.Join(root, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	building := regexp.MustCompile(`@echo "(demo: building[^"]*)"`).FindSubmatch(mk)
	if building == nil {
		t.Fatal("the Makefile's demo target prints no building line")
	}
	// As the README shows it: make's first line, the default directory and
	// bin/router.
	shown := strings.NewReplacer(dir, "/tmp/switchyard-demo", routerBin, "bin/router").Replace(report)
	shown = "$ make demo\n" + string(building[1]) + "\n" + shown[:strings.Index(shown, "Running until Ctrl-C")] + "Running until Ctrl-C (or `make demo-down`).\n"
	stateLs := exec.Command(routerBin, "state", "ls", "--kubeconfig", filepath.Join(dir, "platform.kubeconfig"))
	ls, err := stateLs.Output()
	if err != nil {
		t.Fatalf("state ls: %v", err)
	}
	shownLs := "$ bin/router state ls --kubeconfig /tmp/switchyard-demo/platform.kubeconfig\n" + string(ls)

	example := regexp.MustCompile("(?s)```\n(\\$ make demo\n.*?)```\n")
	lsBlock := regexp.MustCompile("(?s)(\\$ bin/router state ls [^\n]*\n.*?)```\n")
	if os.Getenv("SWITCHYARD_UPDATE_README") != "" {
		text := example.ReplaceAllLiteralString(string(b), "```\n"+shown+"```\n")
		text = lsBlock.ReplaceAllLiteralString(text, shownLs+"```\n")
		if err := os.WriteFile(readme, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, c := range []struct {
		what string
		re   *regexp.Regexp
		run  string
	}{{"the worked example", example, shown}, {"state ls", lsBlock, shownLs}} {
		m := c.re.FindStringSubmatch(string(b))
		if m == nil {
			t.Errorf("README.md has no %s block", c.what)
			continue
		}
		if got, want := normalize(m[1]), normalize(c.run); got != want {
			t.Errorf("README.md's %s differs from the demo's (ports, hashes and times aside; make readme-example rewrites it):\n%s", c.what, diff(got, want))
		}
	}
}

// normalize blanks what changes from run to run: times, ports, hashes,
// commit subjects and the number of commits and bucket revisions (how
// writes batch varies), ages, and the aws line (printed only when aws is
// installed).
func normalize(s string) string {
	for _, r := range []struct{ re, with string }{
		{`(?m)^AWS_ACCESS_KEY_ID=.*\n`, ""},
		{`\[\s*\d+\.\ds\]`, "[T]"},
		{`\d+\.\ds after`, "T after"},
		{`127\.0\.0\.1:\d+`, "127.0.0.1:PORT"},
		{`"time": "[^"]*"`, `"time": T`},
		{`"sequence": \d+`, `"sequence": N`},
		{`\b[0-9a-f]{7,64}\b`, "HASH"},
		// The history's entries, however many (its shape is compared).
		{`(\s*\{\s*"revision": "HASH",\s*"sequence": N\s*\},?)+`, " ENTRIES"},
		{`(?m)^HASH switchyard: .*\n`, "HASH switchyard: ...\n"},
		{`(?m)(HASH switchyard: \.\.\.\n)+`, "HASH switchyard: ...\n"},
		{`(?m)\s+\d+[smh]$`, " AGE"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// diff shows the first lines that differ.
func diff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d\nREADME: %q\ndemo:   %q", i+1, gl, wl)
		}
	}
	return ""
}
