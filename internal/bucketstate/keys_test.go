package bucketstate

import (
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// FuzzKeysStayUnderRoot: whatever directory and file name a Change names,
// it is refused, or every key it would write or delete lies under the
// writer's root, and the control directory is never touched.
func FuzzKeysStayUnderRoot(f *testing.F) {
	for _, s := range [][2]string{
		{"dev/resources/ns/p/x", "table.yaml"},
		{"..", "a"}, {"dev/../..", "a"}, {"dev", "../x"}, {"dev", "a/b"},
		{"/abs", "a"}, {"dev\\..", "a"}, {".switchyard", "version.json"},
		{"dev/.", "a"}, {"", "a"}, {"dev", ".."}, {"dev//x", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dir, name string) {
		w := &Writer{cfg: Config{Root: "clusters/prod"}, idx: newIndex()}
		w.idx.put("clusters/prod/"+ControlDir+"/"+MarkerFile, object{etag: "e"})
		w.idx.put("clusters/other.yaml", object{etag: "e"})
		for _, c := range []statestore.Change{
			{Dir: dir, Files: map[string][]byte{name: []byte("x")}},
			{Dir: dir, Replace: true},
		} {
			if c.Check() != nil || checkControl(c) != nil {
				continue
			}
			p := w.plan([]statestore.Write{{Changes: []statestore.Change{c}}})
			for k := range p.keys {
				if !strings.HasPrefix(k, "clusters/prod/") || strings.HasPrefix(k, "clusters/prod/"+ControlDir+"/") {
					t.Fatalf("Change %+v plans key %q", c, k)
				}
			}
		}
	})
}
