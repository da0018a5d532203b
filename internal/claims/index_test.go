package claims

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

var (
	ddb   = schema.GroupKind{Group: "aws.switchyard.dev", Kind: "DynamoDBRequest"}
	other = schema.GroupKind{Group: "example.com", Kind: "TableRequest"}
	t0    = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

func dest(name, endpoint, region string) v1alpha1.Destination {
	d := v1alpha1.Destination{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if region != "" {
		d.Spec.AWS = &v1alpha1.AWSSpec{Endpoint: endpoint, Region: region}
	}
	return d
}

// Two destinations on one endpoint and region, one on another endpoint,
// one in another region, two without spec.aws.
var resolve = ForDestinations([]v1alpha1.Destination{
	dest("east", "http://ddb.local:8000", "us-east-1"),
	dest("west", "HTTP://ddb.local:8000/", "us-east-1"),
	dest("south", "http://other.local:8000", "us-east-1"),
	dest("north", "http://ddb.local:8000", "eu-west-1"),
	dest("blind-1", "", ""),
	dest("blind-2", "", ""),
})

// holder is a request named ns/name of kind ddb, created age seconds
// after t0, with one claim table=key in scope.
func holder(name string, age int, destination string, written bool, key string, scope v1alpha1.ClaimScope) Holder {
	return Holder{ID: ID{GroupKind: ddb, NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}},
		UID: types.UID("uid-" + name), Created: t0.Add(time.Duration(age) * time.Second), Destination: destination,
		Written: written, Claims: []Claim{{Name: "table", Key: key, Scope: scope}}}
}

func TestDecide(t *testing.T) {
	aws, dst, global := v1alpha1.ClaimScopeAWS, v1alpha1.ClaimScopeDestination, v1alpha1.ClaimScopeGlobal
	sameSecondA := holder("a", 0, "east", false, "orders", aws)
	sameSecondA.UID = "uid-2"
	sameSecondB := holder("b", 0, "east", false, "orders", aws)
	sameSecondB.UID = "uid-1"
	otherKind := holder("x", 0, "east", true, "orders", aws)
	otherKind.ID.GroupKind = other
	otherName := holder("n", 0, "east", true, "orders", aws)
	otherName.Claims[0].Name = "queue"
	tests := []struct {
		name     string
		existing []Holder
		subject  Holder
		want     string // holder name, "" for no conflict
	}{
		{"alone", nil, holder("b", 1, "east", false, "orders", aws), ""},
		{"older written holder, one destination", []Holder{holder("a", 0, "east", true, "orders", aws)}, holder("b", 1, "east", false, "orders", aws), "a"},
		{"other key", []Holder{holder("a", 0, "east", true, "orders", aws)}, holder("b", 1, "east", false, "invoices", aws), ""},
		{"other claim name", []Holder{otherName}, holder("b", 1, "east", false, "orders", aws), ""},
		{"other kind, same claim", []Holder{otherKind}, holder("b", 1, "east", false, "orders", aws), "x"},
		{"AWS: destinations share endpoint and region", []Holder{holder("a", 0, "east", true, "orders", aws)}, holder("b", 1, "west", false, "orders", aws), "a"},
		{"AWS: other endpoint", []Holder{holder("a", 0, "east", true, "orders", aws)}, holder("b", 1, "south", false, "orders", aws), ""},
		{"AWS: other region", []Holder{holder("a", 0, "east", true, "orders", aws)}, holder("b", 1, "north", false, "orders", aws), ""},
		{"AWS: no endpoint is one shared scope", []Holder{holder("a", 0, "blind-1", true, "orders", aws)}, holder("b", 1, "blind-2", false, "orders", aws), "a"},
		{"Destination: other destination", []Holder{holder("a", 0, "east", true, "orders", dst)}, holder("b", 1, "west", false, "orders", dst), ""},
		{"Destination: same destination", []Holder{holder("a", 0, "east", true, "orders", dst)}, holder("b", 1, "east", false, "orders", dst), "a"},
		{"Global: anywhere", []Holder{holder("a", 0, "east", true, "orders", global)}, holder("b", 1, "north", false, "orders", global), "a"},
		{"mixed scopes: the broader applies", []Holder{holder("a", 0, "east", true, "orders", aws)}, holder("b", 1, "west", false, "orders", dst), "a"},
		{"unknown destination counts everywhere", []Holder{holder("a", 0, "gone", true, "orders", aws)}, holder("b", 1, "north", false, "orders", aws), "a"},
		{"older unplaced request counts everywhere", []Holder{holder("a", 0, "", false, "orders", aws)}, holder("b", 1, "north", false, "orders", aws), "a"},
		{"newer unplaced request does not hold", []Holder{holder("a", 1, "", false, "orders", aws)}, holder("b", 0, "north", false, "orders", aws), ""},
		{"older, never written: the subject waits", []Holder{holder("a", 0, "east", false, "orders", aws)}, holder("b", 1, "east", false, "orders", aws), "a"},
		{"written outranks older unplaced", []Holder{holder("a", 0, "", false, "orders", aws)}, holder("b", 1, "east", true, "orders", aws), ""},
		{"written outranks older placed", []Holder{holder("a", 0, "west", false, "orders", aws)}, holder("b", 1, "east", true, "orders", aws), ""},
		{"both written: the older keeps it", []Holder{holder("a", 0, "west", true, "orders", aws)}, holder("b", 1, "east", true, "orders", aws), "a"},
		{"same second: the lower UID is older", []Holder{sameSecondB}, sameSecondA, "b"},
		{"same second, reversed", []Holder{sameSecondA}, sameSecondB, ""},
		{"best-ranked holder is named", []Holder{holder("c", 0, "", false, "orders", aws), holder("a", 5, "east", true, "orders", aws)},
			holder("b", 9, "east", false, "orders", aws), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := New()
			for _, h := range tt.existing {
				i.Observe(h)
			}
			c := i.Decide(tt.subject, resolve)
			got := ""
			if c != nil {
				got = c.Holder.Name
			}
			if got != tt.want {
				t.Fatalf("conflict with %q, want %q (%+v)", got, tt.want, c)
			}
		})
	}
}

func TestDecideIsSymmetric(t *testing.T) {
	// Whatever order two requests decide in, exactly one gets the key.
	for _, first := range []string{"a", "b"} {
		i := New()
		a := holder("a", 0, "east", false, "orders", v1alpha1.ClaimScopeAWS)
		b := holder("b", 1, "west", false, "orders", v1alpha1.ClaimScopeAWS)
		order := []Holder{a, b}
		if first == "b" {
			order = []Holder{b, a}
		}
		granted := 0
		for _, h := range order {
			if i.Decide(h, resolve) == nil {
				granted++
			}
		}
		if granted != 1 {
			t.Errorf("%s deciding first: %d granted, want 1", first, granted)
		}
	}
}

func TestGrantIsKept(t *testing.T) {
	i := New()
	b := holder("b", 1, "east", false, "orders", v1alpha1.ClaimScopeAWS)
	if c := i.Decide(b, resolve); c != nil {
		t.Fatal(c.Message())
	}
	// An older request appears after b was granted (and is being written):
	// b keeps the key, even through a stale unplaced view of itself.
	stale := b
	stale.Destination = ""
	i.Observe(stale)
	if c := i.Decide(holder("a", 0, "west", false, "orders", v1alpha1.ClaimScopeAWS), resolve); c == nil || c.Holder.Name != "b" {
		t.Fatalf("older request got the key b was granted: %+v", c)
	}
	// Rescheduled elsewhere, b decides again there.
	moved := b
	moved.Destination = "south"
	i.Observe(moved)
	if c := i.Decide(holder("a", 0, "west", false, "orders", v1alpha1.ClaimScopeAWS), resolve); c != nil {
		t.Fatalf("b moved to another endpoint but still holds the key: %s", c.Message())
	}
}

func TestReleaseWakesWaiters(t *testing.T) {
	i := New()
	ch := i.Subscribe(ddb)
	otherCh := i.Subscribe(other)
	a := holder("a", 0, "east", true, "orders", v1alpha1.ClaimScopeAWS)
	b := holder("b", 1, "east", false, "orders", v1alpha1.ClaimScopeAWS)
	unrelated := holder("u", 2, "east", false, "invoices", v1alpha1.ClaimScopeAWS)
	i.Observe(a)
	i.Decide(unrelated, resolve)
	if c := i.Decide(b, resolve); c == nil {
		t.Fatal("b got a's key")
	}
	if len(ch) != 0 {
		t.Fatalf("%d wake-ups before the release", len(ch))
	}
	i.Release(a.ID)
	select {
	case ev := <-ch:
		if ev.Object.GetNamespace() != "ns" || ev.Object.GetName() != "b" {
			t.Fatalf("woke %s/%s, want ns/b", ev.Object.GetNamespace(), ev.Object.GetName())
		}
	default:
		t.Fatal("the release woke nobody")
	}
	if len(ch) != 0 || len(otherCh) != 0 {
		t.Fatalf("extra wake-ups: %d of the kind, %d of another kind", len(ch), len(otherCh))
	}
	if c := i.Decide(b, resolve); c != nil {
		t.Fatalf("after the release: %s", c.Message())
	}
}

func TestPlacementWakesWaiters(t *testing.T) {
	// An older unplaced request blocks b in every scope; once it is placed
	// on another endpoint, b is woken and gets the key.
	i := New()
	ch := i.Subscribe(ddb)
	a := holder("a", 0, "", false, "orders", v1alpha1.ClaimScopeAWS)
	b := holder("b", 1, "east", false, "orders", v1alpha1.ClaimScopeAWS)
	i.Observe(a)
	if c := i.Decide(b, resolve); c == nil || c.Holder.Name != "a" || c.HolderDestination != "" {
		t.Fatalf("b not blocked by the unplaced a: %+v", c)
	}
	a.Destination = "south"
	if c := i.Decide(a, resolve); c != nil {
		t.Fatal(c.Message())
	}
	if len(ch) != 1 {
		t.Fatalf("%d wake-ups after a was placed, want 1 (b)", len(ch))
	}
	if c := i.Decide(b, resolve); c != nil {
		t.Fatal(c.Message())
	}
	// Observing the same thing again wakes nobody.
	i.Observe(a)
	if len(ch) != 1 {
		t.Fatalf("%d wake-ups after an unchanged observation", len(ch))
	}
}

func TestNoClaimsDropsTheHolder(t *testing.T) {
	i := New()
	a := holder("a", 0, "east", true, "orders", v1alpha1.ClaimScopeAWS)
	i.Observe(a)
	a.Claims = nil // the Promise dropped its claims
	i.Observe(a)
	if c := i.Decide(holder("b", 1, "east", false, "orders", v1alpha1.ClaimScopeAWS), resolve); c != nil {
		t.Fatal(c.Message())
	}
}

func TestPrimed(t *testing.T) {
	i := New()
	if i.Primed("dynamodb") {
		t.Fatal("primed before registration")
	}
	loaded := false
	i.SetPrimed("dynamodb", func() bool { return loaded })
	if i.Primed("dynamodb") {
		t.Fatal("primed before the informer synced")
	}
	loaded = true
	if !i.Primed("dynamodb") || i.Primed("other") {
		t.Fatal("Primed does not follow the registration")
	}
}

func TestScopeValue(t *testing.T) {
	tests := []struct {
		d     v1alpha1.Destination
		scope v1alpha1.ClaimScope
		want  string
	}{
		{dest("east", "http://ddb.local:8000", "us-east-1"), v1alpha1.ClaimScopeAWS, "aws:http://ddb.local:8000|us-east-1"},
		{dest("west", "HTTP://DDB.local:8000/", "us-east-1"), v1alpha1.ClaimScopeAWS, "aws:http://ddb.local:8000|us-east-1"},
		{dest("aws", "", "eu-west-1"), v1alpha1.ClaimScopeAWS, "aws:|eu-west-1"},
		{dest("aws-explicit", "https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1"), v1alpha1.ClaimScopeAWS, "aws:|eu-west-1"},
		{dest("blind", "", ""), v1alpha1.ClaimScopeAWS, NoEndpoint},
		{dest("east", "http://ddb.local:8000", "us-east-1"), v1alpha1.ClaimScopeDestination, "destination:east"},
		{dest("east", "http://ddb.local:8000", "us-east-1"), v1alpha1.ClaimScopeGlobal, "global"},
	}
	for _, tt := range tests {
		if got := ScopeValue(&tt.d, tt.scope); got != tt.want {
			t.Errorf("%s in %s: %q, want %q", tt.d.Name, tt.scope, got, tt.want)
		}
	}
}

func TestConflictMessage(t *testing.T) {
	c := &Conflict{Claim: Claim{Name: "table", Key: "orders", Scope: v1alpha1.ClaimScopeAWS},
		Holder: ID{GroupKind: ddb, NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "orders"}}, HolderDestination: "east", HolderWritten: true}
	want := `claim table "orders" (scope AWS) is held by DynamoDBRequest team-a/orders (written on destination east); nothing of this request is written until that one is deleted`
	if got := c.Message(); got != want {
		t.Errorf("message\n%s\nwant\n%s", got, want)
	}
}
