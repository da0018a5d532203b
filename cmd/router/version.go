package main

import (
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// version and commit are set at build time by `make build`
// (-ldflags "-X main.version=... -X main.commit=..."); otherwise they come
// from the module version and the VCS settings Go records in the binary.
var version, commit string

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the router's version, commit and the API versions it serves",
		Example: `  router version`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeVersion(cmd.OutOrStdout())
		},
	}
}

func writeVersion(out io.Writer) error {
	v, c := buildVersion()
	kinds, err := servedKinds()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "version: %s\ncommit:  %s\napi:     %s (%s)\n", v, c, v1alpha1.GroupVersion, strings.Join(kinds, ", "))
	fmt.Fprintln(out, "         and the request kinds the cluster's Promises define")
	return nil
}

// buildVersion is the version and commit: from -ldflags when set, else
// from the build information ("(devel)" and "unknown" when there is none,
// as under `go run` with -buildvcs=false).
func buildVersion() (v, c string) {
	v, c = version, commit
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return or(v, "(devel)"), or(c, "unknown")
	}
	if v == "" {
		v = info.Main.Version
	}
	if c == "" {
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		c = settings["vcs.revision"]
		if c != "" && settings["vcs.modified"] == "true" {
			c += "-dirty"
		}
	}
	return or(v, "(devel)"), or(c, "unknown")
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// servedKinds are the kinds of api/v1alpha1 (not their lists, nor the
// option kinds every group version registers).
func servedKinds() ([]string, error) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	var kinds []string
	for kind, t := range s.KnownTypes(v1alpha1.GroupVersion) {
		if _, ok := t.FieldByName("ObjectMeta"); ok && t.PkgPath() == reflect.TypeOf(v1alpha1.Promise{}).PkgPath() {
			kinds = append(kinds, kind)
		}
	}
	sort.Strings(kinds)
	return kinds, nil
}
