"""Fixtures for end-to-end releases against the local platform (hack/cluster)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from loadgen import LoadGenerator  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("USERSERVICE_CLUSTER_DIR", REPO / ".cluster"))
KUBECONFIG = Path(os.environ.get("K8S_AUTH_KUBECONFIG", STATE / "admin.kubeconfig"))
REGISTRY = "127.0.0.1:5000"
APP_DIR = REPO / "examples" / "user-service"
VENV_BIN = REPO / ".venv" / "bin"

# kubectl comes from the platform's version-keyed cache; make it findable when pytest runs outside make.
_bindir = subprocess.run(
    [str(REPO / "hack/cluster/cluster"), "bindir"], capture_output=True, text=True, check=False
).stdout.strip()
if _bindir and _bindir not in os.environ.get("PATH", ""):
    os.environ["PATH"] = _bindir + os.pathsep + os.environ.get("PATH", "")


def run(*args: str, check: bool = True, timeout: int = 600, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout, **kw)


def kubectl(*args: str, check: bool = True) -> str:
    return run("kubectl", "--kubeconfig", str(KUBECONFIG), *args, check=check, timeout=120).stdout


def kubectl_json(*args: str) -> Dict[str, Any]:
    return json.loads(kubectl(*args, "-o", "json"))


def cluster_reachable() -> bool:
    try:
        return (
            KUBECONFIG.exists()
            and run(
                "kubectl", "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz", check=False, timeout=10
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


# Without a cluster the suite fails: a run that tested nothing must not read as passed. Set
# USERSERVICE_SKIP_CLUSTER_TESTS=1 to skip on purpose (a machine that cannot run the platform).
SKIP_VARIABLE = "USERSERVICE_SKIP_CLUSTER_TESTS"


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: disturbs the whole platform; runs alone, after the parallel tests")


def pytest_collection_modifyitems(config, items):
    if not items or cluster_reachable():
        return
    reason = f"no local cluster reachable through {KUBECONFIG}: run `make cluster`"
    if os.environ.get(SKIP_VARIABLE) == "1":
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"{reason} ({SKIP_VARIABLE}=1)"))
        return
    raise pytest.UsageError(f"{reason}, or set {SKIP_VARIABLE}=1 to skip the end-to-end tests on purpose")


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(run("git", "ls-files", "-co", "--exclude-standard", cwd=path).stdout.split()):
        digest.update(file.encode())
        digest.update((path / file).read_bytes())
    return digest.hexdigest()[:12]


def registry_digest(repository: str, tag: str) -> Optional[str]:
    password = (STATE / "registry" / "password").read_text().strip()
    out = run(
        "curl",
        "-s",
        "-I",
        "-u",
        f"deploy:{password}",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        f"http://{REGISTRY}/v2/{repository}/manifests/{tag}",
        check=False,
    ).stdout
    for line in out.splitlines():
        if line.lower().startswith("docker-content-digest:") and " 200" in out.splitlines()[0]:
            return line.split(":", 1)[1].strip()
    return None


@pytest.fixture(scope="session")
def user_service_image() -> str:
    return build_user_service_image()


def build_user_service_image() -> str:
    """The User Service image, built from examples/user-service and pushed once per source tree."""
    repository, tag = "e2e/user-service", _tree_hash(APP_DIR)
    digest = registry_digest(repository, tag)
    if digest is None:
        password = (STATE / "registry" / "password").read_text().strip()
        run("docker", "login", "--username", "deploy", "--password-stdin", REGISTRY, input=password)
        base = next(
            line.split("=", 1)[1]
            for line in run(str(REPO / "hack/cluster/cluster"), "env").stdout.splitlines()
            if "USERSERVICE_BASE_IMAGE=" in line
        )
        extra_ca = "".join(p.read_text() for p in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt")))
        ref = f"{REGISTRY}/{repository}:{tag}"
        run(
            "docker",
            "build",
            "--build-arg",
            f"NODE_IMAGE={base}",
            "--build-arg",
            f"BUILD_CA_CERTS={extra_ca}",
            "--build-arg",
            "APP_VERSION=e2e",
            "-t",
            ref,
            str(APP_DIR),
            timeout=900,
        )
        run("docker", "push", ref, timeout=300)
        digest = registry_digest(repository, tag)
    assert digest and digest.startswith("sha256:")
    return f"{REGISTRY}/{repository}@{digest}"


def create_release_namespace(name: str) -> str:
    """A namespace enforcing Pod Security `restricted`, with the app's ServiceAccount and active Service."""
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "user-service", "namespace": name},
                "automountServiceAccountToken": False,
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "user-service", "namespace": name},
                "spec": {
                    "selector": {"app.kubernetes.io/name": "user-service"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 3000}],
                },
            },
        ],
    }
    run("kubectl", "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-", input=json.dumps(manifest))
    return name


@pytest.fixture
def namespace():
    """A throw-away release namespace, deleted after the test."""
    name = create_release_namespace(f"e2e-bg-{uuid.uuid4().hex[:6]}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


class Releaser:
    """Runs tests/e2e/playbooks/bluegreen.yml (staging inventory, pointed at the local cluster)."""

    def __init__(self, namespace: str, image: str, tmp: Path, playbook: str = "bluegreen.yml") -> None:
        self.namespace = namespace
        self.image = image
        self.tmp = tmp
        self.playbook = playbook

    def command(self, result_file: Path, **variables: Any) -> list:
        extra = {
            "user_service_namespace": self.namespace,
            "e2e_image": self.image,
            "e2e_result_file": str(result_file),
            "workload_probe_period_seconds": 2,
        }
        extra.update(
            {
                key if key.startswith(("e2e_", "workload_", "user_service_")) else "e2e_" + key: value
                for key, value in variables.items()
            }
        )
        return [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(REPO / "inventories" / "staging"),
            str(REPO / "tests" / "e2e" / "playbooks" / self.playbook),
            "-e",
            json.dumps(extra),
        ]

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ, K8S_AUTH_KUBECONFIG=str(KUBECONFIG), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
        return env

    def start(self, **variables: Any):
        result_file = self.tmp / f"result-{uuid.uuid4().hex[:6]}.json"
        proc = subprocess.Popen(
            self.command(result_file, **variables),
            start_new_session=True,  # its own process group, so a test can kill the playbook and its module
            cwd=REPO,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return proc, result_file

    def __call__(self, **variables: Any) -> "Run":
        started = time.monotonic()
        proc, result_file = self.start(**variables)
        output = proc.communicate(timeout=900)[0]
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        return Run(proc.returncode, result, output, time.monotonic() - started)


class Run:
    def __init__(self, rc: int, result: Dict[str, Any], output: str, seconds: float) -> None:
        self.rc, self.result, self.output, self.seconds = rc, result, output, seconds

    def __repr__(self) -> str:
        return f"Run(rc={self.rc}, seconds={self.seconds:.1f}, msg={self.result.get('msg')!r})"


@pytest.fixture
def release(namespace, user_service_image, tmp_path) -> Releaser:
    return Releaser(namespace, user_service_image, tmp_path)


@pytest.fixture
def canary(namespace, user_service_image, tmp_path) -> Releaser:
    return Releaser(namespace, user_service_image, tmp_path, playbook="canary.yml")


def service_ip(namespace: str) -> str:
    return kubectl("-n", namespace, "get", "svc", "user-service", "-o", "jsonpath={.spec.clusterIP}")


def release_state(namespace: str) -> Dict[str, Any]:
    cm = kubectl_json("-n", namespace, "get", "configmap", "user-service-release")
    return json.loads(cm["data"]["state.json"])


def slot_pods(namespace: str, slot: str) -> Dict[str, str]:
    pods = kubectl_json("-n", namespace, "get", "pods", "-l", f"deploy.userservice.io/slot={slot}")["items"]
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}


@pytest.fixture
def load(namespace):
    """A load generator against the active Service's ClusterIP (started by the test)."""
    generators = []

    def make(**kw: Any) -> LoadGenerator:
        generator = LoadGenerator(service_ip(namespace), **kw)
        generators.append(generator)
        return generator

    yield make
    for generator in generators:
        generator.stop()


if __name__ == "__main__":
    # `python tests/e2e/conftest.py --build-image`: build and push the shared image once, before parallel workers.
    if sys.argv[1:] == ["--build-image"]:
        if not cluster_reachable():
            sys.exit(0)  # the test run itself reports the missing cluster
        print("e2e image:", build_user_service_image())
    else:
        sys.exit("usage: conftest.py --build-image")
