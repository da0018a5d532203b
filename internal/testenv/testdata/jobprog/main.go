// Command jobprog is the program the Job stand-in's tests run in their
// containers. Its arguments are steps, each an operation and its operands:
//
//	write FILE TEXT        write TEXT, with $VAR expanded from the environment, to FILE
//	copy SRC DST           copy file SRC to DST
//	whoami FILE            write the process's uid to FILE
//	pid FILE               write the process's pid to FILE
//	sleep SECONDS          sleep
//	get-configmap NAME     read ConfigMap NAME in the Pod's namespace, in-cluster
//	forbidden-secrets      list Secrets in the Pod's namespace, in-cluster, and expect Forbidden
//	publish NAME DIR       create ConfigMap NAME holding DIR's files, in-cluster
//	fail CODE MESSAGE      write MESSAGE as the termination message and exit with CODE
//
// A failing step writes its error as the termination message and exits 1.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const terminationLog = "/dev/termination-log"

func main() {
	args := os.Args[1:]
	for len(args) > 0 {
		n, err := step(args)
		if err != nil {
			fail(1, fmt.Sprintf("%s: %v", args[0], err))
		}
		args = args[n:]
	}
}

// step runs the step at the start of args and returns how many
// arguments it took.
func step(args []string) (int, error) {
	arity := map[string]int{"write": 2, "copy": 2, "whoami": 1, "pid": 1, "sleep": 1, "get-configmap": 1, "forbidden-secrets": 0, "publish": 2, "fail": 2}
	n, ok := arity[args[0]]
	if !ok || len(args) < n+1 {
		return 0, fmt.Errorf("unknown step or missing operands")
	}
	a := args[1 : n+1]
	switch args[0] {
	case "write":
		return n + 1, os.WriteFile(a[0], []byte(os.ExpandEnv(a[1])), 0o644)
	case "copy":
		b, err := os.ReadFile(a[0])
		if err != nil {
			return 0, err
		}
		return n + 1, os.WriteFile(a[1], b, 0o644)
	case "whoami":
		return n + 1, os.WriteFile(a[0], []byte(strconv.Itoa(os.Getuid())), 0o644)
	case "pid":
		return n + 1, os.WriteFile(a[0], []byte(strconv.Itoa(os.Getpid())), 0o644)
	case "sleep":
		d, err := time.ParseDuration(a[0] + "s")
		time.Sleep(d)
		return n + 1, err
	case "fail":
		code, _ := strconv.Atoi(a[0])
		fail(code, a[1])
	}
	return n + 1, api(args[0], a)
}

// api runs the steps that talk to the API server as the Pod's service
// account.
func api(op string, a []string) error {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch op {
	case "get-configmap":
		_, err = cs.CoreV1().ConfigMaps(string(ns)).Get(ctx, a[0], metav1.GetOptions{})
		return err
	case "forbidden-secrets":
		_, err = cs.CoreV1().Secrets(string(ns)).List(ctx, metav1.ListOptions{})
		if apierrors.IsForbidden(err) {
			return nil
		}
		return fmt.Errorf("listing secrets: want Forbidden, got %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: a[0]}, Data: map[string]string{}}
	files, err := os.ReadDir(a[1])
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(a[1], f.Name()))
		if err != nil {
			return err
		}
		cm.Data[f.Name()] = string(b)
	}
	_, err = cs.CoreV1().ConfigMaps(string(ns)).Create(ctx, cm, metav1.CreateOptions{})
	return err
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, msg)
	_ = os.WriteFile(terminationLog, []byte(strings.TrimSpace(msg)), 0o644)
	os.Exit(code)
}
