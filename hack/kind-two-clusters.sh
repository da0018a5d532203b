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
# Needs docker, kind (the release below), kubectl and helm; runs on bash
# 3.2 (macOS's) and later. Re-running is safe: existing clusters are
# reused and a second run of every apply changes nothing. Set
# LOCALSTACK_AUTH_TOKEN to use LocalStack's pro image instead of the last
# free one. README's kind section says what the tests check without
# Docker and what they cannot.
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
AWS_REGION=eu-west-1 # the Destination is labelled region: eu-west-1, so its tables live there

PLATFORM=platform
DESTINATION=localstack
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
DOWN=0
STORE=git # or bucket: LocalStack's S3 instead of the router's own Git repository

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --dry-run) DRY_RUN=1 ;;
      --down) DOWN=1 ;;
      --store)
        if [ $# -lt 2 ]; then
          echo "--store needs a value: git or bucket" >&2
          exit 2
        fi
        STORE=$2
        shift
        ;;
      --store=*) STORE=${1#--store=} ;;
      -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
  done
  case $STORE in
    git | bucket) ;;
    *) echo "--store takes git or bucket, not '$STORE'" >&2; exit 2 ;;
  esac
}

say() { printf '\n== %s\n' "$*"; }

# run prints a command and runs it unless this is a dry run.
run() {
  printf '+ %s\n' "$*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# pipe runs a line of shell (a pipeline, an assignment) the same way, in
# this shell: it sees the functions and variables below, and set -e and
# pipefail stop the script when any part of it fails.
pipe() {
  printf '+ %s\n' "$1"
  if [ "$DRY_RUN" = 0 ]; then eval "$1"; fi
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

# feedback_token prints the ServiceAccount token that the destination's
# API server writes into config/kind/feedback-token.yaml's Secret, waiting
# up to a minute for it, or says why there is none and fails. The token
# lasts as long as the Secret (delete it to revoke the token).
feedback_token() {
  local token waited=0
  while :; do
    if ! token=$(kubectl --context "kind-$DESTINATION" -n flux-system get secret switchyard-feedback-token \
      -o go-template='{{if .data.token}}{{.data.token | base64decode}}{{end}}'); then
      echo "cannot read Secret flux-system/switchyard-feedback-token on kind-$DESTINATION" >&2
      return 1
    fi
    if [ -n "$token" ]; then
      printf '%s\n' "$token"
      return 0
    fi
    if [ "$waited" -ge 60 ]; then
      echo "no token in Secret flux-system/switchyard-feedback-token on kind-$DESTINATION after 60s" \
        "(is ServiceAccount flux-system/switchyard-feedback there?)" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# feedback_kubeconfig TOKEN reads a kubeconfig as `kind get kubeconfig`
# prints it (one cluster, and a user with the cluster-admin's client
# certificate and key) on stdin, and prints a kubeconfig with that
# cluster's server and CA and a user with TOKEN only. Only those two
# fields are read from the input, in a pipe: the admin key is never kept,
# in a variable or a file, nor printed.
feedback_kubeconfig() {
  local token=$1 cluster server ca
  cluster=$(awk '$1 == "server:" { n++; s = $2 } $1 == "certificate-authority-data:" { m++; c = $2 }
    END { if (n == 1 && m == 1) print s, c }')
  server=${cluster% *}
  ca=${cluster#* }
  case $server in
    https://?*) ;;
    *) echo "feedback_kubeconfig: want a kubeconfig with exactly one cluster, with an https server and certificate-authority-data" >&2; return 1 ;;
  esac
  case $ca in
    '' | *[!A-Za-z0-9+/=]*) echo "feedback_kubeconfig: the cluster's certificate-authority-data is not base64" >&2; return 1 ;;
  esac
  case $token in
    '' | *[!A-Za-z0-9._-]*) echo "feedback_kubeconfig: the token is empty or not a ServiceAccount token (a JWT)" >&2; return 1 ;;
  esac
  printf '%s\n' \
    'apiVersion: v1' \
    'kind: Config' \
    'clusters:' \
    '  - name: destination' \
    '    cluster:' \
    "      server: $server" \
    "      certificate-authority-data: $ca" \
    'users:' \
    '  - name: switchyard-feedback' \
    '    user:' \
    "      token: $token" \
    'contexts:' \
    '  - name: switchyard-feedback' \
    '    context: {cluster: destination, user: switchyard-feedback}' \
    'current-context: switchyard-feedback'
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
  kd apply -f "$ROOT/config/kind/feedback-token.yaml" # a token for it that does not expire
  # shellcheck disable=SC2034 # set and read by the lines pipe evaluates
  local token="" kubeconfig=""
  pipe "token=\$(feedback_token)"
  # The router's kubeconfig for the destination: its API server by name on
  # kind's Docker network (--internal), its CA, and the token. kind's admin
  # certificate and key go no further than feedback_kubeconfig's awk; the
  # kubeconfig stays in memory, and nothing is applied if this fails.
  pipe "kubeconfig=\$(kind get kubeconfig --internal --name $DESTINATION | feedback_kubeconfig \"\$token\")"

  say "the router on $PLATFORM, with a $STORE state store"
  # config/default with the kind settings, in one server-side apply: one
  # field manager, so a second run changes nothing.
  kp apply --server-side -k "$ROOT/config/kind/router"
  kp -n switchyard-system rollout status deployment/switchyard-router --timeout=300s
  pipe "printf '%s\\n' \"\$kubeconfig\" | kubectl --context kind-$PLATFORM -n switchyard-system create secret generic localstack-kubeconfig --from-file=value=/dev/stdin --dry-run=client -o yaml | kubectl --context kind-$PLATFORM apply -f -"
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

main() {
  parse_args "$@"
  preflight
  if [ "$DOWN" = 1 ]; then down; else up; fi
}

# Run unless sourced: the tests source the script to call its functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
