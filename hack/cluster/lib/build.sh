# shellcheck shell=bash
# Builds the platform's binaries from Go modules into the version-keyed cache.

KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

kube_ldflags() {
  local flags="-s -w" pkg minor
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X '$pkg.gitVersion=$KUBE_VERSION' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=$minor'"
    flags+=" -X '$pkg.gitCommit=$KUBE_GIT_COMMIT' -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$KUBE_BUILD_DATE'"
  done
  printf '%s' "$flags"
}

binaries_present() {
  local c
  for c in "${KUBE_COMMANDS[@]}" etcd; do
    [ -x "$KUBE_BIN_DIR/$c" ] || return 1
  done
}

# Runs a long go build in the background and prints progress (step, elapsed) while it runs.
go_build_with_progress() {
  local what=$1 logfile=$2
  shift 2
  local started pid
  started=$(date +%s)
  ( "$@" ) >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "building $what... $(($(date +%s) - started))s elapsed (log: $logfile)"
  done
  if ! wait "$pid"; then
    log "ERROR: building $what failed after $(($(date +%s) - started))s; last lines of $logfile:"
    tail -n 30 "$logfile" >&2
    exit 1
  fi
  log "built $what in $(($(date +%s) - started))s"
}

build_kube_binaries() {
  if binaries_present; then
    return 0
  fi
  command -v go >/dev/null || die "go is not installed; it is needed once to build Kubernetes $KUBE_VERSION"
  mkdir -p "$KUBE_BIN_DIR" "$LOG_DIR"
  local tmp=$KUBE_BIN_DIR.partial
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "building Kubernetes $KUBE_VERSION (${KUBE_COMMANDS[*]}) from the Go module proxy; the first build takes tens of minutes"
  local pkgs=() c
  for c in "${KUBE_COMMANDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  # CGO_ENABLED=0 for all commands, kubelet included, so one compile of the shared packages serves
  # every binary (upstream links the kubelet with cgo; nothing this platform uses needs it).
  go_build_with_progress "Kubernetes $KUBE_VERSION" "$LOG_DIR/build-kubernetes.log" \
    env -C "$CLUSTER_HACK_DIR/gomod" CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "$(kube_ldflags)" -o "$tmp/" "${pkgs[@]}"
  go_build_with_progress "etcd $ETCD_VERSION" "$LOG_DIR/build-etcd.log" \
    env -C "$CLUSTER_HACK_DIR/gomod" CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
  mv "$tmp"/* "$KUBE_BIN_DIR/"
  rmdir "$tmp"
}

# metrics-server has its own module (no replace directives), built with go install into the cache.
build_metrics_server() {
  local out=$CACHE_DIR/metrics-server-$METRICS_SERVER_VERSION/bin
  [ -x "$out/metrics-server" ] && return 0
  mkdir -p "$out" "$LOG_DIR"
  go_build_with_progress "metrics-server $METRICS_SERVER_VERSION" "$LOG_DIR/build-metrics-server.log" \
    env CGO_ENABLED=0 GOBIN="$out" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
}

# crictl (no replace directives since cri-tools v1.31) lets `down` remove pod sandboxes through
# CRI, so CNI tears down the pod network, netns and iptables rules it made.
build_crictl() {
  [ -x "$KUBE_BIN_DIR/crictl" ] && return 0
  mkdir -p "$KUBE_BIN_DIR"
  go_build_with_progress "crictl $CRICTL_VERSION" "$LOG_DIR/build-crictl.log" \
    env CGO_ENABLED=0 GOBIN="$KUBE_BIN_DIR" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
}

# The add-ons (Traefik, CoreDNS, the NetworkPolicy controller) from the wrapper module
# hack/cluster/addons, in one `go build` so the packages they share compile once. Only the
# CoreDNS plugins the Corefile uses and only kube-router's NetworkPolicy controller are compiled,
# and Traefik without ACME's DNS-01 providers: the build uses a copy of the go-acme/lego module
# whose provider list (one generated file) is replaced by addons/trim/lego-dns-providers.go.in,
# through a temporary go.mod (-modfile) that points lego at the copy. The platform never requests
# ACME certificates; the ~190 providers and their cloud SDKs were a third of the build's packages.
ADDON_COMMANDS=(traefik coredns netpol)

addons_present() {
  local c
  for c in "${ADDON_COMMANDS[@]}"; do
    [ -x "$ADDONS_BIN_DIR/$c" ] || return 1
  done
}

# Writes the trimmed lego copy and the go.mod/go.sum that use it under $1; prints the go.mod path.
prepare_addons_modfile() {
  local work=$1 mod=$CLUSTER_HACK_DIR/addons lego
  lego=$(env -C "$mod" GOFLAGS=-mod=mod go mod download -json github.com/go-acme/lego/v4 | jq -r '.Dir // empty') ||
    die "could not download github.com/go-acme/lego/v4 (the Go module proxy must be reachable once)"
  [ -d "$lego" ] || die "go mod download gave no directory for github.com/go-acme/lego/v4"
  mkdir -p "$work"
  cp -r "$lego" "$work/lego"
  chmod -R u+w "$work/lego"
  rm -f "$work/lego/providers/dns/dns_providers_test.go"
  cp "$mod/trim/lego-dns-providers.go.in" "$work/lego/providers/dns/zz_gen_dns_providers.go"
  cp "$mod/go.mod" "$mod/go.sum" "$work/"
  printf '\n// Generated by hack/cluster/lib/build.sh: lego without its DNS-01 providers.\nreplace github.com/go-acme/lego/v4 => %s\n' \
    "$work/lego" >>"$work/go.mod"
  printf '%s\n' "$work/go.mod"
}

build_addons() {
  addons_present && return 0
  command -v go >/dev/null || die "go is not installed; it is needed once to build the add-ons"
  mkdir -p "$ADDONS_BIN_DIR" "$LOG_DIR"
  local tmp=$ADDONS_BIN_DIR.partial modfile
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "building Traefik $TRAEFIK_VERSION, CoreDNS $COREDNS_VERSION and kube-router $KUBE_ROUTER_VERSION's NetworkPolicy controller"
  modfile=$(prepare_addons_modfile "$tmp/src")
  go_build_with_progress "the add-ons ($ADDONS_KEY)" "$LOG_DIR/build-addons.log" \
    env -C "$CLUSTER_HACK_DIR/addons" CGO_ENABLED=0 GOFLAGS=-mod=mod go build -modfile "$modfile" -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
    -o "$tmp/" ./cmd/coredns ./cmd/netpol github.com/traefik/traefik/v3/cmd/traefik
  rm -rf "$tmp/src"
  mv "$tmp"/* "$ADDONS_BIN_DIR/"
  rmdir "$tmp"
  gateway_api_crd_files
}

# Every Go build of the platform, one at a time per cache: `make test` starts `cluster build` in the
# background while the static lanes run, and the `up` that follows waits here for it, then finds the
# binaries built (two builds at once would remove each other's .partial directories).
build_all() {
  mkdir -p "$CACHE_DIR" "$LOG_DIR"
  local lock=$CACHE_DIR/build.lock
  exec 9>"$lock"
  if ! flock -n 9; then
    log "waiting for another build of the platform (lock $lock)"
    flock 9
  fi
  build_kube_binaries
  build_crictl
  build_metrics_server
  build_addons
  flock -u 9
  exec 9>&-
}
