package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The images the project builds, as the Job stand-in runs them: each is
// its cmd/ program, built from source, at the path its Dockerfile puts it.
const (
	// RouterImage is the router's own image in tests: the first and last
	// container of every workflow Job (router pipeline read|write).
	RouterImage           = "ghcr.io/switchyard-dev/switchyard:test"
	DynamoDBPipelineImage = "ghcr.io/switchyard-dev/dynamodb-pipeline"
	KratixExamplesImage   = "ghcr.io/switchyard-dev/kratix-examples"
)

// nonRoot is the USER of every Dockerfile in the repository.
const nonRoot = 65532

// BuildImages builds the programs behind the project's images into
// dir/bin and returns the Job stand-in's table of them.
func BuildImages(dir string) (map[string]Image, error) {
	programs := map[string]string{RouterImage: "router", DynamoDBPipelineImage: "dynamodb-pipeline", KratixExamplesImage: "kratix-examples"}
	images := map[string]Image{}
	for image, name := range programs {
		bin := filepath.Join(dir, "bin", name)
		build := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
		build.Dir, build.Stderr = RepoRoot(), os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building %s for image %s: %w", name, image, err)
		}
		images[image] = Image{Entrypoint: []string{"/" + name}, Files: map[string]string{"/" + name: bin}, User: nonRoot, Group: nonRoot}
	}
	return images, nil
}
