package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// printHook is the function appended to every action that prints. Its
// name cannot be called from a template: it is not known when parsing.
const printHook = "_switchyardPrint"

// hookPrints appends printHook to every action that prints, as
// html/template appends its escapers: whatever an action computes, emit
// prints it.
func hookPrints(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			hookPrints(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			// The hook is told the action's text, to name it when it
			// prints nothing.
			action := n.String()
			hook := parse.NewIdentifier(printHook).SetPos(n.Pos)
			text := &parse.StringNode{NodeType: parse.NodeString, Pos: n.Pos, Quoted: strconv.Quote(action), Text: action}
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{hook, text}})
		}
	case *parse.IfNode:
		hookPrints(n.List)
		hookPrints(n.ElseList)
	case *parse.RangeNode:
		hookPrints(n.List)
		hookPrints(n.ElseList)
	case *parse.WithNode:
		hookPrints(n.List)
		hookPrints(n.ElseList)
	}
}

// emit turns what action computed into text. User data becomes a token;
// numbers and booleans print as they are, so YAML still reads them as
// numbers; the template's own strings and plain keys print as they are.
// Nothing (a field the request leaves unset or null) fails the render:
// text/template would print "<no value>" where a value belongs.
func (r *renderer) emit(action string, v any) (string, error) {
	var m minted
	switch v := v.(type) {
	case nil:
		return "", fmt.Errorf("%s has no value: the request leaves it unset or null (use default or required)", action)
	case userString:
		m = minted{text: string(v)}
	case jsonValue:
		m = minted{text: v.text, value: v.value, json: true}
	case string:
		if k, ok := r.whole(v); ok { // a key token: pay for its text
			return v, r.charge(len(k.text))
		}
		return v, nil
	default:
		if isScalar(v) {
			return fmt.Sprint(v), nil
		}
		m = minted{text: fmt.Sprint(r.real(v))}
	}
	if err := r.charge(len(m.text)); err != nil {
		return "", err
	}
	return r.mint(m), nil
}

func isScalar(v any) bool {
	switch reflect.ValueOf(v).Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	}
	return false
}

// funcs are the template functions. They compute on real values and
// return user data as userString or jsonValue, which emit mints. print,
// printf, println, html, js and urlquery replace the built-in ones, which
// would format a value's token instead of the value.
func (r *renderer) funcs() template.FuncMap {
	return template.FuncMap{
		"concat":   r.concat,
		"lower":    func(v any) userString { return userString(strings.ToLower(r.raw(v))) },
		"upper":    func(v any) userString { return userString(strings.ToUpper(r.raw(v))) },
		"trunc":    r.trunc,
		"default":  defaultValue,
		"required": required,
		"toJson":   r.toJson,
		"print":    func(args ...any) userString { return userString(fmt.Sprint(r.reals(args)...)) },
		"printf":   func(f string, args ...any) userString { return userString(fmt.Sprintf(f, r.reals(args)...)) },
		"println":  func(args ...any) userString { return userString(fmt.Sprintln(r.reals(args)...)) },
		"html":     func(args ...any) userString { return userString(template.HTMLEscapeString(r.sprint(args))) },
		"js":       func(args ...any) userString { return userString(template.JSEscapeString(r.sprint(args))) },
		"urlquery": func(args ...any) userString { return userString(url.QueryEscape(r.sprint(args))) },
	}
}

func (r *renderer) concat(args ...any) userString {
	var b strings.Builder
	for _, a := range args {
		b.WriteString(r.raw(a))
	}
	return userString(b.String())
}

func (r *renderer) trunc(n int, v any) userString {
	s := []rune(r.raw(v))
	if n >= 0 && len(s) > n {
		s = s[:n]
	}
	return userString(string(s))
}

// toJson marshals the real value. emit decides later whether the result
// lands as the value itself or as its text.
func (r *renderer) toJson(v any) (jsonValue, error) {
	real := r.real(v)
	if !validUTF8(real) {
		return jsonValue{}, errNotUTF8
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(real); err != nil {
		return jsonValue{}, err
	}
	return jsonValue{value: real, text: strings.TrimSuffix(b.String(), "\n")}, nil
}

func defaultValue(d, v any) any {
	if empty(v) {
		return d
	}
	return v
}

func required(msg string, v any) (any, error) {
	if empty(v) {
		return nil, errors.New(msg)
	}
	return v, nil
}

// raw is the real string of a template value.
func (r *renderer) raw(v any) string {
	switch v := r.real(v).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func (r *renderer) reals(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = r.real(a)
	}
	return out
}

// sprint joins arguments as the built-in html, js and urlquery do.
func (r *renderer) sprint(args []any) string {
	if len(args) == 1 {
		return r.raw(args[0])
	}
	return fmt.Sprint(r.reals(args)...)
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case userString:
		return v == ""
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}
