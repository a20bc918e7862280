# shellcheck shell=bash
# The cluster PKI, made with openssl: one cluster CA, a front-proxy CA for the aggregation layer,
# serving and client certificates, the service-account key pair and the kubeconfigs.

pki_req() { # name subject [sans] [ca-prefix]: key + certificate signed by the CA
  local name=$1 subj=$2 sans=${3:-} ca=${4:-ca}
  [ -s "$PKI_DIR/$name.crt" ] && return 0
  local ext=$PKI_DIR/$name.ext
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl genrsa -out "$PKI_DIR/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI_DIR/$name.key" -subj "$subj" -out "$PKI_DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/$ca.crt" -CAkey "$PKI_DIR/$ca.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
  rm -f "$PKI_DIR/$name.csr" "$ext"
}

pki_ca() {
  local name=$1 cn=$2
  [ -s "$PKI_DIR/$name.crt" ] && return 0
  openssl genrsa -out "$PKI_DIR/$name.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI_DIR/$name.key" -subj "/CN=$cn" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI_DIR/$name.crt" 2>/dev/null
}

write_kubeconfig() { # file user cert-name [server]
  local file=$1 user=$2 cert=$3 server=${4:-https://127.0.0.1:$API_PORT}
  [ -s "$file" ] && return 0
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: userservice-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI_DIR/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI_DIR/$cert.key")
contexts:
- name: userservice-local
  context:
    cluster: userservice-local
    user: $user
current-context: userservice-local
EOF
  chmod 600 "$file"
}

ensure_pki() {
  local ip
  ip=$(host_ip)
  mkdir -p "$PKI_DIR"
  chmod 700 "$PKI_DIR"
  # A host address change (new machine, same state dir) invalidates the serving certificates.
  if [ -s "$PKI_DIR/host-ip" ] && [ "$(cat "$PKI_DIR/host-ip")" != "$ip" ]; then
    log "host address changed from $(cat "$PKI_DIR/host-ip") to $ip: regenerating PKI"
    rm -rf "${PKI_DIR:?}"/* "$STATE_DIR"/*.kubeconfig
  fi
  echo "$ip" >"$PKI_DIR/host-ip"
  pki_ca ca userservice-local-ca
  pki_ca front-proxy-ca userservice-local-front-proxy-ca
  pki_req apiserver "/CN=kube-apiserver" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$KUBERNETES_SERVICE_IP,IP:$ip"
  pki_req apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  pki_req front-proxy-client "/CN=front-proxy-client" "" front-proxy-ca
  pki_req admin "/O=system:masters/CN=kubernetes-admin"
  pki_req controller-manager "/CN=system:kube-controller-manager"
  pki_req scheduler "/CN=system:kube-scheduler"
  pki_req kube-proxy "/CN=system:kube-proxy"
  pki_req kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME"
  pki_req kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$ip"
  pki_req prometheus "/CN=userservice:prometheus"
  pki_req netpol "/CN=userservice:netpol"
  [ -s "$PKI_DIR/sa.key" ] || {
    openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
  }
  write_kubeconfig "$KUBECONFIG_ADMIN" kubernetes-admin admin
  write_kubeconfig "$STATE_DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$STATE_DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
  write_kubeconfig "$STATE_DIR/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  write_kubeconfig "$STATE_DIR/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet-client
  write_kubeconfig "$STATE_DIR/netpol.kubeconfig" userservice:netpol netpol
}
