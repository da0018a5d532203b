package secretref

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestReader(t *testing.T) {
	base := fake.NewClientBuilder().WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "router", Name: "mine"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "theirs"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "cm"}},
	).Build()
	tests := []struct {
		name       string
		allow      bool
		key        client.ObjectKey
		obj        client.Object
		wantRefuse bool
	}{
		{"own namespace", false, client.ObjectKey{Namespace: "router", Name: "mine"}, &corev1.Secret{}, false},
		{"other namespace refused", false, client.ObjectKey{Namespace: "team-a", Name: "theirs"}, &corev1.Secret{}, true},
		{"other namespace allowed by flag", true, client.ObjectKey{Namespace: "team-a", Name: "theirs"}, &corev1.Secret{}, false},
		{"other kinds pass", false, client.ObjectKey{Namespace: "team-a", Name: "cm"}, &corev1.ConfigMap{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reader{Reader: base, Namespace: "router", AllowCrossNamespace: tt.allow}
			err := r.Get(context.Background(), tt.key, tt.obj)
			if got := errors.Is(err, ErrCrossNamespace); got != tt.wantRefuse {
				t.Fatalf("refused = %v (%v), want %v", got, err, tt.wantRefuse)
			}
			if !tt.wantRefuse && err != nil {
				t.Fatal(err)
			}
		})
	}
	r := &Reader{Reader: base, Namespace: "router", AllowCrossNamespace: true}
	if err := r.List(context.Background(), &corev1.SecretList{}); err == nil {
		t.Error("listing Secrets: no error")
	}
}
