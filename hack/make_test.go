package hack

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestDemoDownChecksThePID runs `make demo-down` with a demo.pid naming a
// process that is not the demo (a stale file whose PID was reused): it
// must leave that process alone and remove the file. TestDemo (in
// hack/demo) stops a real demo.
func TestDemoDownChecksThePID(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	}()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "demo.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	down := exec.Command("make", "-s", "-C", "..", "demo-down", "DEMO_DIR="+dir)
	out, err := down.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "not a running demo") {
		t.Errorf("make demo-down: %v\n%s", err, out)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale demo.pid is still there (stat: %v)", err)
	}
	if other.Process.Signal(syscall.Signal(0)) != nil {
		t.Error("make demo-down signalled a process that is not the demo")
	}

	// No demo.pid at all.
	out, err = exec.Command("make", "-s", "-C", "..", "demo-down", "DEMO_DIR="+dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no demo running") {
		t.Errorf("make demo-down without a demo: %v\n%s", err, out)
	}
}
