package statestore

import (
	"fmt"
	"path"
	"strings"
)

// Directory and file names the router owns in each destination's directory.
const (
	DependenciesDir = "dependencies"
	ResourcesDir    = "resources"
	// CanaryFile is kept in both directories so that neither ever vanishes
	// from the repo (Flux prunes nothing when its path is gone). The
	// underscore cannot appear in a Kubernetes name, so no Promise or
	// namespace directory can collide with it.
	CanaryFile = "switchyard_canary.yaml"
)

// maxElem is the longest path element accepted: a Kubernetes name.
const maxElem = 253

// checkElem refuses a path element that is empty, ".", "..", holds a slash,
// a backslash or a control character, names Git's own directory, or is
// longer than a Kubernetes name.
func checkElem(e string) error {
	switch {
	case e == "" || e == "." || e == "..":
		return fmt.Errorf("path element %q is not allowed", e)
	case len(e) > maxElem:
		return fmt.Errorf("path element of %d bytes is longer than %d", len(e), maxElem)
	case strings.EqualFold(e, ".git"):
		return fmt.Errorf("path element %q is reserved by Git", e)
	}
	for _, r := range e {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("path element %q contains %q", e, r)
		}
	}
	return nil
}

// CheckPath checks a slash-separated relative path element by element.
func CheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	for _, e := range strings.Split(p, "/") {
		if err := checkElem(e); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
	}
	return nil
}

// join checks base as a path and each of elems as a single element (names
// from users may not add levels), and joins them.
func join(base string, elems ...string) (string, error) {
	if err := CheckPath(base); err != nil {
		return "", err
	}
	for _, e := range elems {
		if err := checkElem(e); err != nil {
			return "", err
		}
	}
	return path.Join(append([]string{base}, elems...)...), nil
}

// RequestDir is where a request's manifests live:
// <destination>/resources/<namespace>/<promise>/<name>.
func RequestDir(destination, namespace, promise, name string) (string, error) {
	return join(destination, ResourcesDir, namespace, promise, name)
}

// DependencyDir is where a Promise's dependencies live:
// <destination>/dependencies/<promise>.
func DependencyDir(destination, promise string) (string, error) {
	return join(destination, DependenciesDir, promise)
}
