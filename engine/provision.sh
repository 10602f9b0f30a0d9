#!/usr/bin/env bash
# Provision the engine tier's tools: the Pulumi CLI, its Python language host, the providers, and a
# Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kwok) plus the Istio and Traefik CRDs. Versions come from engine/versions.env only.
#
# A binary already on PATH is used as it is (set ENGINE_USE_PATH=0 to build everything); otherwise it
# is built from Go modules through the Go module proxy into
#   ${ENGINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iks-alb-istio-mtls/engine}/<name>-<version>/
# and linked into the bin/ folder beside those, which the script prints last ("bin: <dir>").
# Warm runs only check stamps and links. A piece that cannot be built is reported with its module
# and version on one line ("FAIL ..."); the script goes on with the others and exits 1 at the end.
# Timings and sizes of each build go to <cache>/timings.tsv.  Docs: docs/engine.md.
#
# Usage: engine/provision.sh [NAME ...]   (names: etcd kwok kubernetes pulumi pulumi-language-python
#        pulumi-analyzer-policy-python pulumi-resource-kubernetes pulumi-resource-command
#        pulumi-resource-tls crds venv; default: all, in that order)
set -euo pipefail
shopt -s inherit_errexit

ENGINE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
. "$ENGINE_DIR/versions.env"

CACHE_ROOT="${ENGINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iks-alb-istio-mtls/engine}"
BIN_DIR="$CACHE_ROOT/bin"
USE_PATH="${ENGINE_USE_PATH:-1}"
TIMINGS="$CACHE_ROOT/timings.tsv"
PY="${PYTHON:-python3}"
mkdir -p "$BIN_DIR"
export CGO_ENABLED=0

FAILURES=()
ALL=(etcd kwok kubernetes pulumi pulumi-language-python pulumi-analyzer-policy-python
  pulumi-resource-kubernetes pulumi-resource-command pulumi-resource-tls crds venv)

say() { printf '%s\n' "$*" >&2; }
fail() { # component module@version message
  FAILURES+=("$1")
  say "FAIL $1: $2: $3"
}

# The first line of a build log that says what went wrong (go's own messages start with "go: ").
first_error() {
  local log="$1" line
  # go prints the proxy's reason ("server response: ...") on the line after a 403: keep both.
  line="$(grep -vE '^go: (downloading|finding|extracting|creating new go.mod|to add module|added|upgraded|found) ' "$log" |
    awk '/403 Forbidden|not available|go: |: error|ERROR|cannot |undefined: |no required module|missing go.sum/ {
           l = $0; if ((getline nxt) > 0 && nxt ~ /server response:/) l = l " (" nxt ")"; print l; exit }' || true)"
  if [ -z "$line" ]; then line="$(grep -v '^\s*$' "$log" | tail -n1 || true)"; fi
  printf '%s' "${line:-no output (see $log)}" | tr -s ' \t' ' ' | cut -c1-400
}

# An executable named $1 on PATH outside our own bin/, or nothing.
on_path() {
  local name="$1" p
  [ "$USE_PATH" = "1" ] || return 1
  p="$(PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$BIN_DIR" | paste -sd: -)" command -v "$name" 2>/dev/null || true)"
  [ -n "$p" ] && [ -x "$p" ] && printf '%s' "$p"
}

link() { ln -sfn "$1" "$BIN_DIR/$(basename "${2:-$1}")"; }

record() { # name version seconds result
  local size
  size="$(du -sm "$CACHE_ROOT/$1-$2" 2>/dev/null | cut -f1 || echo 0)"
  printf '%s\t%s\t%s\t%s\t%sMB\t%s\n' "$1" "$2" "$3" "$4" "$size" "$(date -u +%FT%TZ)" >>"$TIMINGS"
}

# go mod download -json MOD@VER, printing the JSON field $3 (GoMod, Dir) or failing with go's error.
mod_field() {
  local out
  out="$(go mod download -json "$1@$2" 2>/dev/null || true)"
  printf '%s' "$out" | "$PY" -c '
import json, sys
d = json.loads(sys.stdin.read() or "{}")
if d.get("Error") or not d.get(sys.argv[1]):
    err = d.get("Error") or "no answer from go mod download"
    print("go: " + " ".join(part.strip() for part in err.splitlines()), file=sys.stderr)
    sys.exit(1)
print(d[sys.argv[1]])' "$3"
}

# Make the wrapper module $1/src requiring $2@$3; upstream replaces are translated by wrapper_mod.py
# (extra arguments go to it). Then one `tool` line per package in $TOOLS and `go mod tidy`.
make_wrapper() {
  local dir="$1" mod="$2" ver="$3" gomod flags
  shift 3
  rm -rf "$dir/src"
  mkdir -p "$dir/src"
  gomod="$(mod_field "$mod" "$ver" GoMod)"
  cd "$dir/src"
  go mod init local/engine-wrapper
  flags="$("$PY" "$ENGINE_DIR/wrapper_mod.py" "$gomod" "$@")"
  # shellcheck disable=SC2086
  go mod edit "-require=$mod@$ver" $flags
  for pkg in $TOOLS; do go mod edit "-tool=$pkg"; done
  # Without tools the caller adds its own main package first (tidy would drop the requirement).
  if [ -n "$TOOLS" ]; then go mod tidy; fi
}

go_build() { # out pkg ldflags
  (cd "$DIR/src" && go build -trimpath -ldflags "-s -w $3" -o "$DIR/bin/$1" "$2")
}

# Run build_<name> in a subshell with its log; keep going on failure.
component() {
  local name="$1" ver="$2" module="$3"
  shift 3
  local bins=("$@") b all=1 p
  DIR="$CACHE_ROOT/$name-$ver"
  # Prefer binaries already on PATH (all of this component's, or none).
  if [ "$USE_PATH" = "1" ] && [ "$PREFER_PATH" = "1" ]; then
    for b in "${bins[@]}"; do p="$(on_path "$b")" || { all=0; break; }; done
    if [ "$all" = "1" ]; then
      for b in "${bins[@]}"; do link "$(on_path "$b")"; say "ok   $b (from PATH: $(on_path "$b"))"; done
      return 0
    fi
  fi
  if [ -f "$DIR/.built" ]; then
    all=1
    for b in "${bins[@]}"; do [ -x "$DIR/bin/$b" ] || all=0; done
    if [ "$all" = "1" ]; then
      for b in "${bins[@]}" ${EXTRA_LINKS:-}; do link "$DIR/bin/$b"; done
      say "ok   $name $ver (cached: $DIR)"
      return 0
    fi
  fi
  mkdir -p "$DIR/bin"
  say "...  building $name $ver from $module (log: $DIR/build.log)"
  local t0 t1 rc=0
  t0="$(date +%s)"
  # Not `( ... ) || rc=$?`: bash ignores set -e inside a subshell that is the left side of ||.
  set +e
  ( set -euo pipefail; "build_${name//-/_}" ) >"$DIR/build.log" 2>&1
  rc=$?
  set -e
  t1="$(date +%s)"
  if [ "$rc" = "0" ]; then
    date -u +%FT%TZ >"$DIR/.built"
    for b in "${bins[@]}" ${EXTRA_LINKS:-}; do link "$DIR/bin/$b"; done
    say "ok   $name $ver built in $((t1 - t0))s"
    record "$name" "$ver" "$((t1 - t0))" ok
  else
    # No stale link to an older build of this piece: a failure leaves it missing from bin/.
    for b in "${bins[@]}"; do rm -f "$BIN_DIR/$b"; done
    fail "$name" "$module" "$(first_error "$DIR/build.log") (after $((t1 - t0))s; log: $DIR/build.log)"
    record "$name" "$ver" "$((t1 - t0))" failed
  fi
}

# --- the components ---------------------------------------------------------------------------------

build_etcd() {
  TOOLS="go.etcd.io/etcd/server/v3"
  make_wrapper "$DIR" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" --sibling-version "$ETCD_VERSION"
  go_build etcd go.etcd.io/etcd/server/v3 ""
}

build_kwok() {
  TOOLS="sigs.k8s.io/kwok/cmd/kwok"
  make_wrapper "$DIR" sigs.k8s.io/kwok "$KWOK_VERSION" --sibling-version "$KWOK_VERSION"
  go_build kwok sigs.k8s.io/kwok/cmd/kwok \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}"
  # The node and pod lifecycle stages kwokctl gives kwok (fast node start, heartbeat, pod stages),
  # from the same module zip; engine/smoke.sh passes them with --config.
  local zip f
  zip="$(mod_field sigs.k8s.io/kwok "$KWOK_VERSION" Dir)"
  rm -rf "$DIR/stages"
  mkdir -p "$DIR/stages"
  for f in "$zip"/kustomize/stage/node/fast/*.yaml "$zip"/kustomize/stage/node/heartbeat/*.yaml \
    "$zip"/kustomize/stage/pod/general/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) continue ;; esac
    install -m 0644 "$f" "$DIR/stages/"
  done
}

KUBE_CMDS="kube-apiserver kube-controller-manager kube-scheduler kubectl"
build_kubernetes() {
  local minor="${KUBERNETES_VERSION#v1.}" x stamp=""
  minor="${minor%%.*}"
  TOOLS=""
  for x in $KUBE_CMDS; do TOOLS="$TOOLS k8s.io/kubernetes/cmd/$x"; done
  make_wrapper "$DIR" k8s.io/kubernetes "$KUBERNETES_VERSION" --sibling-version "$KUBERNETES_STAGING_VERSION"
  for x in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp="$stamp -X $x.gitVersion=$KUBERNETES_VERSION -X $x.gitMajor=1 -X $x.gitMinor=$minor -X $x.gitTreeState=clean"
  done
  for x in $KUBE_CMDS; do
    local t0
    t0="$(date +%s)"
    go_build "$x" "k8s.io/kubernetes/cmd/$x" "$stamp"
    echo "built $x in $(($(date +%s) - t0))s"
  done
}

build_pulumi() {
  TOOLS="github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
  make_wrapper "$DIR" github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION" --sibling-version "$PULUMI_VERSION"
  go_build pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
  # The scripts the language host and dynamic providers start, shipped in the sdk module zip.
  local sdk
  sdk="$(mod_field github.com/pulumi/pulumi/sdk/v3 "$PULUMI_VERSION" Dir)"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$DIR/bin/"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$DIR/bin/"
}

LANGUAGE_PYTHON_MODULE=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
build_pulumi_language_python() {
  if [ -z "$PULUMI_LANGUAGE_PYTHON_MODULE_VERSION" ]; then
    # Ask the proxy what it has, so the log carries its answer.
    go list -m -versions "$LANGUAGE_PYTHON_MODULE" || true
    echo "go: $LANGUAGE_PYTHON_MODULE: no version of the $PULUMI_VERSION commit on the module proxy (PULUMI_LANGUAGE_PYTHON_MODULE_VERSION is empty)"
    return 1
  fi
  TOOLS="$LANGUAGE_PYTHON_MODULE"
  make_wrapper "$DIR" "$LANGUAGE_PYTHON_MODULE" "$PULUMI_LANGUAGE_PYTHON_MODULE_VERSION" \
    --sibling-version "$PULUMI_VERSION"
  go_build pulumi-language-python "$LANGUAGE_PYTHON_MODULE" \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
  local sdk
  sdk="$(mod_field github.com/pulumi/pulumi/sdk/v3 "$PULUMI_VERSION" Dir)"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$DIR/bin/"
}

build_pulumi_analyzer_policy_python() {
  # Upstream ships it from github.com/pulumi/pulumi-policy; ask the proxy for that module.
  go list -m -versions github.com/pulumi/pulumi-policy
}

build_pulumi_resource_kubernetes() {
  local mod=github.com/pulumi/pulumi-kubernetes/provider/v4 cmd
  TOOLS=""
  make_wrapper "$DIR" "$mod" "$PULUMI_KUBERNETES_MODULE_VERSION" --sibling-version "v$PULUMI_KUBERNETES_VERSION" \
    --pin "github.com/pulumi/pulumi-kubernetes/sdk/v4=$PULUMI_KUBERNETES_SDK_MODULE_VERSION"
  # main.go go:embeds schema-embed.json and terraform-mapping-embed.json, which upstream generates
  # (its generate.go) from the committed schema.json / terraform-mapping.json: do the same here.
  cmd="$(mod_field "$mod" "$PULUMI_KUBERNETES_MODULE_VERSION" Dir)/cmd/pulumi-resource-kubernetes"
  mkdir -p "$DIR/src/cmd/pulumi-resource-kubernetes"
  install -m 0644 "$cmd/main.go" "$cmd/generate.go" "$cmd/schema.json" "$cmd/terraform-mapping.json" \
    "$DIR/src/cmd/pulumi-resource-kubernetes/"
  cd "$DIR/src/cmd/pulumi-resource-kubernetes"
  go mod tidy -C "$DIR/src"
  VERSION="$PULUMI_KUBERNETES_VERSION" go run -mod=mod ./generate.go
  rm -f generate.go schema.json terraform-mapping.json
  go_build pulumi-resource-kubernetes ./cmd/pulumi-resource-kubernetes \
    "-X $mod/pkg/version.Version=$PULUMI_KUBERNETES_VERSION"
}

build_pulumi_resource_command() {
  TOOLS="github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command"
  make_wrapper "$DIR" github.com/pulumi/pulumi-command/provider "$PULUMI_COMMAND_MODULE_VERSION" \
    --sibling-version "$PULUMI_COMMAND_MODULE_VERSION"
  go_build pulumi-resource-command "$TOOLS" \
    "-X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$PULUMI_COMMAND_VERSION"
}

build_pulumi_resource_tls() {
  # Only the module's availability is tried here: its ./shim replace and generated schema-embed.json
  # need more once the proxy serves the module (docs/engine.md).
  local mod=github.com/pulumi/pulumi-tls/provider/v5
  mod_field "$mod" "$PULUMI_TLS_MODULE_VERSION" GoMod
  echo "go: $mod@$PULUMI_TLS_MODULE_VERSION is on the proxy now: finish build_pulumi_resource_tls (./shim, schema-embed.json)"
  return 1
}

build_crds() {
  local istio traefik
  istio="$(mod_field istio.io/api "$ISTIO_API_VERSION" Dir)"
  traefik="$(mod_field github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" Dir)"
  mkdir -p "$DIR/crds"
  install -m 0644 "$istio/kubernetes/customresourcedefinitions.gen.yaml" "$DIR/crds/istio-$ISTIO_API_VERSION.yaml"
  install -m 0644 "$traefik/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" \
    "$DIR/crds/traefik-$TRAEFIK_VERSION.yaml"
}

# --- main ----------------------------------------------------------------------------------------------

command -v go >/dev/null || { say "FAIL go: the go command is not on PATH (Go >= $ENGINE_GO_MIN is needed)"; exit 1; }
[ -f "$TIMINGS" ] || printf 'name\tversion\tseconds\tresult\tsize\twhen\n' >"$TIMINGS"

run() {
  local EXTRA_LINKS="" PREFER_PATH=1 rc
  case "$1" in
    etcd) component etcd "$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" etcd ;;
    kwok) component kwok "$KWOK_VERSION" "sigs.k8s.io/kwok@$KWOK_VERSION" kwok ;;
    kubernetes)
      # A kubectl on PATH is used only when within one minor of the server (kubectl's skew policy).
      PREFER_PATH=0
      # shellcheck disable=SC2086
      component kubernetes "$KUBERNETES_VERSION" "k8s.io/kubernetes@$KUBERNETES_VERSION" $KUBE_CMDS
      local k minor v
      if k="$(on_path kubectl)"; then
        v="$("$k" version --client -o json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["minor"].rstrip("+"))' 2>/dev/null || true)"
        minor="${KUBERNETES_VERSION#v1.}"
        minor="${minor%%.*}"
        if [ -n "$v" ] && [ "$((v - minor))" -le 1 ] && [ "$((minor - v))" -le 1 ]; then
          link "$k"
          say "ok   kubectl (from PATH: $k, 1.$v)"
        fi
      fi
      ;;
    pulumi)
      EXTRA_LINKS="pulumi-language-python-exec pulumi-resource-pulumi-python"
      component pulumi "$PULUMI_VERSION" "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" pulumi
      ;;
    pulumi-language-python)
      EXTRA_LINKS="pulumi-language-python-exec"
      component pulumi-language-python "$PULUMI_VERSION" \
        "$LANGUAGE_PYTHON_MODULE@${PULUMI_LANGUAGE_PYTHON_MODULE_VERSION:-<pseudo-version of $PULUMI_VERSION>}" \
        pulumi-language-python
      ;;
    pulumi-analyzer-policy-python)
      component pulumi-analyzer-policy-python "$PULUMI_VERSION" "github.com/pulumi/pulumi-policy" \
        pulumi-analyzer-policy-python
      ;;
    pulumi-resource-kubernetes)
      component pulumi-resource-kubernetes "$PULUMI_KUBERNETES_VERSION" \
        "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_MODULE_VERSION" pulumi-resource-kubernetes
      ;;
    pulumi-resource-command)
      component pulumi-resource-command "$PULUMI_COMMAND_VERSION" \
        "github.com/pulumi/pulumi-command/provider@$PULUMI_COMMAND_MODULE_VERSION" pulumi-resource-command
      ;;
    pulumi-resource-tls)
      component pulumi-resource-tls "$PULUMI_TLS_VERSION" \
        "github.com/pulumi/pulumi-tls/provider/v5@$PULUMI_TLS_MODULE_VERSION" pulumi-resource-tls
      ;;
    crds)
      PREFER_PATH=0
      DIR="$CACHE_ROOT/crds-$ISTIO_API_VERSION-$TRAEFIK_VERSION"
      if [ -f "$DIR/.built" ]; then
        say "ok   crds (cached: $DIR/crds)"
      else
        mkdir -p "$DIR"
        set +e
        (set -euo pipefail; build_crds) >"$DIR/build.log" 2>&1
        rc=$?
        set -e
        if [ "$rc" = "0" ]; then
          date -u +%FT%TZ >"$DIR/.built"
          say "ok   crds in $DIR/crds"
        else
          fail crds "istio.io/api@$ISTIO_API_VERSION, github.com/traefik/traefik/v3@$TRAEFIK_VERSION" "$(first_error "$DIR/build.log")"
        fi
      fi
      ln -sfn "$DIR/crds" "$CACHE_ROOT/crds"
      ;;
    venv)
      # The Python side: a virtualenv from engine/requirements.txt (SDKs pinned to the built providers).
      local key venv
      key="$(cat "$ENGINE_DIR/requirements.txt" "$ENGINE_DIR/../requirements.txt" | sha256sum | cut -c1-12)"
      venv="$CACHE_ROOT/venv-$key"
      if [ -x "$venv/bin/python" ] && [ -f "$venv/.built" ]; then
        say "ok   venv (cached: $venv)"
      else
        rm -rf "$venv"
        set +e
        ("$PY" -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
          -r "$ENGINE_DIR/requirements.txt") >"$CACHE_ROOT/venv.log" 2>&1
        rc=$?
        set -e
        if [ "$rc" = "0" ]; then
          date -u +%FT%TZ >"$venv/.built"
          say "ok   venv $venv"
        else
          fail venv "engine/requirements.txt" "$(first_error "$CACHE_ROOT/venv.log")"
        fi
      fi
      ln -sfn "$venv" "$CACHE_ROOT/venv"
      ;;
    *) say "FAIL $1: unknown name (known: ${ALL[*]})"; FAILURES+=("$1") ;;
  esac
}

if [ "$#" -eq 0 ]; then set -- "${ALL[@]}"; fi
for name in "$@"; do run "$name"; done

printf 'bin: %s\n' "$BIN_DIR"
printf 'crds: %s\n' "$CACHE_ROOT/crds"
printf 'venv: %s\n' "$CACHE_ROOT/venv"
if [ "${#FAILURES[@]}" -gt 0 ]; then
  say "provision: ${#FAILURES[@]} failed: ${FAILURES[*]}"
  exit 1
fi
