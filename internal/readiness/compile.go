package readiness

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Limits of one evaluation, the API server's own for CEL (a call, and
// everything one request's expressions may cost together).
const (
	perCallLimit = celconfig.PerCallLimit
	totalLimit   = celconfig.RuntimeCELCostBudget
	// maxOutput bounds one output in a request's status: an object's
	// content must not bloat the request.
	maxOutput = 4096
	// maxMessage bounds what an object's own messages add to a condition.
	maxMessage = 1024
)

// Rules are a Promise's compiled status rules. The zero value (no rules)
// is usable: no outputs, readiness from kstatus.
type Rules struct {
	outputs   []program
	readyWhen []program
}

type program struct {
	// field is where the expression is in the Promise, for messages.
	field, text string
	prg         cel.Program
	// vars are the templates it reads.
	vars []string
}

// Error is an expression that does not compile.
type Error struct {
	Field, Expression, Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Expression, e.Reason)
}

// VarName is the CEL variable of resource template name ('-' becomes '_').
func VarName(template string) string { return strings.ReplaceAll(template, "-", "_") }

// Compile parses and type-checks rules against the Promise's resource
// templates. The error is an *Error naming the first expression at fault.
func Compile(rules *v1alpha1.StatusRules, templates []string) (*Rules, error) {
	out := &Rules{}
	if rules == nil {
		return out, nil
	}
	opts := []cel.EnvOption{
		cel.ParserExpressionSizeLimit(4096), cel.ParserRecursionLimit(64),
		cel.CrossTypeNumericComparisons(true), cel.OptionalTypes(),
	}
	names := make([]string, len(templates))
	for i, t := range templates {
		names[i] = VarName(t)
		opts = append(opts, cel.Variable(names[i], cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(rules.Outputs))
	for k := range rules.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := compile(env, "status.outputs."+k, string(rules.Outputs[k]), nil, names)
		if err != nil {
			return nil, err
		}
		out.outputs = append(out.outputs, p)
	}
	for i, e := range rules.ReadyWhen {
		p, err := compile(env, fmt.Sprintf("status.readyWhen[%d]", i), string(e), cel.BoolType, names)
		if err != nil {
			return nil, err
		}
		out.readyWhen = append(out.readyWhen, p)
	}
	for _, c := range rules.PrinterColumns {
		if _, ok := rules.Outputs[c.Output]; !ok {
			return nil, &Error{Field: "status.printerColumns", Expression: c.Output, Reason: "names no output"}
		}
	}
	return out, nil
}

func compile(env *cel.Env, field, text string, want *cel.Type, vars []string) (program, error) {
	p := program{field: field, text: text}
	fail := func(format string, args ...any) (program, error) {
		return p, &Error{Field: field, Expression: text, Reason: fmt.Sprintf(format, args...)}
	}
	inner, prefixed := strings.CutPrefix(strings.TrimSpace(text), "${")
	inner, suffixed := strings.CutSuffix(inner, "}")
	if !prefixed || !suffixed {
		return fail("an expression is one ${...}")
	}
	ast, iss := env.Compile(inner)
	if iss.Err() != nil {
		return fail("%s (resource templates: %s)", strings.ReplaceAll(iss.Err().Error(), "\n", " "), strings.Join(vars, ", "))
	}
	if want != nil && !ast.OutputType().IsExactType(want) && !ast.OutputType().IsExactType(cel.DynType) {
		return fail("must be a %s, is a %s", want, ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(perCallLimit), cel.InterruptCheckFrequency(100), cel.EvalOptions(cel.OptTrackCost))
	if err != nil {
		return fail("%v", err)
	}
	p.prg = prg
	seen := map[string]bool{}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name != "" && !seen[ref.Name] && contains(vars, ref.Name) {
			seen[ref.Name] = true
			p.vars = append(p.vars, ref.Name)
		}
	}
	sort.Strings(p.vars)
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// HasReadyWhen reports whether readiness comes from expressions rather
// than kstatus.
func (r *Rules) HasReadyWhen() bool { return r != nil && len(r.readyWhen) > 0 }
