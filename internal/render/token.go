package render

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Tokens.
//
// A token is the render's prefix (fixed letters, then 128 random bits made
// for this render) and an index into the render's table of minted values.
// The resolver replaces only tokens with this prefix whose index is in the
// table, and leaves anything else as text. Every user string was written
// before its render made the prefix, so no user can write a token: a
// string that looks like one renders as exactly itself. Earlier tokens
// were the value itself in base32, which anyone could write, and toJson
// and plain map keys put user text into the output where it was searched.

const (
	indexDigits = 8 // fixed width, so tokens of one map sort as its keys; the budget allows far fewer tokens
	tokenEnd    = "__"
)

// renderer holds one render's prefix, minted values and budget.
type renderer struct {
	prefix string
	minted []minted
	left   int // bytes the render may still print
}

// minted is what a token stands for: a string, or from toJson a value and
// its JSON text.
type minted struct {
	text  string
	value any
	json  bool
}

func newRenderer() *renderer {
	return &renderer{prefix: "__sy" + strings.ToLower(rand.Text()) + "_", left: MaxBytes * 4}
}

func (r *renderer) mint(m minted) string {
	r.minted = append(r.minted, m)
	return fmt.Sprintf("%s%0*d%s", r.prefix, indexDigits, len(r.minted)-1, tokenEnd)
}

// charge counts n bytes against the render's budget. What a template
// writes and the text of every token it prints both count, so the
// resolved output is bounded too: a token is short, its text need not be.
func (r *renderer) charge(n int) error {
	if n > r.left {
		return fmt.Errorf("output larger than %d bytes", MaxBytes)
	}
	r.left -= n
	return nil
}

// lookup returns what the token at the start of s stands for, and its
// length.
func (r *renderer) lookup(s string) (minted, int, bool) {
	n := len(r.prefix) + indexDigits + len(tokenEnd)
	if len(s) < n || !strings.HasPrefix(s, r.prefix) || s[n-len(tokenEnd):n] != tokenEnd {
		return minted{}, 0, false
	}
	i, err := strconv.ParseUint(s[len(r.prefix):n-len(tokenEnd)], 10, 32)
	if err != nil || i >= uint64(len(r.minted)) {
		return minted{}, 0, false
	}
	return r.minted[i], n, true
}

// whole returns what s stands for if s is exactly one token.
func (r *renderer) whole(s string) (minted, bool) {
	m, n, ok := r.lookup(s)
	return m, ok && n == len(s)
}

// resolve replaces every token in s by its text and reports whether s had
// any. Replaced text is not searched again.
func (r *renderer) resolve(s string) (string, bool) {
	var b strings.Builder
	rest, found := s, false
	for {
		i := strings.Index(rest, r.prefix)
		if i < 0 {
			break
		}
		b.WriteString(rest[:i])
		m, n, ok := r.lookup(rest[i:])
		if ok {
			b.WriteString(m.text)
			found = true
		} else {
			n = 1 // not a token; a real one may start inside it
			b.WriteString(rest[i : i+n])
		}
		rest = rest[i+n:]
	}
	if !found {
		return s, false
	}
	b.WriteString(rest)
	return b.String(), true
}

// substitute replaces the tokens in every scalar with their values. A
// scalar that is exactly one toJson token, unquoted and untagged, becomes
// the value itself (a map key only if the value is not a map or list);
// any other token becomes its text, and the scalar a quoted string, so
// YAML cannot reinterpret it.
func (r *renderer) substitute(n *yaml.Node, key bool) error {
	switch n.Kind {
	case yaml.AliasNode:
		return fmt.Errorf("YAML aliases are not allowed in rendered output")
	case yaml.ScalarNode:
		return r.substituteScalar(n, key)
	}
	n.Anchor = ""
	for i, c := range n.Content {
		if err := r.substitute(c, n.Kind == yaml.MappingNode && i%2 == 0); err != nil {
			return err
		}
	}
	return nil
}

func (r *renderer) substituteScalar(n *yaml.Node, key bool) error {
	if m, ok := r.whole(n.Value); ok && m.json && n.Style == 0 && !(key && isCollection(m.value)) {
		return n.Encode(yamlValue(m.value))
	}
	v, ok := r.resolve(n.Value)
	if !ok {
		return nil
	}
	if !utf8.ValidString(v) {
		return errNotUTF8
	}
	n.Value, n.Tag, n.Style = v, "!!str", yaml.DoubleQuotedStyle
	return nil
}

var errNotUTF8 = errors.New("a value is not valid UTF-8")

func isCollection(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// Wrapped values.

// userString is a string from a user. Comparisons see its value; printing
// it mints a token (see emit).
type userString string

// String is a guard: everything a template prints passes through emit,
// so no user text should reach fmt. If some path did, it prints this
// instead of the value.
func (userString) String() string { return "(user string)" }

// jsonValue is what toJson returns: the real value and its JSON text.
type jsonValue struct {
	value any
	text  string
}

// plainKey is a map key that YAML reads back as the same string in any
// position, so it can be used as is: a key like this could look like a
// token, but only tokens this render minted are resolved.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,252}$`)

// wrap turns every string in v into a userString and every map key that
// is not plain into a token. Keys are minted in order, so that ranging
// over a map is the same on every render.
func (r *renderer) wrap(v any) any {
	switch v := v.(type) {
	case string:
		return userString(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out[r.wrapKey(k)] = r.wrap(v[k])
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.wrap(e)
		}
		return out
	default:
		return v
	}
}

func (r *renderer) wrapKey(k string) string {
	switch strings.ToLower(k) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		return r.mint(minted{text: k})
	}
	if plainKey.MatchString(k) {
		return k
	}
	return r.mint(minted{text: k})
}

// real undoes wrap: v with every user string, key token and toJson result
// as the plain value it stands for. Functions compute on this.
func (r *renderer) real(v any) any {
	switch v := v.(type) {
	case userString:
		return string(v)
	case string:
		return r.realKey(v)
	case jsonValue:
		return v.text
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[r.realKey(k)] = r.real(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.real(e)
		}
		return out
	default:
		return v
	}
}

func (r *renderer) realKey(k string) string {
	if m, ok := r.whole(k); ok {
		return m.text
	}
	return k
}

// validUTF8 reports whether every string and key in a real value is valid
// UTF-8, as JSON and YAML would silently change the others.
func validUTF8(v any) bool {
	switch v := v.(type) {
	case string:
		return utf8.ValidString(v)
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) || !validUTF8(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !validUTF8(e) {
				return false
			}
		}
	}
	return true
}
