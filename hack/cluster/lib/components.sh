# shellcheck shell=bash
# One ensure_<component> function per process of the platform: each is a no-op when the process is
# already running and healthy, otherwise it writes its configuration, starts it and waits for health.
# CHANGED counts the components an `up` had to start, so a second `up` can report "no change".

CHANGED=0

started() { CHANGED=$((CHANGED + 1)); log "started $1 (log: $LOG_DIR/$1.log)"; }

docker_ok() { docker info >/dev/null 2>&1; }

ensure_docker() {
  if docker_ok; then
    return 0
  fi
  command -v dockerd >/dev/null || die "dockerd is not installed (Debian package docker.io; .ci/run installs it)"
  remember_sysctl net.ipv4.ip_forward
  touch "$RUN_DIR/docker.started"
  start_daemon docker dockerd --host unix:///var/run/docker.sock
  wait_until docker 60 docker_ok
  started docker
}

registry_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY_ADDR/v2/")" = 401 ]; }

ensure_registry() {
  local dir=$STATE_DIR/registry
  mkdir -p "$dir/data"
  if [ ! -s "$dir/password" ]; then
    (umask 077 && openssl rand -hex 16 >"$dir/password")
  fi
  htpasswd -Bbn "$REGISTRY_USER" "$(cat "$dir/password")" >"$dir/htpasswd.new" 2>/dev/null
  # Keep the bcrypt file stable when the password did not change, so a running registry is not disturbed.
  if [ -s "$dir/htpasswd" ] && htpasswd -vb "$dir/htpasswd" "$REGISTRY_USER" "$(cat "$dir/password")" >/dev/null 2>&1; then
    rm -f "$dir/htpasswd.new"
  else
    mv "$dir/htpasswd.new" "$dir/htpasswd"
  fi
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
auth:
  htpasswd:
    realm: userservice-local
    path: $dir/htpasswd
EOF
  is_running registry && registry_ok && return 0
  stop_daemon registry
  start_daemon registry docker-registry serve "$dir/config.yml"
  wait_until registry 30 registry_ok
  started registry
}

docker_login_registry() {
  docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY_ADDR" \
    <"$STATE_DIR/registry/password" >/dev/null 2>&1 || die "docker login to $REGISTRY_ADDR failed"
}

# Health answers are read whole before matching (no `curl | grep -q` under pipefail: SIGPIPE).
answer_has() { # url pattern [curl options...]
  local url=$1 pattern=$2 body
  shift 2
  body=$(curl -sf "$@" "$url") || return 1
  grep -q -- "$pattern" <<<"$body"
}

etcd_ok() { answer_has http://127.0.0.1:2379/health '"health":"true"'; }

ensure_etcd() {
  is_running etcd && etcd_ok && return 0
  stop_daemon etcd
  mkdir -p "$STATE_DIR/etcd"
  chmod 700 "$STATE_DIR/etcd"
  start_daemon etcd etcd --name userservice --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster userservice=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --log-level warn
  wait_until etcd 60 etcd_ok
  started etcd
}

write_audit_policy() {
  cat >"$STATE_DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
# Metadata (who, verb, resource, namespace, name, response code) for every request, so tests can
# prove which calls a run made. Watches and node heartbeats are dropped: they are constant noise.
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [watch]
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: [leases]
    namespaces: [kube-node-lease]
  - level: Metadata
EOF
}

ensure_apiserver() {
  is_running kube-apiserver && api_ready && return 0
  stop_daemon kube-apiserver
  write_audit_policy
  start_daemon kube-apiserver kube-apiserver \
    --advertise-address "$(host_ip)" --bind-address 0.0.0.0 --secure-port "$API_PORT" \
    --etcd-servers http://127.0.0.1:2379 \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --client-ca-file "$PKI_DIR/ca.crt" \
    --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
    --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI_DIR/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
    --requestheader-client-ca-file "$PKI_DIR/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI_DIR/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI_DIR/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --audit-policy-file "$STATE_DIR/audit-policy.yaml" --audit-log-path "$LOG_DIR/audit.log" \
    --audit-log-maxsize 200 --audit-log-maxbackup 2 --audit-log-format json
  wait_until kube-apiserver 120 api_ready
  started kube-apiserver
}

healthz_ok() { answer_has "https://127.0.0.1:$1/healthz" ok -k; }

ensure_controller_manager() {
  is_running kube-controller-manager && healthz_ok 10257 && return 0
  stop_daemon kube-controller-manager
  local kc=$STATE_DIR/controller-manager.kubeconfig
  start_daemon kube-controller-manager kube-controller-manager \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --root-ca-file "$PKI_DIR/ca.crt" --service-account-private-key-file "$PKI_DIR/sa.key" \
    --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
    --use-service-account-credentials=true --controllers '*,bootstrapsigner,tokencleaner' \
    --allocate-node-cidrs=true --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --horizontal-pod-autoscaler-sync-period 10s
  wait_until kube-controller-manager 60 healthz_ok 10257
  started kube-controller-manager
}

ensure_scheduler() {
  is_running kube-scheduler && healthz_ok 10259 && return 0
  stop_daemon kube-scheduler
  local kc=$STATE_DIR/scheduler.kubeconfig
  start_daemon kube-scheduler kube-scheduler \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --leader-elect=false
  wait_until kube-scheduler 60 healthz_ok 10259
  started kube-scheduler
}

containerd_ok() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

write_containerd_config() {
  local dir=$STATE_DIR/containerd
  mkdir -p "$dir" "$STATE_DIR/cni/net.d"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  # The VM lacks CAP_SYS_RESOURCE: negative oom_score_adj values fail every sandbox otherwise.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY_ADDR"]
    endpoint = ["http://$REGISTRY_ADDR"]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."$REGISTRY_ADDR".auth]
    username = "$REGISTRY_USER"
    password = "$(cat "$STATE_DIR/registry/password")"
EOF
  chmod 600 "$dir/config.toml"
  cat >"$STATE_DIR/cni/net.d/10-userservice.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "userservice-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

ensure_containerd() {
  write_containerd_config
  is_running containerd && containerd_ok && return 0
  stop_daemon containerd
  start_daemon containerd containerd --config "$STATE_DIR/containerd/config.toml"
  wait_until containerd 30 containerd_ok
  started containerd
}

# The Docker engine's FORWARD policy is DROP: without these rules bridged pod traffic is dropped.
ensure_forward_rules() {
  local dir
  for dir in -i -o; do
    iptables -C FORWARD "$dir" "$CNI_BRIDGE" -m comment --comment "$FW_TAG" -j ACCEPT 2>/dev/null ||
      iptables -I FORWARD 1 "$dir" "$CNI_BRIDGE" -m comment --comment "$FW_TAG" -j ACCEPT
  done
}

kubelet_ok() { answer_has http://127.0.0.1:10248/healthz ok; }

# Writes the configuration to kubelet-config.yaml.new; ensure_kubelet compares it with the one the
# running kubelet started with.
write_kubelet_config() {
  mkdir -p "$STATE_DIR/kubelet"
  cat >"$STATE_DIR/kubelet-config.yaml.new" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
resolvConf: /etc/resolv.conf
# CoreDNS (manifests/coredns.yaml) behind the Service kube-dns.
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
serializeImagePulls: false
# No image GC: containerd 1.6 does not pin the sandbox image, and GC could delete it.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 200Mi
  nodefs.available: 2%
  imagefs.available: 2%
podPidsLimit: 4096
maxPods: 110
protectKernelDefaults: false
EOF
}

ensure_kubelet() {
  write_kubelet_config
  if is_running kubelet && kubelet_ok; then
    if cmp -s "$STATE_DIR/kubelet-config.yaml.new" "$STATE_DIR/kubelet-config.yaml"; then
      rm -f "$STATE_DIR/kubelet-config.yaml.new"
      return 0
    fi
    # A configuration change (such as clusterDNS) takes a restart; running pods keep running.
    log "the kubelet configuration changed: restarting the kubelet"
    diff "$STATE_DIR/kubelet-config.yaml" "$STATE_DIR/kubelet-config.yaml.new" >&2 || true
  fi
  stop_daemon kubelet
  mv "$STATE_DIR/kubelet-config.yaml.new" "$STATE_DIR/kubelet-config.yaml"
  remember_sysctl kernel.panic
  remember_sysctl kernel.panic_on_oops
  remember_sysctl vm.overcommit_memory
  start_daemon kubelet kubelet --config "$STATE_DIR/kubelet-config.yaml" \
    --kubeconfig "$STATE_DIR/kubelet.kubeconfig" --root-dir "$STATE_DIR/kubelet" \
    --hostname-override "$NODE_NAME" --node-ip "$(host_ip)" \
    --node-labels "userservice.local/platform=true"
  wait_until kubelet 90 kubelet_ok
  started kubelet
}

kube_proxy_ok() { curl -sf http://127.0.0.1:10256/healthz >/dev/null; }

ensure_kube_proxy() {
  is_running kube-proxy && kube_proxy_ok && return 0
  stop_daemon kube-proxy
  remember_sysctl net.ipv4.conf.all.route_localnet
  cat >"$STATE_DIR/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $STATE_DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zero values leave the machine's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start_daemon kube-proxy kube-proxy --config "$STATE_DIR/kube-proxy-config.yaml"
  wait_until kube-proxy 60 kube_proxy_ok
  started kube-proxy
}

prometheus_ok() { curl -sf "http://$PROMETHEUS_ADDR/-/ready" >/dev/null; }

pod_discovery_ok() { [ -s "$STATE_DIR/prometheus/targets/pods.json" ]; }

ensure_pod_discovery() {
  mkdir -p "$STATE_DIR/prometheus/targets"
  is_running pod-discovery && pod_discovery_ok && return 0
  stop_daemon pod-discovery
  start_daemon pod-discovery "$CLUSTER_HACK_DIR/lib/pod-discovery.sh" "https://127.0.0.1:$API_PORT" "$PKI_DIR" \
    "$STATE_DIR/prometheus/targets/pods.json" 2
  wait_until pod-discovery 30 pod_discovery_ok
  started pod-discovery
}

ensure_prometheus() {
  local dir=$STATE_DIR/prometheus
  mkdir -p "$dir/data"
  ensure_pod_discovery
  cat >"$dir/prometheus.yml.new" <<EOF
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$PROMETHEUS_ADDR']
  # Every pod annotated prometheus.io/scrape=true, listed from the API server by pod-discovery.sh.
  - job_name: kubernetes-pods
    file_sd_configs:
      - files: ['$dir/targets/pods.json']
EOF
  local reload=0
  cmp -s "$dir/prometheus.yml.new" "$dir/prometheus.yml" || reload=1
  mv "$dir/prometheus.yml.new" "$dir/prometheus.yml"
  if is_running prometheus && prometheus_ok; then
    if [ "$reload" = 1 ]; then
      curl -sf -X POST "http://$PROMETHEUS_ADDR/-/reload" >/dev/null || die "prometheus did not reload $dir/prometheus.yml"
      log "reloaded prometheus configuration"
      CHANGED=$((CHANGED + 1))
    fi
    return 0
  fi
  stop_daemon prometheus
  start_daemon prometheus prometheus --config.file "$dir/prometheus.yml" \
    --storage.tsdb.path "$dir/data" --storage.tsdb.retention.time 2d \
    --web.listen-address "$PROMETHEUS_ADDR" --web.enable-lifecycle
  wait_until prometheus 60 prometheus_ok
  started prometheus
}

# NetworkPolicy enforcement beside the bridge CNI: kube-router's NetworkPolicy controller
# (hack/cluster/addons/cmd/netpol) on the host, like kube-proxy. It programs iptables chains
# (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*) and ipsets (KUBE-SRC-*, KUBE-DST-*) that `down`
# removes. Pods that no NetworkPolicy selects keep accepting everything.
NETPOL_HEALTH_ADDR=127.0.0.1:20244

netpol_ok() { answer_has "http://$NETPOL_HEALTH_ADDR/healthz" ok; }

ensure_netpol() {
  apply_manifest "$CLUSTER_HACK_DIR/manifests/netpol-rbac.yaml"
  # A rebuilt controller (new add-ons key) replaces the running one.
  if is_running netpol && netpol_ok &&
    [ "$(readlink "/proc/$(pid_of netpol)/exe")" = "$ADDONS_BIN_DIR/netpol" ]; then
    return 0
  fi
  stop_daemon netpol
  command -v ipset >/dev/null || die "ipset is not installed (Debian package ipset, in packages.txt)"
  start_daemon netpol "$ADDONS_BIN_DIR/netpol" --kubeconfig "$STATE_DIR/netpol.kubeconfig" \
    --hostname-override "$NODE_NAME" --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-node-port-range 30000-32767 --health-addr "$NETPOL_HEALTH_ADDR"
  wait_until netpol 60 netpol_ok
  started netpol
}
