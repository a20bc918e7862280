"""Proves the local platform (hack/cluster) is a working Kubernetes, on every CI run.

Everything here talks to the real components: the API server, kubelet, containerd, kube-proxy,
the Docker engine, the htpasswd-protected registry, Prometheus, metrics-server, Traefik (Ingress
and Gateway API), CoreDNS and the NetworkPolicy controller.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("USERSERVICE_CLUSTER_DIR", REPO / ".cluster"))
KUBECONFIG = Path(os.environ.get("K8S_AUTH_KUBECONFIG", STATE / "admin.kubeconfig"))
REGISTRY = "127.0.0.1:5000"
PROMETHEUS = "http://127.0.0.1:9090"
TESTAPP = Path(__file__).parent / "testapp"

# kubectl comes from the platform's version-keyed cache; make it findable when pytest runs outside make.
_bindir = subprocess.run(
    [str(REPO / "hack/cluster/cluster"), "bindir"], capture_output=True, text=True, check=False
).stdout.strip()
if _bindir and _bindir not in os.environ.get("PATH", ""):
    os.environ["PATH"] = _bindir + os.pathsep + os.environ.get("PATH", "")


def run(*args: str, check: bool = True, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout, **kw)


def kubectl(*args: str, check: bool = True, timeout: int = 120) -> str:
    return run("kubectl", "--kubeconfig", str(KUBECONFIG), *args, check=check, timeout=timeout).stdout


def cluster_reachable() -> bool:
    if not KUBECONFIG.exists():
        return False
    try:
        return (
            run(
                "kubectl", "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz", check=False, timeout=10
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


# Without the platform these tests fail: a run that tested nothing must not read as passed.
# USERSERVICE_SKIP_CLUSTER_TESTS=1 skips them on purpose (a machine that cannot run the platform).
if not cluster_reachable():
    if os.environ.get("USERSERVICE_SKIP_CLUSTER_TESTS") != "1":
        raise pytest.UsageError(
            f"no local cluster reachable through {KUBECONFIG}: run `make cluster`, "
            "or set USERSERVICE_SKIP_CLUSTER_TESTS=1 to skip the platform tests on purpose"
        )
    pytestmark = pytest.mark.skip(reason="no local cluster and USERSERVICE_SKIP_CLUSTER_TESTS=1")


def answered_by_all(host: str, pods: set):
    """A predicate for wait_for: true once every pod in ``pods`` has answered through the Ingress for ``host``."""
    seen: set = set()

    def check() -> bool:
        status, body = http_get(INGRESS_HTTP + "/", host)
        if status == 200:
            seen.add(body.removeprefix("hello from "))
        return seen == pods

    return check


def wait_for(what: str, predicate, timeout: float = 120, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error on timeout
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last result: {last!r}")


@pytest.fixture(scope="module")
def namespace():
    name = f"platform-test-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def pushed_image():
    """Builds the test app with the Docker engine and pushes it to the registry after a real login."""
    password = (STATE / "registry" / "password").read_text().strip()
    base = os.environ.get("USERSERVICE_BASE_IMAGE")
    if not base:
        env_lines = run(str(REPO / "hack/cluster/cluster"), "env").stdout.splitlines()
        base = next(line.split("=", 1)[1] for line in env_lines if "USERSERVICE_BASE_IMAGE=" in line)
    tag = f"{REGISTRY}/platform-test/app:{uuid.uuid4().hex[:8]}"
    run("docker", "login", "--username", "deploy", "--password-stdin", REGISTRY, input=password)
    run("docker", "build", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(TESTAPP))
    run("docker", "push", tag)
    return tag


def test_node_ready_and_real_version():
    version = json.loads(kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"].startswith("v1.34."), version
    assert version["serverVersion"]["gitTreeState"] == "clean"
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    assert len(nodes) == 1
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == version["serverVersion"]["gitVersion"]


def test_registry_requires_login():
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/_catalog", timeout=5)
    assert err.value.code == 401


def test_workload_traffic_proxies_scraping_and_metrics(namespace, pushed_image):
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {
                            "labels": {"app": "web", "app.kubernetes.io/name": "platform-test"},
                            "annotations": {
                                "prometheus.io/scrape": "true",
                                "prometheus.io/port": "8080",
                                "prometheus.io/path": "/metrics",
                            },
                        },
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": pushed_image,
                                    "ports": [{"containerPort": 8080}],
                                    "env": [
                                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                                    ],
                                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
                                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                                }
                            ]
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        ],
    }
    run("kubectl", "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-", input=json.dumps(manifest))
    kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=180s", timeout=200)

    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=web", "-o", "json"))["items"]
    assert len(pods) == 2
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in pods)
    names = {p["metadata"]["name"] for p in pods}

    # The ClusterIP answers from the host (kube-proxy iptables rules), and reaches both pods.
    cluster_ip = kubectl("-n", namespace, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    seen = set()

    def both_pods_answered():
        # kube-proxy programs a new Service's rules asynchronously: refused connections are retried.
        with urllib.request.urlopen(f"http://{cluster_ip}/", timeout=5) as resp:
            seen.add(resp.read().decode().strip().removeprefix("hello from "))
        return seen == names

    wait_for("the ClusterIP to reach both pods", both_pods_answered, timeout=30, interval=0.2)

    # The API server's pod proxy and service proxy reach the pods.
    pod = sorted(names)[0]
    assert (
        kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}:8080/proxy/").strip() == f"hello from {pod}"
    )
    assert kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/web:80/proxy/").startswith("hello from ")

    # Pod-to-pod over the bridge (Docker's FORWARD DROP policy would break this without our rules).
    other = next(p for p in pods if p["metadata"]["name"] != pod)
    body = kubectl(
        "-n",
        namespace,
        "exec",
        pod,
        "--",
        "node",
        "-e",
        "require('http').get(process.argv[1], r => r.pipe(process.stdout))",
        f"http://{other['status']['podIP']}:8080/",
    )
    assert body.strip() == f"hello from {other['metadata']['name']}"

    # Prometheus discovered the pods through the API server and scraped them.
    query = urllib.parse.quote(f'platform_test_requests_total{{namespace="{namespace}"}}')

    def series():
        with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?query={query}", timeout=5) as resp:
            result = json.load(resp)["data"]["result"]
        return result if len(result) == 2 else None

    result = wait_for("Prometheus series for both pods", series, timeout=90, interval=3)
    assert {r["metric"]["pod"] for r in result} == names
    assert all(r["metric"]["app"] == "platform-test" for r in result)

    # metrics-server reports CPU and memory for the pods (`kubectl top`).
    def top():
        out = kubectl("-n", namespace, "top", "pods", "--no-headers", check=False)
        rows = [line.split() for line in out.splitlines() if line.strip()]
        return rows if len(rows) == 2 else None

    rows = wait_for("kubectl top pods", top, timeout=150, interval=5)
    assert all(row[1].endswith("m") and row[2].endswith("Mi") for row in rows), rows


def test_audit_log_records_requests(namespace):
    log = STATE / "logs" / "audit.log"
    marker = f"audit-{uuid.uuid4().hex[:6]}"
    kubectl("-n", namespace, "create", "configmap", marker)

    def found():
        for line in log.read_text().splitlines()[-2000:]:
            event = json.loads(line)
            ref = event.get("objectRef", {})
            if ref.get("name") == marker and event["verb"] == "create":
                return event
        return None

    event = wait_for("the audit event of the configmap create", found, timeout=30)
    assert event["user"]["username"] == "kubernetes-admin"
    assert event["objectRef"]["resource"] == "configmaps"


# ---------------------------------------------------------------------------------------------
# What a user's cluster has besides: an ingress and Gateway API controller (Traefik), cluster DNS
# (CoreDNS) and enforced NetworkPolicy (kube-router's controller). Each test makes its own objects.

INGRESS_HTTP = os.environ.get("USERSERVICE_INGRESS_HTTP", "http://127.0.0.1:8080")
NODE_GET = (
    "const r=require('http').get(process.argv[1],{timeout:3000},res=>{let b='';res.on('data',d=>b+=d);"
    "res.on('end',()=>{console.log(b.trim());process.exit(0)})});"
    "r.on('timeout',()=>{r.destroy();console.log('TIMEOUT');process.exit(2)});"
    "r.on('error',e=>{console.log('ERROR '+e.code);process.exit(3)})"
)


def apply(manifest: dict) -> None:
    run("kubectl", "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-", input=json.dumps(manifest))


def app(namespace: str, name: str, image: str, replicas: int = 1) -> list:
    """A Deployment of the test app (answers `hello from <pod>`) and its Service `name`, port 80."""
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": image,
                                "ports": [{"containerPort": 8080}],
                                "env": [
                                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                                ],
                                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 2},
                                "resources": {"requests": {"cpu": "5m", "memory": "24Mi"}},
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


def deploy_apps(namespace: str, items: list) -> dict:
    """Applies the objects, waits for every Deployment and returns {deployment: set(pod names)}."""
    apply({"apiVersion": "v1", "kind": "List", "items": items})
    pods = {}
    for item in items:
        if item["kind"] != "Deployment":
            continue
        name = item["metadata"]["name"]
        kubectl("-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=180s", timeout=200)
        listed = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app={name}", "-o", "json"))["items"]
        pods[name] = {p["metadata"]["name"] for p in listed if not p["metadata"].get("deletionTimestamp")}
    return pods


def http_get(url: str, host: str, timeout: float = 5) -> tuple:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        conn.request("GET", parsed.path or "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode().strip()
    finally:
        conn.close()


def in_pod(namespace: str, pod: str, *command: str, check: bool = False) -> subprocess.CompletedProcess:
    return run(
        "kubectl",
        "--kubeconfig",
        str(KUBECONFIG),
        "-n",
        namespace,
        "exec",
        pod,
        "--",
        *command,
        check=check,
        timeout=60,
    )


def test_ingress_from_host_reaches_the_service_pods(namespace, pushed_image):
    """Through Traefik on the host's loopback: IngressClass traefik and nginx (the inventories' class)."""
    pods = deploy_apps(namespace, app(namespace, "ing", pushed_image, replicas=2))["ing"]
    for cls in ("traefik", "nginx"):
        host = f"ing-{cls}.{namespace}.localhost"
        apply(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": f"ing-{cls}", "namespace": namespace},
                "spec": {
                    "ingressClassName": cls,
                    "rules": [
                        {
                            "host": host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": "ing", "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
        # Traefik picks the Ingress up from its watch within a second or two.
        wait_for(f"the {cls} Ingress to reach both pods", answered_by_all(host, pods), timeout=60, interval=0.2)
        # The controller publishes its loopback address in the Ingress status.
        status = json.loads(kubectl("-n", namespace, "get", "ingress", f"ing-{cls}", "-o", "json"))["status"]
        assert status["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1", status

    # A host no route knows is Traefik's 404, not a pod's answer.
    assert http_get(INGRESS_HTTP + "/", f"nothing.{namespace}.localhost")[0] == 404


def test_httproute_splits_traffic_by_weight(namespace, pushed_image):
    """Gateway API through the platform Gateway: 1000 requests split 80/20 within 3 points."""
    pods = deploy_apps(namespace, app(namespace, "split-a", pushed_image) + app(namespace, "split-b", pushed_image))
    owner = {pod: name for name, names in pods.items() for pod in names}
    host = f"split.{namespace}.localhost"
    weights = {"split-a": 80, "split-b": 20}
    apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "split", "namespace": namespace},
            "spec": {
                "parentRefs": [{"name": "platform", "namespace": "traefik"}],
                "hostnames": [host],
                "rules": [
                    {"backendRefs": [{"name": name, "port": 80, "weight": weight} for name, weight in weights.items()]}
                ],
            },
        }
    )

    def accepted():
        route = json.loads(kubectl("-n", namespace, "get", "httproute", "split", "-o", "json"))
        conditions = {
            c["type"]: c["status"] for p in route.get("status", {}).get("parents", []) for c in p["conditions"]
        }
        return conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True"

    wait_for("the HTTPRoute to be accepted by the Gateway", accepted, timeout=60)
    wait_for("the HTTPRoute to answer", lambda: http_get(INGRESS_HTTP + "/", host)[0] == 200, timeout=60, interval=0.2)

    total = 1000
    counts = {name: 0 for name in weights}
    conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(INGRESS_HTTP).port, timeout=5)
    try:
        for _request in range(total):
            conn.request("GET", "/", headers={"Host": host})
            resp = conn.getresponse()
            body = resp.read().decode().strip()
            assert resp.status == 200, (resp.status, body)
            counts[owner[body.removeprefix("hello from ")]] += 1
    finally:
        conn.close()
    print(f"HTTPRoute split of {total} requests (weights {weights}): {counts}")
    for name, weight in weights.items():
        share = 100 * counts[name] / total
        assert abs(share - weight) <= 3, f"{name}: {share:.1f}% of {total} requests, weight {weight}%; {counts}"

    # Prometheus scrapes the ingress controller: its per-service request counter has the route's traffic.
    query = urllib.parse.quote(f'sum(traefik_service_requests_total{{service=~"{namespace}-split-[ab]-.*"}})')

    def scraped():
        with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query?query={query}", timeout=5) as resp:
            result = json.load(resp)["data"]["result"]
        return result and float(result[0]["value"][1]) >= total

    wait_for("Prometheus to scrape Traefik's request counter", scraped, timeout=60, interval=3)


def test_pod_resolves_service_names_through_cluster_dns(namespace, pushed_image):
    deploy_apps(namespace, app(namespace, "dns", pushed_image))
    pod = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=dns", "-o", "json"))["items"][0]
    resolv = in_pod(namespace, pod["metadata"]["name"], "cat", "/etc/resolv.conf", check=True).stdout
    assert "nameserver 10.96.0.10" in resolv and f"search {namespace}.svc.cluster.local" in resolv, resolv
    cluster_ip = kubectl("-n", namespace, "get", "svc", "dns", "-o", "jsonpath={.spec.clusterIP}")
    for name in (f"dns.{namespace}.svc.cluster.local", "kubernetes.default.svc.cluster.local", "dns"):
        out = in_pod(
            namespace,
            pod["metadata"]["name"],
            "node",
            "-e",
            "require('dns').lookup(process.argv[1],{family:4},(e,a)=>{console.log(e?'ERROR '+e.code:a)})",
            name,
            check=True,
        ).stdout.strip()
        assert out == (cluster_ip if name != "kubernetes.default.svc.cluster.local" else "10.96.0.1"), (name, out)


def test_networkpolicy_denying_ingress_blocks_pod_to_pod(namespace, pushed_image):
    pods = deploy_apps(namespace, app(namespace, "np-server", pushed_image) + app(namespace, "np-client", pushed_image))
    server = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=np-server", "-o", "json"))["items"][0]
    client = sorted(pods["np-client"])[0]
    url = f"http://{server['status']['podIP']}:8080/"

    def get() -> str:
        return in_pod(namespace, client, "node", "-e", NODE_GET, url).stdout.strip()

    assert get() == f"hello from {server['metadata']['name']}"
    apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-ingress", "namespace": namespace},
            "spec": {"podSelector": {"matchLabels": {"app": "np-server"}}, "policyTypes": ["Ingress"]},
        }
    )

    # The controller reprograms iptables on the policy event; the request is then rejected.
    def refused():
        out = get()
        return out if not out.startswith("hello from") else None

    outcome = wait_for("the NetworkPolicy to block the request", refused, timeout=60)
    assert outcome.split(" ")[0] in ("ERROR", "TIMEOUT"), outcome
    # The other pods of the namespace, which the policy does not select, still accept traffic.
    other = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=np-client", "-o", "json"))["items"][0]
    assert in_pod(
        namespace, client, "node", "-e", NODE_GET, f"http://{other['status']['podIP']}:8080/"
    ).stdout.startswith("hello from")
    kubectl("-n", namespace, "delete", "networkpolicy", "deny-ingress")
    wait_for("the request to succeed again without the policy", lambda: get().startswith("hello from"), timeout=60)
