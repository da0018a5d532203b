package statestore

import (
	"path"
	"strings"
	"testing"
)

// FuzzRequestDir: whatever the namespace, promise and request names, a
// request's directory is refused or lies inside its destination's
// resources directory, exactly three levels down.
func FuzzRequestDir(f *testing.F) {
	for _, s := range [][3]string{
		{"team-a", "dynamodb", "orders"},
		{"..", "dynamodb", "x"},
		{"a/b", "c", "d"},
		{"ns", ".git", "x"},
		{"ns", "p", "../../../etc"},
		{"ns", "p", "x\x00y"},
		{"ns", "p", strings.Repeat("n", 300)},
		{"ns", "p", `a\b`},
		{"ns", "p", "ünïcode"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, ns, promise, name string) {
		dir, err := RequestDir("dest", ns, promise, name)
		if err != nil {
			return
		}
		clean := path.Clean(dir)
		if clean != dir {
			t.Fatalf("RequestDir(%q, %q, %q) = %q, not clean (%q)", ns, promise, name, dir, clean)
		}
		rest, ok := strings.CutPrefix(dir, "dest/"+ResourcesDir+"/")
		if !ok || len(strings.Split(rest, "/")) != 3 {
			t.Fatalf("RequestDir(%q, %q, %q) = %q: outside dest/resources/<ns>/<promise>/<name>", ns, promise, name, dir)
		}
		for _, e := range strings.Split(dir, "/") {
			if e == ".." || e == "." || strings.EqualFold(e, ".git") || strings.ContainsAny(e, "\\\x00") {
				t.Fatalf("RequestDir(%q, %q, %q) = %q has element %q", ns, promise, name, dir, e)
			}
		}
	})
}
