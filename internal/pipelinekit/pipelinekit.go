package pipelinekit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/internal/workflow"
)

// The contract's paths (the router's, in internal/workflow), and the
// variables that override them in tests.
const (
	DefaultInput          = workflow.InputDir + "/" + workflow.ObjectFile
	DefaultOutputDir      = workflow.OutputDir
	DefaultMetadataDir    = workflow.MetadataDir
	DefaultTerminationLog = "/dev/termination-log"

	InputEnv          = "PIPELINE_INPUT"
	OutputDirEnv      = "PIPELINE_OUTPUT_DIR"
	MetadataDirEnv    = "PIPELINE_METADATA_DIR"
	TerminationLogEnv = "PIPELINE_TERMINATION_LOG"
)

// Files in the metadata directory.
const (
	DestinationSelectorsFile = workflow.SelectorsFile
	StatusFile               = workflow.StatusFile
	ControlFile              = workflow.ControlFile
)

// Actions and types of a workflow (KRATIX_WORKFLOW_ACTION, KRATIX_WORKFLOW_TYPE).
const (
	ActionConfigure = workflow.ActionConfigure
	ActionDelete    = workflow.ActionDelete
	TypeResource    = workflow.TypeResource
	TypePromise     = workflow.TypePromise
)

// Paths are where a container finds its input and puts what it writes.
type Paths struct {
	Input          string
	OutputDir      string
	MetadataDir    string
	TerminationLog string
}

// DefaultPaths are the contract's paths, each overridden by its variable
// when set.
func DefaultPaths(getenv func(string) string) Paths {
	or := func(env, def string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return def
	}
	return Paths{
		Input:          or(InputEnv, DefaultInput),
		OutputDir:      or(OutputDirEnv, DefaultOutputDir),
		MetadataDir:    or(MetadataDirEnv, DefaultMetadataDir),
		TerminationLog: or(TerminationLogEnv, DefaultTerminationLog),
	}
}

// Env is the run as the KRATIX_ variables describe it.
type Env struct {
	Type, Action, Promise, Pipeline string
	Kind, Group, Version            string
	Name, Namespace, Plural         string
}

// ReadEnv reads the KRATIX_ variables.
func ReadEnv(getenv func(string) string) Env {
	return Env{
		Type:      getenv("KRATIX_WORKFLOW_TYPE"),
		Action:    getenv("KRATIX_WORKFLOW_ACTION"),
		Promise:   getenv("KRATIX_PROMISE_NAME"),
		Pipeline:  getenv("KRATIX_PIPELINE_NAME"),
		Kind:      getenv("KRATIX_OBJECT_KIND"),
		Group:     getenv("KRATIX_OBJECT_GROUP"),
		Version:   getenv("KRATIX_OBJECT_VERSION"),
		Name:      getenv("KRATIX_OBJECT_NAME"),
		Namespace: getenv("KRATIX_OBJECT_NAMESPACE"),
		Plural:    getenv("KRATIX_CRD_PLURAL"),
	}
}

// CheckAction returns whether the run configures (true) or deletes
// (false). An empty action is configure, so a program also runs by hand.
func (e Env) CheckAction() (configure bool, err error) {
	switch e.Action {
	case "", ActionConfigure:
		return true, nil
	case ActionDelete:
		return false, nil
	}
	return false, fmt.Errorf("KRATIX_WORKFLOW_ACTION is %q; want %s or %s", e.Action, ActionConfigure, ActionDelete)
}

// CheckType fails unless the run is of workflow type want. An empty type
// passes, so a program also runs by hand.
func (e Env) CheckType(want string) error {
	if e.Type != "" && e.Type != want {
		return fmt.Errorf("KRATIX_WORKFLOW_TYPE is %q: this program runs as a %s workflow", e.Type, want)
	}
	return nil
}

// ReadObject reads the object the pipeline runs for.
func ReadObject(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the input object: %w", err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("input object %s is not YAML: %w", path, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("input object %s is empty", path)
	}
	return obj, nil
}

// WriteManifests writes objects as one multi-document YAML file in dir.
func WriteManifests(dir, name string, objs ...any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("encoding %s: %w", name, err)
		}
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	return writeFile(dir, name, buf.Bytes())
}

// Selector is one entry of destination-selectors.yaml.
type Selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// WriteDestinationSelectors appends selectors to the metadata directory's
// destination-selectors.yaml: an earlier container's stay, so every
// container of a pipeline can narrow placement.
func WriteDestinationSelectors(dir string, selectors ...Selector) error {
	var all []Selector
	if err := readYAML(filepath.Join(dir, DestinationSelectorsFile), &all); err != nil {
		return err
	}
	all = append(all, selectors...)
	return WriteManifests(dir, DestinationSelectorsFile, all)
}

// WriteStatus merges fields into the metadata directory's status.yaml,
// over what an earlier container of the pipeline wrote there.
func WriteStatus(dir string, fields map[string]any) error {
	status := map[string]any{}
	if err := readYAML(filepath.Join(dir, StatusFile), &status); err != nil {
		return err
	}
	if status == nil {
		status = map[string]any{}
	}
	maps.Copy(status, fields)
	return WriteManifests(dir, StatusFile, status)
}

// readYAML decodes path into v; a missing or empty file leaves v alone.
func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s, written by an earlier container, is not what the contract says: %w", path, err)
	}
	return nil
}

func writeFile(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), b, 0o644)
}

// Fail reports err as the container's failure: on errOut and, when it can
// be written, in the termination log, which Kubernetes shows as the
// container's termination message (and the router reports on the object).
func Fail(terminationLog string, errOut io.Writer, err error) {
	msg := "Error: " + err.Error()
	fmt.Fprintln(errOut, msg)
	if terminationLog == "" {
		return
	}
	// Outside a Pod the log may not exist or be writable; stderr has it.
	if werr := os.WriteFile(terminationLog, []byte(msg+"\n"), 0o644); werr != nil {
		fmt.Fprintf(errOut, "(not written to %s: %v)\n", terminationLog, werr)
	}
}

// Nested returns the value at fields in obj, or nil.
func Nested(obj map[string]any, fields ...string) any {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[f]
	}
	return cur
}

// NestedString returns the string at fields in obj, or "".
func NestedString(obj map[string]any, fields ...string) string {
	s, _ := Nested(obj, fields...).(string)
	return s
}

// NestedStringMap returns the map of strings at fields in obj. It fails
// when a value is not a string, naming the field.
func NestedStringMap(obj map[string]any, fields ...string) (map[string]string, error) {
	v := Nested(obj, fields...)
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is a %T; want a map of strings", strings.Join(fields, "."), v)
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s.%s is a %T; want a string", strings.Join(fields, "."), k, e)
		}
		out[k] = s
	}
	return out, nil
}

// Execute runs the command newCmd makes with args and returns the exit
// code: 0 on success (help included), 1 on any error, reported on errOut
// and as the container's termination message (Fail). getenv supplies the
// paths' and the contract's environment, so tests need not set the
// process's.
func Execute(newCmd func(*Paths, Env) *cobra.Command, args []string, getenv func(string) string, out, errOut io.Writer) int {
	paths := DefaultPaths(getenv)
	cmd := newCmd(&paths, ReadEnv(getenv))
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	if err := cmd.Execute(); err != nil {
		Fail(paths.TerminationLog, errOut, err)
		return 1
	}
	return 0
}
