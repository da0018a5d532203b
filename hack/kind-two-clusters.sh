#!/usr/bin/env bash
# The two-cluster demo on kind: a "platform" cluster running the router
# (serving its own state repository) and a "localstack" cluster running
# LocalStack, the ACK DynamoDB controller and Flux. DynamoDB requests
# applied on the platform become tables in LocalStack.
#
#   hack/kind-two-clusters.sh                 create (or update) everything
#   hack/kind-two-clusters.sh --store bucket  the same, with LocalStack's S3
#                                             as the state store (a Flux Bucket)
#   hack/kind-two-clusters.sh --dry-run       print every step, change nothing
#   hack/kind-two-clusters.sh --down          delete both clusters
#
# Needs docker, kind, kubectl and helm. Re-running is safe: existing
# clusters are reused and every apply is idempotent. Set
# LOCALSTACK_AUTH_TOKEN to use LocalStack's pro image instead of the last
# free one.
set -euo pipefail

# Versions, in one place (README's kind section lists them too).
# A kind node image is built for one kind release; this is kind v0.32.0's
# default (pkg/apis/config/defaults/image.go at tag v0.32.0), pinned by
# digest as kind's release notes ask. Kubernetes 1.36.1 is in Flux
# v2.9.0's conformance matrix (1.34.1, 1.35.2, 1.36.1, on kind v0.32.0);
# the ACK DynamoDB chart sets no kubeVersion.
KIND_VERSION=v0.32.0
KIND_NODE_IMAGE=kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5
LOCALSTACK_IMAGE=localstack/localstack:4.14.0 # the last image that needs no auth token
LOCALSTACK_PRO_IMAGE=localstack/localstack-pro:4.14.0
FLUX_VERSION=v2.9.0 # ships source- and kustomize-controller v1.9, the API Switchyard builds with
ACK_DYNAMODB_CHART=oci://public.ecr.aws/aws-controllers-k8s/dynamodb-chart
ACK_DYNAMODB_VERSION=1.7.1 # the first chart with aws.allow_unsafe_aws_endpoint_urls
IMG=switchyard-router:kind # config/kind/router names this image
AWS_REGION=us-east-1

PLATFORM=platform
DESTINATION=localstack
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
DOWN=0
STORE=git # or bucket: LocalStack's S3 instead of the router's own Git repository

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --down) DOWN=1 ;;
    --store)
      STORE=${2:-}
      shift
      ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case $STORE in
  git | bucket) ;;
  *) echo "--store takes git or bucket, not '$STORE'" >&2; exit 2 ;;
esac

say() { printf '\n== %s\n' "$*"; }

# run prints a command and runs it unless this is a dry run.
run() {
  printf '+ %s\n' "$*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# pipe runs a shell pipeline the same way.
pipe() {
  printf '+ %s\n' "$1"
  if [ "$DRY_RUN" = 0 ]; then bash -o pipefail -c "$1"; fi
}

kp() { run kubectl --context "kind-$PLATFORM" "$@"; }
kd() { run kubectl --context "kind-$DESTINATION" "$@"; }

# how_to_install names where to get a tool. (A case, not an associative
# array: macOS ships bash 3.2, which has none.)
how_to_install() {
  case $1 in
    docker) echo "https://docs.docker.com/engine/install/" ;;
    kind) echo "go install sigs.k8s.io/kind@$KIND_VERSION, or https://kind.sigs.k8s.io/docs/user/quick-start/#installation" ;;
    kubectl) echo "https://kubernetes.io/docs/tasks/tools/" ;;
    helm) echo "https://helm.sh/docs/intro/install/" ;;
  esac
}

preflight() {
  local missing=0 tool
  for tool in docker kind kubectl helm; do
    if ! command -v "$tool" >/dev/null; then
      echo "missing: $tool. Install it: $(how_to_install "$tool")" >&2
      missing=1
    fi
  done
  if command -v kind >/dev/null; then
    local kind_version
    kind_version=$(kind version | awk '{print $2}')
    if [ "$kind_version" != "$KIND_VERSION" ]; then
      echo "warning: kind $kind_version; the node image $KIND_NODE_IMAGE was built for kind $KIND_VERSION (go install sigs.k8s.io/kind@$KIND_VERSION)" >&2
    fi
  fi
  if [ "$missing" = 0 ] && ! docker info >/dev/null 2>&1; then
    echo "docker is installed but its daemon does not answer (is it running, may you use it?)" >&2
    missing=1
  fi
  if [ "$missing" = 1 ]; then
    if [ "$DRY_RUN" = 1 ]; then
      echo "(dry run: continuing anyway)" >&2
    else
      exit 1
    fi
  fi
}

cluster() { # name
  if [ "$DRY_RUN" = 0 ] && kind get clusters 2>/dev/null | grep -qx "$1"; then
    echo "cluster $1 exists; reusing it"
    return
  fi
  run kind create cluster --name "$1" --image "$KIND_NODE_IMAGE" --wait 120s
}

down() {
  say "deleting the kind clusters"
  run kind delete cluster --name "$PLATFORM"
  run kind delete cluster --name "$DESTINATION"
}

up() {
  say "building the router image $IMG"
  run docker build -t "$IMG" "$ROOT"

  say "creating the clusters"
  cluster "$PLATFORM"
  cluster "$DESTINATION"
  run kind load docker-image "$IMG" --name "$PLATFORM"

  say "LocalStack on $DESTINATION"
  kd apply -f "$ROOT/config/kind/localstack.yaml"
  if [ -n "${LOCALSTACK_AUTH_TOKEN:-}" ]; then
    pipe "kubectl --context kind-$DESTINATION -n localstack create secret generic localstack-auth --from-literal=token=\"\$LOCALSTACK_AUTH_TOKEN\" --dry-run=client -o yaml | kubectl --context kind-$DESTINATION apply -f -"
    kd -n localstack set env deployment/localstack --from=secret/localstack-auth --prefix=LOCALSTACK_AUTH_
    kd -n localstack set image deployment/localstack "localstack=$LOCALSTACK_PRO_IMAGE"
  else
    kd -n localstack set image deployment/localstack "localstack=$LOCALSTACK_IMAGE"
  fi
  kd -n localstack rollout status deployment/localstack --timeout=300s

  say "Flux $FLUX_VERSION on $DESTINATION"
  kd apply -f "https://github.com/fluxcd/flux2/releases/download/$FLUX_VERSION/install.yaml"
  kd -n flux-system rollout status deployment/source-controller deployment/kustomize-controller --timeout=300s

  say "ACK DynamoDB controller $ACK_DYNAMODB_VERSION on $DESTINATION, pointed at LocalStack"
  pipe "kubectl --context kind-$DESTINATION create namespace ack-system --dry-run=client -o yaml | kubectl --context kind-$DESTINATION apply -f -"
  pipe "printf '[default]\\naws_access_key_id = test\\naws_secret_access_key = test\\n' | kubectl --context kind-$DESTINATION -n ack-system create secret generic ack-aws-credentials --from-file=credentials=/dev/stdin --dry-run=client -o yaml | kubectl --context kind-$DESTINATION apply -f -"
  run helm upgrade --install ack-dynamodb "$ACK_DYNAMODB_CHART" --version "$ACK_DYNAMODB_VERSION" \
    --kube-context "kind-$DESTINATION" --namespace ack-system \
    --set aws.region="$AWS_REGION" \
    --set aws.endpoint_url=http://localstack.localstack:4566 \
    --set aws.identity_endpoint_url=http://localstack.localstack:4566 \
    --set aws.allow_unsafe_aws_endpoint_urls=true \
    --set aws.credentials.secretName=ack-aws-credentials \
    --set aws.credentials.secretKey=credentials \
    --wait

  say "a least-privilege identity for the router on $DESTINATION"
  kd apply -f "$ROOT/config/destination/feedback-rbac.yaml"
  local kubeconfig
  kubeconfig=$(mktemp)
  trap 'rm -f "$kubeconfig"' RETURN
  # The router reaches the API server by its name on kind's Docker network.
  pipe "kind get kubeconfig --internal --name $DESTINATION > $kubeconfig"
  pipe "kubectl --kubeconfig $kubeconfig config set-credentials switchyard-feedback --token=\"\$(kubectl --context kind-$DESTINATION -n flux-system create token switchyard-feedback --duration=24h)\" >/dev/null"
  run kubectl --kubeconfig "$kubeconfig" config set-context --current --user=switchyard-feedback

  say "the router on $PLATFORM, with a $STORE state store"
  # config/default with the kind settings, in one server-side apply: one
  # field manager, so a second run changes nothing.
  kp apply --server-side -k "$ROOT/config/kind/router"
  kp -n switchyard-system rollout status deployment/switchyard-router --timeout=300s
  pipe "kubectl --context kind-$PLATFORM -n switchyard-system create secret generic localstack-kubeconfig --from-file=value=$kubeconfig --dry-run=client -o yaml | kubectl --context kind-$PLATFORM apply -f -"
  pipe "kubectl --context kind-$PLATFORM -n switchyard-system create secret generic localstack-aws --from-literal=accessKeyID=test --from-literal=secretAccessKey=test --dry-run=client -o yaml | kubectl --context kind-$PLATFORM apply -f -"
  if [ "$STORE" = bucket ]; then
    # The bucket, and Flux's credentials for it on the destination (LocalStack's test keys).
    pipe "kubectl --context kind-$DESTINATION -n localstack exec deploy/localstack -- awslocal s3api head-bucket --bucket switchyard-state || kubectl --context kind-$DESTINATION -n localstack exec deploy/localstack -- awslocal s3 mb s3://switchyard-state"
    pipe "kubectl --context kind-$DESTINATION -n flux-system create secret generic switchyard-localstack-bucket --from-literal=accesskey=test --from-literal=secretkey=test --dry-run=client -o yaml | kubectl --context kind-$DESTINATION apply -f -"
    kp apply -f "$ROOT/config/kind/platform-bucket.yaml"
  else
    kp apply -f "$ROOT/config/kind/platform.yaml"
  fi
  kp apply -k "$ROOT/config/promises/dynamodb" # the Promise and the router's rights on its requests
  kp wait --for=condition=Ready promise/dynamodb destination/localstack --timeout=120s

  say "Flux objects on $DESTINATION, as the router prints them"
  pipe "kubectl --context kind-$PLATFORM -n switchyard-system exec deploy/switchyard-router -- /router flux-manifests localstack | kubectl --context kind-$DESTINATION apply -f -"

  say "DynamoDB requests"
  kp apply -f "$ROOT/config/samples/requests.yaml"
  # audit asks for a production AWS destination, which this demo lacks: it waits.
  kp wait --for=condition=Ready -n team-a dynamodbrequest/orders dynamodbrequest/events --timeout=300s
  kp wait --for=condition=Ready -n team-b dynamodbrequest/sessions dynamodbrequest/eu-only --timeout=300s
  kp get dynamodbrequests -A

  say "tables in LocalStack"
  kd -n localstack exec deploy/localstack -- awslocal dynamodb list-tables
}

preflight
if [ "$DOWN" = 1 ]; then down; else up; fi
