package readiness

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// Object is one object a request rendered.
type Object struct {
	// Template is the resource template that rendered it.
	Template  string
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
	// Live is the object as the destination reports it; nil when it is
	// not there (or not with the request's label).
	Live *unstructured.Unstructured
}

// ID is "Kind namespace/name" (or "Kind name"), for messages.
func (o Object) ID() string {
	if o.Namespace == "" {
		return o.GVK.Kind + " " + o.Name
	}
	return o.GVK.Kind + " " + o.Namespace + "/" + o.Name
}

// Result is a request's readiness and outputs.
type Result struct {
	Ready           bool
	Reason, Message string
	// Outputs are those that could be evaluated.
	Outputs map[string]string
}

// Evaluate computes the outputs and readiness of a request from objs, the
// objects it rendered in the order rendered.
func (r *Rules) Evaluate(ctx context.Context, objs []Object) Result {
	if r == nil {
		r = &Rules{}
	}
	vars, counts := activation(objs)
	budget := uint64(totalLimit)
	res := Result{}
	for _, p := range r.outputs {
		v, err := p.eval(ctx, vars, counts, &budget)
		if err != nil {
			continue // not there yet; readiness says what is missing
		}
		s, err := toString(v)
		if err != nil || len(s) > maxOutput {
			continue
		}
		if res.Outputs == nil {
			res.Outputs = map[string]string{}
		}
		res.Outputs[p.field[len("status.outputs."):]] = s
	}
	for _, o := range objs {
		if o.Live == nil {
			res.Reason, res.Message = v1alpha1.ResourceNotFound, notReady(objs, o, "NotFound: not on the destination")
			return res
		}
	}
	if len(r.readyWhen) > 0 {
		for _, p := range r.readyWhen {
			v, err := p.eval(ctx, vars, counts, &budget)
			switch {
			case err != nil:
				res.Reason, res.Message = v1alpha1.ReadyWhenNotMet, clip(fmt.Sprintf("%s %s: %v", p.field, p.text, err))
				return res
			case v != types.True:
				res.Reason, res.Message = v1alpha1.ReadyWhenNotMet, fmt.Sprintf("%s %s is %s", p.field, p.text, clip(fmt.Sprint(v)))
				return res
			}
		}
		res.Ready, res.Reason = true, v1alpha1.ResourcesReady
		res.Message = fmt.Sprintf("all %d readyWhen expressions are true; %d object(s) on the destination", len(r.readyWhen), len(objs))
		return res
	}
	for _, o := range objs {
		st, msg := Kstatus(o.Live)
		if st != kstatus.CurrentStatus {
			res.Reason, res.Message = reason(st), notReady(objs, o, string(st)+": "+msg)
			return res
		}
	}
	res.Ready, res.Reason = true, v1alpha1.ResourcesReady
	res.Message = fmt.Sprintf("all %d object(s) on the destination are Current (kstatus)", len(objs))
	return res
}

// Kstatus is kstatus's status and message for obj; an object kstatus
// cannot read is InProgress.
func Kstatus(obj *unstructured.Unstructured) (kstatus.Status, string) {
	res, err := kstatus.Compute(obj)
	if err != nil {
		return kstatus.InProgressStatus, "kstatus: " + err.Error()
	}
	return res.Status, res.Message
}

func reason(s kstatus.Status) string {
	switch s {
	case kstatus.FailedStatus:
		return v1alpha1.ResourceFailed
	case kstatus.TerminatingStatus:
		return v1alpha1.ResourceTerminating
	case kstatus.NotFoundStatus:
		return v1alpha1.ResourceNotFound
	}
	return v1alpha1.ResourceInProgress
}

// notReady names o and what holds it back, and how many others wait too.
func notReady(objs []Object, o Object, what string) string {
	msg := o.ID() + ": " + clip(what)
	if n := len(objs); n > 1 {
		msg += fmt.Sprintf(" (%d object(s) rendered)", n)
	}
	return msg
}

func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage] + "…"
}

// activation binds each template that rendered exactly one object to it;
// counts says how many each rendered, for the message of an expression
// reading one that rendered none or several.
func activation(objs []Object) (map[string]any, map[string]int) {
	vars, counts := map[string]any{}, map[string]int{}
	for _, o := range objs {
		counts[VarName(o.Template)]++
	}
	for _, o := range objs {
		if counts[VarName(o.Template)] == 1 && o.Live != nil {
			vars[VarName(o.Template)] = o.Live.Object
		}
	}
	return vars, counts
}

func (p program) eval(ctx context.Context, vars map[string]any, counts map[string]int, budget *uint64) (ref.Val, error) {
	for _, v := range p.vars {
		switch n := counts[v]; {
		case n > 1:
			return nil, fmt.Errorf("template %s renders %d objects; an expression reads a template that renders one", v, n)
		case vars[v] == nil:
			return nil, fmt.Errorf("the object of template %s is not on the destination", v)
		}
	}
	if *budget == 0 {
		return nil, fmt.Errorf("the request's expressions exceeded the cost budget of %d", uint64(totalLimit))
	}
	out, det, err := p.prg.ContextEval(ctx, vars)
	// The program's limit is per call; the request's budget is checked
	// after each, so a call can spend at most one call's limit past it,
	// and then its result is not used.
	var cost uint64
	if det != nil && det.ActualCost() != nil {
		cost = *det.ActualCost()
	}
	over := cost > *budget
	*budget -= min(*budget, cost)
	if err != nil {
		return nil, err
	}
	if over {
		return nil, fmt.Errorf("the request's expressions exceeded the cost budget of %d", uint64(totalLimit))
	}
	return out, nil
}

// toString is a string result as it is, any other as JSON.
func toString(v ref.Val) (string, error) {
	if s, ok := v.(types.String); ok {
		return string(s), nil
	}
	native, err := v.ConvertToNative(reflect.TypeOf(&structpb.Value{}))
	if err != nil {
		return "", err
	}
	// encoding/json, not protojson: protojson varies its spacing on
	// purpose, which would change the status at every evaluation.
	b, err := json.Marshal(native.(*structpb.Value).AsInterface())
	if err != nil {
		return "", err
	}
	return string(b), nil
}
