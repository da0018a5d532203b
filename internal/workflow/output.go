package workflow

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// Limits of one pipeline's output. An object holds at most 1 MiB or so; the
// rest of the object needs a little of it. The uncompressed and file
// limits bound what the router unpacks from a pipeline it does not trust.
const (
	MaxPacked   = 1000 * 1024
	MaxUnpacked = 16 << 20
	MaxFiles    = 1000
)

// The metadata files of the contract, under MetadataDir.
const (
	SelectorsFile = "destination-selectors.yaml"
	StatusFile    = "status.yaml"
	ControlFile   = "workflow-control.yaml"
)

// Pack archives the files under output and metadata (tar, gzip), refusing
// anything but regular files and directories and an archive over
// MaxPacked.
func Pack(output, metadata string) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	files, size := 0, int64(0)
	for _, root := range []struct{ dir, prefix string }{{output, "output"}, {metadata, "metadata"}} {
		err := filepath.WalkDir(root.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(root.dir, p)
			if !d.Type().IsRegular() {
				return fmt.Errorf("%s/%s is not a regular file (links are not followed)", root.prefix, rel)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if files++; files > MaxFiles {
				return fmt.Errorf("more than %d files", MaxFiles)
			}
			if size += info.Size(); size > MaxUnpacked {
				return fmt.Errorf("more than %d bytes of files", MaxUnpacked)
			}
			return addFile(tw, root.prefix+"/"+filepath.ToSlash(rel), p, info.Size())
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > MaxPacked {
		return nil, fmt.Errorf("the output is %d bytes compressed, over the %d one object can carry: write less, or have the pipeline store large artefacts elsewhere and output a reference", buf.Len(), MaxPacked)
	}
	return buf.Bytes(), nil
}

func addFile(tw *tar.Writer, name, p string, size int64) error {
	f, err := openNoFollow(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, size)
	return err
}

// Output is one pipeline's output, unpacked and checked.
type Output struct {
	// Files are /kratix/output's files by their path under it.
	Files map[string][]byte
	// Selectors come from destination-selectors.yaml.
	Selectors []metav1.LabelSelector
	// Status is status.yaml, merged into the object's status.
	Status map[string]any
	// Control is workflow-control.yaml.
	Control Control
}

// Control is workflow-control.yaml: what the pipeline asks of the
// workflow.
type Control struct {
	// Suspend stops the workflow after this pipeline until the next
	// change or manual reconciliation.
	Suspend bool
	// RetryAfter runs this pipeline again after the delay; the pipelines
	// after it wait for that attempt.
	RetryAfter time.Duration
}

// Unpack reads what Pack wrote, checking every path and metadata file; the
// error says what is wrong and in which file.
func Unpack(data []byte) (*Output, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading the output archive: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(zr, MaxUnpacked+1<<20))
	out := &Output{Files: map[string][]byte{}}
	meta := map[string][]byte{}
	total := 0
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the output archive: %w", err)
		}
		if n >= 2*MaxFiles || h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("the output archive holds %q, which is not a regular file, or too many files", h.Name)
		}
		b, err := io.ReadAll(io.LimitReader(tr, MaxUnpacked+1))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
		if total += len(b); total > MaxUnpacked {
			return nil, fmt.Errorf("the output holds more than %d bytes", MaxUnpacked)
		}
		dir, rel, ok := strings.Cut(h.Name, "/")
		if !ok || !safePath(rel) {
			return nil, fmt.Errorf("output path %q is not a relative path inside its directory", h.Name)
		}
		switch dir {
		case "output":
			out.Files[rel] = b
		case "metadata":
			meta[rel] = b
		default:
			return nil, fmt.Errorf("output path %q is outside output/ and metadata/", h.Name)
		}
	}
	if len(out.Files) > MaxFiles {
		return nil, fmt.Errorf("more than %d files", MaxFiles)
	}
	return out, out.readMetadata(meta)
}

// safePath reports whether p is clean, relative and stays inside its
// directory.
func safePath(p string) bool {
	return p != "" && path.Clean(p) == p && !path.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../")
}

func (o *Output) readMetadata(meta map[string][]byte) error {
	if b, ok := meta[SelectorsFile]; ok {
		sel, err := parseSelectors(b)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", MetadataDir, SelectorsFile, err)
		}
		o.Selectors = sel
	}
	if b, ok := meta[StatusFile]; ok {
		// Through JSON as the API server would read it, so numbers compare
		// equal to what the request's status holds (int64, not float64).
		j, err := yaml.YAMLToJSON(b)
		if err == nil {
			err = utiljson.Unmarshal(j, &o.Status)
		}
		if err != nil {
			return fmt.Errorf("%s/%s must be a YAML map: %w", MetadataDir, StatusFile, err)
		}
	}
	if b, ok := meta[ControlFile]; ok {
		c, err := parseControl(b)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", MetadataDir, ControlFile, err)
		}
		o.Control = c
	}
	return nil
}

// selectorEntry is one item of destination-selectors.yaml.
type selectorEntry struct {
	MatchLabels map[string]string `json:"matchLabels"`
	// Directory would send a subdirectory of the output elsewhere; not
	// supported, so refused by name rather than ignored.
	Directory string `json:"directory,omitempty"`
}

func parseSelectors(b []byte) ([]metav1.LabelSelector, error) {
	var entries []selectorEntry
	if err := yaml.UnmarshalStrict(b, &entries); err != nil {
		return nil, fmt.Errorf("want a list of {matchLabels: {...}}: %w", err)
	}
	out := make([]metav1.LabelSelector, 0, len(entries))
	for i, e := range entries {
		if e.Directory != "" {
			return nil, fmt.Errorf("item %d: directory-based splits (directory: %s) are not supported: the whole output goes to one destination", i, e.Directory)
		}
		if len(e.MatchLabels) == 0 {
			continue
		}
		ls := metav1.LabelSelector{MatchLabels: e.MatchLabels}
		if _, err := metav1.LabelSelectorAsSelector(&ls); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, ls)
	}
	return out, nil
}

func parseControl(b []byte) (Control, error) {
	var raw struct {
		Suspend    bool   `json:"suspend,omitempty"`
		RetryAfter string `json:"retryAfter,omitempty"`
	}
	if err := yaml.UnmarshalStrict(b, &raw); err != nil {
		return Control{}, fmt.Errorf("want suspend: true or retryAfter: <duration>: %w", err)
	}
	c := Control{Suspend: raw.Suspend}
	if raw.RetryAfter != "" {
		d, err := time.ParseDuration(raw.RetryAfter)
		if err != nil || d <= 0 {
			return Control{}, fmt.Errorf("retryAfter %q is not a positive duration such as 30s or 5m", raw.RetryAfter)
		}
		c.RetryAfter = d
	}
	return c, nil
}
