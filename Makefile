# Switchyard. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
CONTROLLER_GEN ?= go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
STATICCHECK    ?= go run honnef.co/go/tools/cmd/staticcheck@v0.8.2
KUBECONFIG     ?= $(HOME)/.kube/config
# Per test binary; with -race the slowest packages take a few times longer.
TEST_TIMEOUT   ?= 30m

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)

.PHONY: build
build: ## Build bin/router (`bin/router version` prints $(VERSION) and the commit)
	CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/router ./cmd/router

.PHONY: run
run: ## Run the router against $KUBECONFIG, installing the CRDs first
	kubectl --kubeconfig $(KUBECONFIG) apply -f config/crd/bases
	go run ./cmd/router run --kubeconfig $(KUBECONFIG)

.PHONY: test
test: ## Run all tests with the race detector: real kube-apiservers, etcd, Git server, Flux controllers and dynalite
	@command -v shellcheck >/dev/null || echo "make test: shellcheck is not installed, so TestShellcheck is skipped (CI requires it: apt-get install shellcheck)"
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" FLUX_ASSETS="$$(hack/flux.sh)" DYNALITE="$$(hack/dynalite.sh)" \
		go test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: controlplane
controlplane: ## Build (or find cached) kube-apiserver and etcd; prints their directory
	hack/controlplane.sh

.PHONY: generate
generate: ## Generate deepcopy code
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: generate ## Generate CRDs and RBAC into config/
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=switchyard-router paths=./internal/... output:rbac:artifacts:config=config/rbac

.PHONY: fmt
fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet
	go vet ./...

.PHONY: lint
lint: vet ## gofmt check, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(STATICCHECK) ./...

.PHONY: tidy
tidy: ## go mod tidy for every module
	go mod tidy
	cd hack/tools/etcd && go mod tidy
	cd hack/tools/kube-apiserver && go mod tidy
	cd hack/tools/flux && go mod tidy -e # -e: the controllers' own tests import modules the proxy does not serve

.PHONY: verify
verify: chart lint ## Regenerate and fail when the tree changes
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run make manifests chart"; exit 1; }

IMG       ?= switchyard-router:dev
DEMO_DIR  ?= /tmp/switchyard-demo

.PHONY: demo
demo: ## Run everything locally (no Docker): API servers, Git and S3 servers, Flux, dynalite, the router, sample requests
	@echo "demo: building bin/demo and bin/router first (the first time, Go downloads and compiles modules for a few minutes)"
	@# Not -trimpath: the demo finds the repository from its source paths.
	@started=$$(date +%s) && \
		go build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/ ./hack/demo ./cmd/router && \
		exec bin/demo -dir $(DEMO_DIR) -started $$started -router bin/router

.PHONY: readme-example
readme-example: ## Rewrite README.md's worked example from a real run of the demo (TestDemo compares them otherwise)
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" FLUX_ASSETS="$$(hack/flux.sh)" DYNALITE="$$(hack/dynalite.sh)" \
		SWITCHYARD_UPDATE_README=1 go test -count=1 -run TestDemo ./hack/demo/

.PHONY: demo-down
demo-down: ## Stop a running `make demo` (only if the PID in its demo.pid is the demo)
	@pidfile=$(DEMO_DIR)/demo.pid; \
	if [ ! -f $$pidfile ]; then echo "no demo running"; exit 0; fi; \
	pid=$$(cat $$pidfile); \
	case "$$(ps -p "$$pid" -o comm= 2>/dev/null)" in \
	*demo) ;; \
	*) echo "$$pidfile names process $$pid, which is not a running demo: removing the stale file"; rm -f $$pidfile; exit 0;; \
	esac; \
	kill "$$pid"; \
	for _ in $$(seq 300); do kill -0 "$$pid" 2>/dev/null || { echo "demo stopped"; exit 0; }; sleep 0.2; done; \
	echo "demo (PID $$pid) still running 60s after SIGTERM" >&2; exit 1

.PHONY: docker-build
docker-build: ## Build the router image $(IMG)
	docker build -t $(IMG) .

PIPELINE_REPO ?= ghcr.io/switchyard-dev
PIPELINE_TAG  ?= v0.1.0

.PHONY: pipeline-images
pipeline-images: ## Build the Kratix pipeline images dynamodb-pipeline and kratix-examples, $(PIPELINE_REPO)/<name>:$(PIPELINE_TAG)
	for name in dynamodb-pipeline kratix-examples; do \
		docker build -f cmd/$$name/Dockerfile -t $(PIPELINE_REPO)/$$name:$(PIPELINE_TAG) . || exit 1; \
	done

.PHONY: chart
chart: manifests ## Write the Helm chart charts/switchyard from config/ (one source for both installs)
	go run ./hack/chart

.PHONY: build-installer
build-installer: ## Write dist/install.yaml (CRDs, RBAC, Deployment of $(IMG)) from config/default
	mkdir -p dist
	kubectl kustomize config/default | sed 's|image: switchyard-router:dev|image: $(IMG)|' > dist/install.yaml
	@echo "dist/install.yaml: $$(grep -c '^kind:' dist/install.yaml) objects, image $(IMG)"

BENCH_OUT ?= /tmp/switchyard-bench
.PHONY: bench-large
bench-large: ## Not in CI: hack/bench with 100,000 requests (an hour or more on 2 cores); JSON and heap profile in $(BENCH_OUT)
	mkdir -p $(BENCH_OUT)
	go build -o bin/bench ./hack/bench
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" bin/bench -mode burst -requests 100000 -destinations 100 -heapprofile $(BENCH_OUT)/burst-100k.heap -out $(BENCH_OUT)/burst-100k.json

.PHONY: bench-feedback
bench-feedback: ## Not in CI: hack/bench with 1,000 destinations watched (feedback on): router RSS and goroutines per destination; JSON in $(BENCH_OUT)
	mkdir -p $(BENCH_OUT)
	go build -o bin/bench ./hack/bench
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" bin/bench -mode feedback -destinations 1000 -requests 2000 -out $(BENCH_OUT)/feedback-1000.json

.PHONY: bench
bench: ## Go benchmarks, then the router benchmark (burst, steady, baseline) on real components; JSON in $(BENCH_OUT)
	mkdir -p $(BENCH_OUT)
	go test -run xxx -bench . -benchtime 2000x ./internal/scheduler
	go test -run xxx -bench . -benchtime 5x ./internal/gitstate
	go test -run xxx -bench . -benchtime 5x ./internal/bucketstate
	go build -o bin/bench ./hack/bench
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" bin/bench -mode burst -requests 10000 -destinations 100 -heapprofile $(BENCH_OUT)/burst.heap -out $(BENCH_OUT)/burst.json
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" bin/bench -mode steady -rate 50 -duration 2m -destinations 100 -out $(BENCH_OUT)/steady.json
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" bin/bench -mode baseline -requests 500 -destinations 100 -out $(BENCH_OUT)/baseline.json
	KUBEBUILDER_ASSETS="$$(hack/controlplane.sh)" bin/bench -store bucket -mode burst -requests 1000 -destinations 10 -out $(BENCH_OUT)/bucket.json
