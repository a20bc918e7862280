"""Proves the local platform (hack/cluster) is a working Kubernetes, on every CI run.

Everything here talks to the real components: the API server, kubelet, containerd, kube-proxy,
the Docker engine, the htpasswd-protected registry, Prometheus and metrics-server.
"""

from __future__ import annotations

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
