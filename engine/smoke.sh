#!/usr/bin/env bash
# Smoke test of the engine tier's control plane, on 127.0.0.1 only: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake node and pod status, no kubelet) from the
# bin/ folder engine/provision.sh made; applies the Istio and Traefik CRDs, creates one object of each
# kind the program uses from them, and a Deployment that must become Available; then tears everything
# down. Every wait is bounded; an EXIT/INT/TERM trap stops the processes it started (by PID) and
# removes its temporary folder, on success and on failure alike.
#
# Usage: engine/smoke.sh [BIN_DIR [CRDS_DIR]]  (defaults: the provision cache's bin/ and crds/)
# Prints "smoke: <step> ..." lines and ends with "smoke: ok" (exit 0) or "smoke: FAILED: <why>" (exit 1).
#
# With SMOKE_STACKS_DIR set, it then applies each stack of that folder to the API server, one after
# the other, in name order: <stack>/cluster.yaml (what the cluster holds already, e.g. istio-system),
# then <stack>/objects.yaml (the program's objects, in order) with server-side apply; <stack>/expect
# says "accepted" (every object is created and read back, then deleted, namespaces finalized) or
# "refused" (the API server must refuse the objects). One "smoke: stack <name>: ..." line each.
set -euo pipefail
shopt -s inherit_errexit

CACHE_ROOT="${ENGINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iks-alb-istio-mtls/engine}"
BIN="${1:-$CACHE_ROOT/bin}"
CRDS="${2:-$CACHE_ROOT/crds}"
WAIT="${SMOKE_WAIT_SECONDS:-120}"
ENGINE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
. "$ENGINE_DIR/versions.env"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/engine-smoke.XXXXXX")"
PIDS=()
NAMES=()
STATUS=1
REASON="interrupted"

log() { printf 'smoke: %s\n' "$*"; }

cleanup() {
  local i pid deadline
  trap - EXIT INT TERM
  # Stop in reverse order of start, one at a time (kwok and the controllers first, etcd last, so
  # the API server does not wait on a gone etcd): SIGTERM, then SIGKILL after 10 seconds.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      log "killed ${NAMES[$i]} (pid $pid) after 10s"
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ "$STATUS" != "0" ] && [ -d "$TMP/logs" ]; then
    for f in "$TMP"/logs/*.log; do
      [ -f "$f" ] || continue
      printf -- '--- last lines of %s\n' "$(basename "$f")" >&2
      tail -n 15 "$f" >&2 || true
    done
  fi
  rm -rf "$TMP"
  log "stopped ${#PIDS[@]} processes, removed $TMP"
  if [ "$STATUS" = "0" ]; then log ok; else log "FAILED: $REASON"; fi
  exit "$STATUS"
}
trap cleanup EXIT
trap 'REASON="interrupted by SIGINT"; STATUS=130; exit 130' INT
trap 'REASON="interrupted by SIGTERM"; STATUS=143; exit 143' TERM

die() { REASON="$*"; STATUS=1; exit 1; }

start() { # name command...
  local name="$1"
  shift
  "$@" >"$TMP/logs/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  log "started $name (pid $!)"
}

alive() { # name: fail if that process has exited
  local i
  for i in "${!NAMES[@]}"; do
    if [ "${NAMES[$i]}" = "$1" ] && ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      die "$1 exited early (see its log above)"
    fi
  done
}

wait_for() { # description seconds command...: retry the command until it succeeds or time runs out
  local what="$1" secs="$2" deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    for n in "${NAMES[@]}"; do alive "$n"; done
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
  log "$what after $((secs - (deadline - SECONDS)))s"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run engine/provision.sh first"
done
for f in "istio-$ISTIO_API_VERSION.yaml" "traefik-$TRAEFIK_VERSION.yaml"; do
  [ -f "$CRDS/$f" ] || die "$CRDS/$f is missing: run engine/provision.sh crds"
done
STAGES="$(readlink -f "$BIN/kwok")"
STAGES="$(dirname "$(dirname "$STAGES")")/stages"
[ -d "$STAGES" ] || die "kwok's stages folder $STAGES is missing: run engine/provision.sh kwok"

mkdir -p "$TMP/logs" "$TMP/pki" "$TMP/etcd"
log "temp dir $TMP"
ETCD_PORT="$(free_port)"
PEER_PORT="$(free_port)"
API_PORT="$(free_port)"
TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

# Service-account signing key and the one admin token (group system:masters).
openssl genrsa -out "$TMP/pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$TMP/pki/sa.key" -pubout -out "$TMP/pki/sa.pub" 2>/dev/null
printf '%s,admin,admin,system:masters\n' "$TOKEN" >"$TMP/pki/tokens.csv"
cat >"$TMP/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster:
    server: https://127.0.0.1:$API_PORT
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: smoke
  context: {cluster: smoke, user: admin}
current-context: smoke
EOF
export KUBECONFIG="$TMP/kubeconfig"
K=("$BIN/kubectl" --kubeconfig "$TMP/kubeconfig" --request-timeout=20s)

start etcd "$BIN/etcd" --name smoke --data-dir "$TMP/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "smoke=http://127.0.0.1:$PEER_PORT"
wait_for "etcd healthy" 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --cert-dir "$TMP/pki" \
  --service-cluster-ip-range 10.0.0.0/24 --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$TMP/pki/sa.pub" --service-account-signing-key-file "$TMP/pki/sa.key" \
  --authorization-mode RBAC --token-auth-file "$TMP/pki/tokens.csv" --allow-privileged=true \
  --disable-admission-plugins ServiceAccount --enable-priority-and-fairness=false \
  --endpoint-reconciler-type none --shutdown-delay-duration 0s
wait_for "kube-apiserver ready" "$WAIT" curl -fsSk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz"
log "server $("${K[@]}" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"

start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$TMP/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
  --service-account-private-key-file "$TMP/pki/sa.key" --use-service-account-credentials=false
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$TMP/kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
KWOK_ARGS=()
for f in "$STAGES"/*.yaml; do KWOK_ARGS+=(--config "$f"); done
start kwok "$BIN/kwok" "${KWOK_ARGS[@]}" --kubeconfig "$TMP/kubeconfig" --manage-all-nodes=true \
  --cidr 10.0.0.1/24 --node-ip 127.0.0.1 --server-address 127.0.0.1:0

# The CRDs (server-side apply: the Istio CRDs are too big for the last-applied annotation).
"${K[@]}" apply --server-side -f "$CRDS/istio-$ISTIO_API_VERSION.yaml" >"$TMP/logs/apply-crds.log"
"${K[@]}" apply --server-side -f "$CRDS/traefik-$TRAEFIK_VERSION.yaml" >>"$TMP/logs/apply-crds.log"
wait_for "CRDs established" 60 "${K[@]}" wait --for=condition=Established crd --all --timeout=5s
log "$("${K[@]}" get crd -o name | wc -l | tr -d ' ') CRDs established"

# One object of each CRD kind the program creates, and a Deployment on a fake node.
cat >"$TMP/objects.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: smoke}
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: smoke, namespace: smoke}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["smoke.example.com"]
    tls: {mode: MUTUAL, credentialName: smoke}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: smoke, namespace: smoke}
spec:
  hosts: ["smoke.example.com"]
  gateways: [smoke]
  http:
  - route:
    - destination: {host: httpbin.smoke.svc.cluster.local, port: {number: 8000}}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: smoke, namespace: smoke}
spec:
  serverName: smoke.example.com
  rootCAs: [{secret: smoke}]
  certificatesSecrets: [smoke]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: smoke}
spec:
  replicas: 2
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      containers:
      - name: httpbin
        image: smoke.invalid/httpbin:never-pulled
        ports: [{containerPort: 8000}]
EOF
"${K[@]}" apply -f "$TMP/objects.yaml" >"$TMP/logs/apply-objects.log"
log "applied Namespace, Node, Gateway, VirtualService, ServersTransport, Deployment"
wait_for "node Ready" 60 "${K[@]}" wait --for=condition=Ready node/kwok-node-0 --timeout=5s
wait_for "Deployment Available" "$WAIT" "${K[@]}" -n smoke wait --for=condition=Available deployment/httpbin --timeout=5s
log "pods: $("${K[@]}" -n smoke get pods -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}@{.spec.nodeName} {end}')"

# The program's objects, stack by stack (SMOKE_STACKS_DIR): what the real API server, with the real
# CRDs' schemas, accepts and refuses.
apply_stack() { # dir
  local dir="$1" name expect out count
  name="$(basename "$dir")"
  expect="$(tr -d '[:space:]' <"$dir/expect")"
  if [ -s "$dir/cluster.yaml" ]; then
    "${K[@]}" apply --server-side -f "$dir/cluster.yaml" >>"$TMP/logs/apply-stacks.log" 2>&1 ||
      die "stack $name: the cluster's own objects were refused"
  fi
  count="$("${K[@]}" create --dry-run=client -f "$dir/objects.yaml" -o name 2>/dev/null | wc -l | tr -d ' ')"
  if out="$("${K[@]}" apply --server-side --field-manager=smoke -f "$dir/objects.yaml" 2>&1)"; then
    [ "$expect" = "accepted" ] || die "stack $name: the API server accepted objects it should refuse"
    local back
    back="$("${K[@]}" get -f "$dir/objects.yaml" -o name 2>/dev/null | wc -l | tr -d ' ')"
    [ "$back" = "$count" ] || die "stack $name: applied $count objects but read back $back"
    "${K[@]}" delete -f "$dir/objects.yaml" --wait=true --timeout=90s >>"$TMP/logs/apply-stacks.log" 2>&1 ||
      die "stack $name: its objects were not deleted within 90s"
    log "stack $name: accepted $count objects, read back $back, deleted"
  else
    [ "$expect" = "refused" ] || die "stack $name: refused: $(printf '%s' "$out" | head -n 3 | tr '\n' ' ')"
    "${K[@]}" delete -f "$dir/objects.yaml" --ignore-not-found --wait=true --timeout=90s >>"$TMP/logs/apply-stacks.log" 2>&1 || true
    log "stack $name: refused as expected: $(printf '%s' "$out" | grep -m1 -i 'invalid\|error' | cut -c1-300)"
  fi
}
if [ -n "${SMOKE_STACKS_DIR:-}" ]; then
  [ -d "$SMOKE_STACKS_DIR" ] || die "SMOKE_STACKS_DIR $SMOKE_STACKS_DIR is not a folder"
  for stack in "$SMOKE_STACKS_DIR"/*/; do
    [ -f "$stack/objects.yaml" ] || continue
    apply_stack "${stack%/}"
  done
fi

# Deletion goes through the garbage collector and the namespace controller.
"${K[@]}" -n smoke delete deployment httpbin --cascade=foreground --wait=false >/dev/null
wait_for "Deployment deleted (foreground)" 60 bash -c '! "$@" -n smoke get deployment httpbin' _ "${K[@]}"
"${K[@]}" delete namespace smoke --wait=false >/dev/null
wait_for "Namespace finalized" "$WAIT" bash -c '! "$@" get namespace smoke' _ "${K[@]}"

STATUS=0
