package pipelinekit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultPaths(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Paths
	}{
		{"contract", nil, Paths{DefaultInput, DefaultOutputDir, DefaultMetadataDir, DefaultTerminationLog}},
		{"overridden", map[string]string{InputEnv: "/i", OutputDirEnv: "/o", MetadataDirEnv: "/m", TerminationLogEnv: "/t"}, Paths{"/i", "/o", "/m", "/t"}},
		{"partly", map[string]string{OutputDirEnv: "/o"}, Paths{DefaultInput, "/o", DefaultMetadataDir, DefaultTerminationLog}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DefaultPaths(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckActionAndType(t *testing.T) {
	tests := []struct {
		env           Env
		wantConfigure bool
		wantErr       string
	}{
		{Env{}, true, ""},
		{Env{Type: TypeResource, Action: ActionConfigure}, true, ""},
		{Env{Type: TypeResource, Action: ActionDelete}, false, ""},
		{Env{Type: TypeResource, Action: "Configure"}, false, `KRATIX_WORKFLOW_ACTION is "Configure"`},
		{Env{Type: TypePromise}, false, `KRATIX_WORKFLOW_TYPE is "promise"`},
	}
	for _, tt := range tests {
		configure, err := tt.env.CheckAction()
		if err == nil {
			err = tt.env.CheckType(TypeResource)
		}
		if tt.wantErr == "" && (err != nil || configure != tt.wantConfigure) {
			t.Errorf("%+v: configure %v, %v; want %v", tt.env, configure, err, tt.wantConfigure)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: error %v, want one saying %q", tt.env, err, tt.wantErr)
		}
	}
}

// TestMetadataFromEarlierContainers: a broken file from an earlier
// container is an error naming it, not silently replaced.
func TestMetadataFromEarlierContainers(t *testing.T) {
	tests := []struct {
		name, file, content string
		write               func(dir string) error
	}{
		{"status not a map", StatusFile, "- a\n", func(dir string) error { return WriteStatus(dir, map[string]any{"message": "m"}) }},
		{"selectors not a list", DestinationSelectorsFile, "matchLabels: {a: b}\n", func(dir string) error {
			return WriteDestinationSelectors(dir, Selector{MatchLabels: map[string]string{"a": "b"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := tt.write(dir); err == nil || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %v, want one naming %s", err, tt.file)
			}
		})
	}
}

func TestFail(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, log, wantStderr string
	}{
		{"writable log", filepath.Join(dir, "termination-log"), "Error: spec.x is wrong\n"},
		{"unwritable log", filepath.Join(dir, "missing", "termination-log"), "not written to"},
		{"no log", "", "Error: spec.x is wrong\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			Fail(tt.log, &errOut, errors.New("spec.x is wrong"))
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to hold %q", errOut.String(), tt.wantStderr)
			}
			if b, err := os.ReadFile(tt.log); err == nil && string(b) != "Error: spec.x is wrong\n" {
				t.Errorf("termination log %q", b)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "termination-log")); len(b) == 0 {
		t.Error("the writable termination log was not written")
	}
}
