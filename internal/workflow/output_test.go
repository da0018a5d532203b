package workflow

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeTree writes files (path under dir -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	out, meta := t.TempDir(), t.TempDir()
	files := map[string]string{
		"deployment.yaml":          "kind: Deployment\n",
		"nested/dir/service.yaml":  "kind: Service\n",
		"nested/empty-file.yaml":   "",
		"nested/dir/deeper/x.json": `{"a":1}`,
	}
	writeTree(t, out, files)
	writeTree(t, meta, map[string]string{
		SelectorsFile: "- matchLabels:\n    env: prod\n- matchLabels:\n    region: eu\n",
		StatusFile:    "message: hello\nendpoints:\n  primary: db.example.com\n",
		ControlFile:   "retryAfter: 5m\n",
	})
	if err := os.MkdirAll(filepath.Join(out, "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	packed, err := Pack(out, meta)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	got, err := Unpack(packed)
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if len(got.Files) != len(files) {
		t.Errorf("Files = %v, want %v", keys(got.Files), files)
	}
	for p, c := range files {
		if b, ok := got.Files[p]; !ok || string(b) != c {
			t.Errorf("Files[%s] = %q (%v), want %q", p, b, ok, c)
		}
	}
	wantSel := []metav1.LabelSelector{{MatchLabels: map[string]string{"env": "prod"}}, {MatchLabels: map[string]string{"region": "eu"}}}
	if !reflect.DeepEqual(got.Selectors, wantSel) {
		t.Errorf("Selectors = %+v, want %+v", got.Selectors, wantSel)
	}
	wantStatus := map[string]any{"message": "hello", "endpoints": map[string]any{"primary": "db.example.com"}}
	if !reflect.DeepEqual(got.Status, wantStatus) {
		t.Errorf("Status = %#v, want %#v", got.Status, wantStatus)
	}
	if got.Control != (Control{RetryAfter: 5 * time.Minute}) {
		t.Errorf("Control = %+v", got.Control)
	}
}

func TestPackMissingDirs(t *testing.T) {
	dir := t.TempDir()
	packed, err := Pack(filepath.Join(dir, "no-output"), filepath.Join(dir, "no-metadata"))
	if err != nil {
		t.Fatalf("Pack of absent directories: %v", err)
	}
	got, err := Unpack(packed)
	if err != nil || len(got.Files) != 0 || got.Selectors != nil || got.Status != nil || got.Control != (Control{}) {
		t.Errorf("Unpack = %+v, %v; want empty", got, err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPackRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, out, meta string)
		want  string
	}{
		{"symlink to a file", func(t *testing.T, out, _ string) {
			writeTree(t, out, map[string]string{"a.yaml": "x"})
			if err := os.Symlink("/etc/passwd", filepath.Join(out, "link.yaml")); err != nil {
				t.Fatal(err)
			}
		}, "output/link.yaml is not a regular file"},
		{"symlink to a directory", func(t *testing.T, _, meta string) {
			if err := os.Symlink("/etc", filepath.Join(meta, "etc")); err != nil {
				t.Fatal(err)
			}
		}, "metadata/etc is not a regular file"},
		{"over MaxPacked", func(t *testing.T, out, _ string) {
			b := make([]byte, 1100<<10) // incompressible, over 1000 KiB packed
			if _, err := rand.Read(b); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, "big.bin"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "compressed, over the"},
		{"file over MaxUnpacked", func(t *testing.T, out, _ string) {
			f, err := os.Create(filepath.Join(out, "huge.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(MaxUnpacked + 1); err != nil { // sparse: compresses well
				t.Fatal(err)
			}
		}, "bytes of files"},
		{"too many files", func(t *testing.T, out, _ string) {
			files := map[string]string{}
			for i := 0; i <= MaxFiles; i++ {
				files[fmt.Sprintf("d%d/f%04d.yaml", i%7, i)] = "x"
			}
			if len(files) <= MaxFiles {
				t.Fatalf("setup made %d files", len(files))
			}
			writeTree(t, out, files)
		}, "more than 1000 files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, meta := t.TempDir(), t.TempDir()
			tt.setup(t, out, meta)
			_, err := Pack(out, meta)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Pack: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

type entry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

// archive builds a tar.gz as an untrusted pipeline could.
func archive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if e.typeflag == 0 {
			e.typeflag = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Linkname: e.link}
		if e.typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnpackRefuses(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"dot dot", archive(t, entry{name: "../x", body: "x"}), `"../x"`},
		{"absolute", archive(t, entry{name: "/abs", body: "x"}), `"/abs"`},
		{"absolute output", archive(t, entry{name: "/output/x", body: "x"}), `"/output/x"`},
		{"escape from output", archive(t, entry{name: "output/../../x", body: "x"}), `"output/../../x"`},
		{"escape to metadata", archive(t, entry{name: "output/../metadata/status.yaml", body: "x"}), `"output/../metadata/status.yaml"`},
		{"unclean", archive(t, entry{name: "output/./a", body: "x"}), `"output/./a"`},
		{"double slash", archive(t, entry{name: "output//etc/passwd", body: "x"}), `"output//etc/passwd"`},
		{"bare output", archive(t, entry{name: "output", body: "x"}), `"output"`},
		{"symlink", archive(t, entry{name: "output/link", typeflag: tar.TypeSymlink, link: "/etc/passwd"}), `"output/link", which is not a regular file`},
		{"hard link", archive(t, entry{name: "output/link", typeflag: tar.TypeLink, link: "output/a"}), "not a regular file"},
		{"directory", archive(t, entry{name: "output/dir/", typeflag: tar.TypeDir}), "not a regular file"},
		{"outside output and metadata", archive(t, entry{name: "other/x", body: "x"}), "outside output/ and metadata/"},
		{"input", archive(t, entry{name: "input/object.yaml", body: "x"}), "outside output/ and metadata/"},
		{"not gzip", []byte("not an archive"), "reading the output archive"},
		{"over MaxUnpacked", archive(t, entry{name: "output/a", body: strings.Repeat("a", MaxUnpacked/2+1)}, entry{name: "output/b", body: strings.Repeat("b", MaxUnpacked/2+1)}),
			"more than"},
		{"too many files", archive(t, func() []entry {
			var es []entry
			for i := 0; i <= MaxFiles; i++ {
				es = append(es, entry{name: fmt.Sprintf("output/f%d", i), body: "x"})
			}
			return es
		}()...), "more than 1000 files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unpack(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Unpack = %+v, %v; want an error with %q", got, err, tt.want)
			}
		})
	}
}

func TestUnpackMetadata(t *testing.T) {
	tests := []struct {
		name, file, body string
		want             string // error substring; "" for none
		check            func(*testing.T, *Output)
	}{
		{"selectors", SelectorsFile, "- matchLabels: {a: b}\n", "", func(t *testing.T, o *Output) {
			if len(o.Selectors) != 1 || o.Selectors[0].MatchLabels["a"] != "b" {
				t.Errorf("Selectors = %+v", o.Selectors)
			}
		}},
		{"selectors directory", SelectorsFile, "- matchLabels: {a: b}\n  directory: dev\n", "directory", nil},
		{"selectors bad yaml", SelectorsFile, "- matchLabels: [\n", MetadataDir + "/" + SelectorsFile, nil},
		{"selectors not a list", SelectorsFile, "matchLabels: {a: b}\n", MetadataDir + "/" + SelectorsFile, nil},
		{"selectors unknown key", SelectorsFile, "- matchExpressions: []\n", MetadataDir + "/" + SelectorsFile, nil},
		{"status bad yaml", StatusFile, "a: [\n", MetadataDir + "/" + StatusFile, nil},
		{"status not a map", StatusFile, "- a\n- b\n", MetadataDir + "/" + StatusFile, nil},
		{"control bad yaml", ControlFile, "suspend: [\n", MetadataDir + "/" + ControlFile, nil},
		{"control retryAfter and suspend", ControlFile, "retryAfter: 5m\nsuspend: true\n", "", func(t *testing.T, o *Output) {
			if o.Control != (Control{Suspend: true, RetryAfter: 5 * time.Minute}) {
				t.Errorf("Control = %+v", o.Control)
			}
		}},
		{"control suspend", ControlFile, "suspend: true\n", "", func(t *testing.T, o *Output) {
			if o.Control != (Control{Suspend: true}) {
				t.Errorf("Control = %+v", o.Control)
			}
		}},
		{"control empty", ControlFile, "", "", func(t *testing.T, o *Output) {
			if o.Control != (Control{}) {
				t.Errorf("Control = %+v", o.Control)
			}
		}},
		{"control unknown key", ControlFile, "retry: 5m\n", MetadataDir + "/" + ControlFile, nil},
		{"control unknown key with known", ControlFile, "suspend: true\nsuspendUntil: tomorrow\n", MetadataDir + "/" + ControlFile, nil},
		{"control negative", ControlFile, "retryAfter: -5m\n", MetadataDir + "/" + ControlFile + `: retryAfter "-5m"`, nil},
		{"control zero", ControlFile, "retryAfter: 0s\n", `retryAfter "0s"`, nil},
		{"control invalid duration", ControlFile, "retryAfter: soon\n", `retryAfter "soon"`, nil},
		{"control number", ControlFile, "retryAfter: 5\n", MetadataDir + "/" + ControlFile, nil},
		{"other metadata file ignored", "notes.txt", "anything: [", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Unpack(archive(t, entry{name: "output/a.yaml", body: "a: 1\n"}, entry{name: "metadata/" + tt.file, body: tt.body}))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Unpack: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Unpack: %v, want an error with %q", err, tt.want)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}
