package bucketstate

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/statestore"
)

// object is what the writer knows of one stored object.
type object struct {
	// etag as the server reports it, without quotes.
	etag string
	// sum is the hex MD5 of the content, or "" when unknown (an ETag that
	// is not an MD5, as with SSE-KMS or multipart uploads).
	sum      string
	modified time.Time
}

// index is the writer's view of the objects under its prefix.
type index struct {
	objects map[string]object
	// under counts the keys beneath each directory (at any depth), so
	// Exists and the direct files of a leaf directory need no scan.
	under map[string]int
	// files lists the keys directly in each directory.
	files map[string]map[string]struct{}
}

func newIndex() *index {
	return &index{objects: map[string]object{}, under: map[string]int{}, files: map[string]map[string]struct{}{}}
}

func (x *index) put(key string, o object) {
	if _, ok := x.objects[key]; !ok {
		dir := path.Dir(key)
		if x.files[dir] == nil {
			x.files[dir] = map[string]struct{}{}
		}
		x.files[dir][key] = struct{}{}
		for d := dir; d != "." && d != "/"; d = path.Dir(d) {
			x.under[d]++
		}
	}
	x.objects[key] = o
}

func (x *index) remove(key string) {
	if _, ok := x.objects[key]; !ok {
		return
	}
	delete(x.objects, key)
	dir := path.Dir(key)
	delete(x.files[dir], key)
	if len(x.files[dir]) == 0 {
		delete(x.files, dir)
	}
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if x.under[d]--; x.under[d] == 0 {
			delete(x.under, d)
		}
	}
}

// keysUnder returns the keys beneath dir at any depth.
func (x *index) keysUnder(dir string) []string {
	direct := x.files[dir]
	if x.under[dir] == len(direct) {
		keys := make([]string, 0, len(direct))
		for k := range direct {
			keys = append(keys, k)
		}
		return keys
	}
	var keys []string
	for k := range x.objects {
		if strings.HasPrefix(k, dir+"/") {
			keys = append(keys, k)
		}
	}
	return keys
}

// digest is Flux's Bucket revision of the index: sha256 over the sorted
// lines "<key> <etag>\n".
func (x *index) digest() string {
	keys := make([]string, 0, len(x.objects))
	for k := range x.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{' '})
		h.Write([]byte(x.objects[k].etag))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// same reports whether two indexes hold the same keys and ETags.
func (x *index) same(y *index) bool {
	if len(x.objects) != len(y.objects) {
		return false
	}
	for k, o := range x.objects {
		if p, ok := y.objects[k]; !ok || p.etag != o.etag {
			return false
		}
	}
	return true
}

func sortDirs(d []statestore.Dir) {
	sort.Slice(d, func(i, j int) bool { return d[i].Path < d[j].Path })
}
