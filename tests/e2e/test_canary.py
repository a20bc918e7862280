"""Canary releases of the real User Service on the platform under load: the share of new-version answers follows
each step, a bad canary is aborted at its first analysis, approvals pause, a killed run resumes at its step.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from conftest import kubectl_json, release_state
from loadgen import LoadGenerator
from test_bluegreen_release import record, settle
from test_bluegreen_resilience import kill_group, wait_for_state

PROMETHEUS = {"url": "http://127.0.0.1:9090", "timeout": 5}
ERROR_RATIO = {
    "name": "error-ratio",
    "type": "prometheus",
    "metric": "error_ratio",
    "window": "20s",
    "max": 0.05,
    "samples": 2,
    "interval": 5,
    "initial_delay": 10,
    "on_no_data": "inconclusive",
}
ANALYSIS = {"prometheus": PROMETHEUS, "checks": [ERROR_RATIO]}


def wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def mono(stream, stamp: str) -> float:
    return stream.t0 + wall(stamp) - stream.t0_wall


def tracks(namespace: str) -> dict:
    out = {}
    for track in ("stable", "canary"):
        found = kubectl_json("-n", namespace, "get", "deployments", "-l", "deploy.userservice.io/track=" + track)
        out[track] = [
            (d["spec"]["replicas"], d["metadata"]["labels"].get("app.kubernetes.io/version")) for d in found["items"]
        ]
    return out


def shares_per_step(stream, result, version, settle_seconds=3.0):
    """The share of ``version`` answers between each weight step and the next (or the promotion)."""
    steps = result["weights"]
    out = []
    for index, step in enumerate(steps):
        start = mono(stream, step["at"]) + settle_seconds
        end = mono(stream, steps[index + 1]["at"] if index + 1 < len(steps) else result["promoting_at"])
        share = stream.share(version, start, end)
        out.append({"weight": step["weight"], "pod_share": step["share"], **share})
    return out


# Kept-alive connections stay on the pod they reached; the server closing one after this many requests makes
# pooled clients reconnect and spread over the pods the canary adds (measured both ways: docs/canary.md).
REQUESTS_PER_SOCKET = 4
REBALANCE = {"HTTP_MAX_REQUESTS_PER_SOCKET": str(REQUESTS_PER_SOCKET)}


def pooled_tolerance(step) -> float:
    """Four standard deviations of the share, in points: a pooled client draws a pod once per connection, not once
    per request, so a step's sample is its connections (answers / requests per socket). With 20 requests a socket
    a 12 s step was 12 draws, a standard deviation of 14 points, and a 15-point bound failed in CI (88 % for 50 %).
    A client that never rebalanced (0 % canary) stays outside this bound at both steps."""
    connections = max(1, step["answers"] // REQUESTS_PER_SOCKET)
    share = step["pod_share"] / 100
    return max(10.0, 400 * (share * (1 - share) / connections) ** 0.5)


def test_a_good_canary_walks_every_step_with_zero_failed_requests(canary, load, namespace):
    assert canary(version="1.0.0", env=REBALANCE).rc == 0
    steps = [{"weight": 25}, {"pause": 15}, {"analysis": ["error-ratio"]}, {"weight": 50}, {"pause": 15}]
    with load(rate=20, max_seconds=400) as fresh, load(rate=20, max_seconds=400, keepalive=True) as kept:
        settle(fresh)
        run = canary(version="2.0.0", steps=steps, analysis=ANALYSIS, env=REBALANCE)
        settle(fresh, 3)
    assert run.rc == 0, run.output[-3000:]
    assert run.result["status"] == "promoted"
    assert run.result["verdicts"]["step 2"]["verdict"] == "pass", run.result["verdicts"]
    per_connection = shares_per_step(fresh, run.result, "2.0.0")
    pooled = shares_per_step(kept, run.result, "2.0.0")
    # 2 stable pods: 25% is 1 canary pod (a 33% share), 50% is 2 (50%). One connection per request follows
    # the pods' share within sampling error; pooled connections stay on the pods they first reached.
    for step in per_connection:
        assert step["answers"] >= 150, per_connection
        assert abs(step["percent"] - step["pod_share"]) <= 10, per_connection
    for step in pooled:
        assert abs(step["percent"] - step["pod_share"]) <= pooled_tolerance(step), pooled
    for summary in (fresh.summary(), kept.summary()):
        assert summary["failed"] == 0, summary
    assert tracks(namespace) == {"stable": [(2, "2.0.0")], "canary": []}
    record("canary_good", per_connection=per_connection, keepalive=pooled, seconds=round(run.seconds, 1))


def test_a_bad_canary_is_aborted_at_its_first_analysis(canary, load, namespace):
    assert canary(version="1.0.0").rc == 0
    steps = [{"weight": 25}, {"analysis": ["error-ratio"]}, {"weight": 50}, {"analysis": ["error-ratio"]}]
    with load(rate=20, max_seconds=400) as stream:
        settle(stream)
        run = canary(version="2.0.0", steps=steps, analysis=ANALYSIS, env={"FAULT_ERROR_RATE": "0.5"})
        settle(stream, 5)
    assert run.rc != 0 and run.result["status"] == "aborted", run.output[-3000:]
    failure = run.result["failure"]
    assert failure["check"] == "error-ratio" and failure["value"] > 0.05 and failure["bound"], failure
    assert 'track="canary"' in failure["query"], failure["query"]
    assert run.result["weights"] and run.result["weights"][-1]["weight"] == 25  # never reached 50
    assert tracks(namespace)["stable"] == [(2, "1.0.0")] and tracks(namespace)["canary"] == [(0, "2.0.0")]
    bad = [o for o in stream.snapshot() if not o.ok]
    aborted = mono(stream, run.result["aborted_at"])
    after = [o for o in bad if o.started > aborted + 2]
    assert not after, after[:3]  # no bad answer once the canary was out of traffic
    first_bad = min(o.started for o in bad) if bad else None
    state = release_state(namespace)
    assert state["slots"]["canary"]["status"] == "failed" and state["last_failure"]["check"] == "error-ratio"
    record(
        "canary_bad",
        failed_requests=len(bad),
        requests=stream.summary()["requests"],
        first_bad_to_weight_zero_s=round(aborted - first_bad, 1) if first_bad else None,
    )


def test_an_approval_pause_then_promote_and_a_freeze_then_abort(canary, load, namespace):
    assert canary(version="1.0.0").rc == 0
    steps = [{"weight": 25}, {"pause": "approval"}, {"weight": 50}]
    with load(rate=10, max_seconds=400) as stream:
        settle(stream)
        paused = canary(version="2.0.0", steps=steps)
        waiting = canary(version="2.0.0", steps=steps)
        promoted = canary(state="promoted", steps=steps)
        frozen = canary(
            version="3.0.0",
            steps=[{"weight": 25}, {"analysis": ["error-ratio"]}, {"weight": 50}],
            analysis=ANALYSIS,
            env={"FAULT_ERROR_RATE": "0.5"},
            on_failure="freeze",
        )
        held = tracks(namespace)
        aborted = canary(state="aborted")
        settle(stream, 3)
    assert paused.rc == 0 and paused.result["status"] == "paused" and paused.result["waiting"] == "approval"
    assert waiting.rc == 0 and waiting.result["changed"] is False
    assert promoted.rc == 0 and promoted.result["status"] == "promoted", promoted.output[-2000:]
    assert frozen.rc != 0 and frozen.result["status"] == "frozen", frozen.output[-2000:]
    assert held["canary"] == [(1, "3.0.0")]  # the weights held
    assert aborted.rc == 0 and aborted.result["status"] == "aborted"
    assert tracks(namespace) == {"stable": [(2, "2.0.0")], "canary": [(0, "3.0.0")]}
    failed = [o for o in stream.snapshot() if not o.ok]
    assert all(o.version in (None, "3.0.0") for o in failed), failed[:3]  # only the frozen canary's own errors
    record("canary_approval_freeze", requests=stream.summary()["requests"], failed_from_frozen_canary=len(failed))


def test_a_canary_killed_mid_step_resumes_there(canary, load, namespace):
    assert canary(version="1.0.0").rc == 0
    steps = [{"weight": 25}, {"pause": 40}, {"weight": 50}, {"pause": 5}]
    with load(rate=10, max_seconds=400) as stream:
        settle(stream)
        proc = canary.start(version="2.0.0", steps=steps, lock_ttl=10)[0]
        wait_for_state(
            namespace,
            lambda s: (s.get("canary") or {}).get("next") == 1 and (s.get("canary") or {}).get("weight") == 25,
        )
        time.sleep(2)
        kill_group(proc)
        pods_at_kill = tracks(namespace)["canary"]
        time.sleep(11)
        resumed = canary(version="2.0.0", steps=steps)
        settle(stream, 3)
    assert pods_at_kill == [(1, "2.0.0")]
    assert resumed.rc == 0 and resumed.result["resumed"] is True, resumed.output[-2000:]
    assert [w["weight"] for w in resumed.result["weights"]] == [50]
    assert resumed.result["weights"][0]["replicas"]["canary"] == 2
    assert stream.summary()["failed"] == 0, stream.summary()
    record("canary_resume", requests=stream.summary()["requests"], failed=0)


def test_the_monitor_fails_a_promoted_release_that_breaches_and_moves_no_traffic(canary, load, namespace):
    assert canary(version="1.0.0").rc == 0
    # 2.0.0 answers 30 % of its API calls with 5xx (its health endpoints pass); its steps have no analysis, so it
    # is promoted, and only the post-deployment monitor can catch it.
    bad = canary(version="2.0.0", steps=[{"weight": 50}], env={"FAULT_ERROR_RATE": "0.3"})
    assert bad.rc == 0 and bad.result["status"] == "promoted", bad.output[-3000:]
    before = kubectl_json("-n", namespace, "get", "deployment", "user-service-stable")["metadata"]["generation"]
    with load(rate=20, max_seconds=300) as stream:
        settle(stream)
        run = canary(state="monitored", post_promotion_analysis=["error-ratio"], analysis=ANALYSIS)
    assert run.rc != 0, run.output[-3000:]
    failure = run.result["failure"]
    assert failure["check"] == "error-ratio" and failure["value"] > 0.05 and 'track="stable"' in failure["query"]
    assert "user_service_version=1.0.0" in run.result["msg"] or "user_service_version=1.0.0" in run.output
    after = kubectl_json("-n", namespace, "get", "deployment", "user-service-stable")["metadata"]["generation"]
    assert after == before and tracks(namespace) == {"stable": [(2, "2.0.0")], "canary": []}
    state = release_state(namespace)
    assert state["slots"]["stable"]["status"] == "failed" and state["last_failure"]["check"] == "error-ratio"
    record("canary_monitor_breach", value=round(failure["value"], 3), requests=stream.summary()["requests"])


ISTIO_API = "istio.io/api@v1.32.0"


def install_virtualservice_crd() -> None:
    """Istio's VirtualService CRD, as istio.io/api publishes it in its Go module (no data plane can run here)."""
    import json as json_
    import os
    import subprocess

    import yaml
    from conftest import KUBECONFIG, run

    cache = os.path.expanduser("~/.cache/userservice-deploy/gomod-crds")
    env = dict(os.environ, GOMODCACHE=cache, GOFLAGS="-modcacherw")
    found = json_.loads(
        subprocess.run(
            ["go", "mod", "download", "-json", ISTIO_API],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    )
    path = os.path.join(found["Dir"], "kubernetes", "customresourcedefinitions.gen.yaml")
    with open(path, encoding="utf-8") as handle:
        crd = next(
            d
            for d in yaml.safe_load_all(handle)
            if d and d["metadata"]["name"] == "virtualservices.networking.istio.io"
        )
    run("kubectl", "--kubeconfig", str(KUBECONFIG), "apply", "--server-side", "-f", "-", input=json_.dumps(crd))
    # Polled rather than `kubectl wait`: right after the create, the CRD has no status yet and `kubectl wait`
    # fails at once on the missing conditions instead of waiting (seen in CI).
    deadline = time.monotonic() + 60
    while True:
        live = kubectl_json("get", "crd", crd["metadata"]["name"])
        conditions = live.get("status", {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        assert time.monotonic() < deadline, "CRD %s not established after 60 s: %s" % (
            crd["metadata"]["name"],
            conditions,
        )
        time.sleep(1)


def watch_weights(namespace: str, kind: str, name: str, weight_of, stop_after: float, seen: list) -> None:
    deadline = time.monotonic() + stop_after
    while time.monotonic() < deadline:
        found = kubectl_json("-n", namespace, "get", kind, "--ignore-not-found") or {}
        for item in found.get("items", []):
            if item["metadata"]["name"] == name:
                weight = weight_of(item)
                if not seen or seen[-1] != weight:
                    seen.append(weight)
        time.sleep(0.5)


ROUTE_OBJECTS = {
    "istio": (
        "virtualservices.networking.istio.io",
        "user-service",
        lambda o: next(
            d.get("weight")
            for r in o["spec"]["http"]
            if r["name"] == "weighted"
            for d in r["route"]
            if d["destination"]["host"].endswith("-canary")
        ),
    ),
    "nginx": (
        "ingress",
        "user-service-canary",
        lambda o: int(o["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"]),
    ),
}


@pytest.mark.parametrize("router", sorted(ROUTE_OBJECTS))
def test_istio_and_nginx_routes_are_accepted_and_carry_each_weight(canary, namespace, router):
    import threading

    from conftest import kubectl

    kind, name, weight_of = ROUTE_OBJECTS[router]
    if router == "istio":
        install_virtualservice_crd()
    else:
        kubectl(
            "-n", namespace, "create", "ingress", "user-service", "--rule=user-service.e2e.localhost/*=user-service:80"
        )
    steps = [{"weight": 20}, {"pause": 6}, {"weight": 60}, {"pause": 6}]
    options = {"type": router, "port": 80, "header": {"name": "X-Canary", "value": "always"}}
    assert canary(version="1.0.0", router=options).rc == 0
    seen: list = []
    watcher = threading.Thread(target=watch_weights, args=(namespace, kind, name, weight_of, 90, seen), daemon=True)
    watcher.start()
    run = canary(version="2.0.0", router=options, steps=steps)
    watcher.join()
    assert run.rc == 0 and run.result["status"] == "promoted", run.output[-2000:]
    assert [w for w in seen if w] == [20, 60] and seen[-1] == 0, (router, seen)
    assert "X-Canary" in str(kubectl_json("-n", namespace, "get", kind, name))
    record("canary_router_%s" % router, weights_seen=seen)


BAD_CANARY_ARGUMENTS = [
    ("steps", {"steps": []}),
    ("steps[0]", {"steps": [{"weight": 10, "pause": 5}]}),
    ("steps[0]", {"steps": [{"speed": 10}]}),
    ("steps[0].weight", {"steps": [{"weight": 0}]}),
    ("steps[0].weight", {"steps": [{"weight": 120}]}),
    ("steps[1].weight", {"steps": [{"weight": 50}, {"weight": 20}]}),
    ("steps[1].pause", {"steps": [{"weight": 5}, {"pause": "later"}]}),
    ("steps[1].pause", {"steps": [{"weight": 5}, {"pause": -3}]}),
    ("steps[1].analysis", {"steps": [{"weight": 5}, {"analysis": ["no-such-check"]}]}),
    ("steps[1].analysis", {"steps": [{"weight": 5}, {"analysis": []}]}),
    ("steps", {"steps": [{"pause": 5}]}),
    ("steps[0].pause", {"steps": [{"pause": "approval"}, {"weight": 10}]}),
    ("router", {"router": {"type": "linkerd"}}),
    ("router.port", {"router": {"type": "gateway", "gateway": {"name": "g"}}}),
    ("router.gateway", {"router": {"type": "gateway", "port": 80}}),
    ("router.header", {"router": {"type": "istio", "port": 80, "header": {"name": "X-Canary"}}}),
    ("router.cookie", {"router": {"type": "nginx", "port": 80, "cookie": "a b"}}),
    ("router.header", {"router": {"type": "replicas", "header": {"name": "X", "value": "1"}}}),
    ("on_failure", {"on_failure": "rollback"}),
    ("skip_steps", {"skip_steps": True}),
    ("image", {"image": "127.0.0.1:5000/user-service:latest"}),
    ("version", {"version": "2.0 beta"}),
    ("analysis.checks", {"analysis": {"checks": [{"name": "c", "type": "prometheus", "max": 1}]}}),
    ("namespace", {"namespace": "Canary_NS"}),
]


@pytest.mark.parametrize(
    "option,override", BAD_CANARY_ARGUMENTS, ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_CANARY_ARGUMENTS)]
)
def test_bad_canary_argument_fails_before_any_api_call(option, override, user_service_image):
    import json as json_
    import os
    import subprocess
    import uuid

    from conftest import KUBECONFIG, REPO, VENV_BIN
    from test_bluegreen_resilience import audit_events

    namespace = f"e2e-cargs-{uuid.uuid4().hex[:6]}"
    args = {
        "namespace": namespace,
        "image": user_service_image,
        "version": "2.0.0",
        "pod_template": {"spec": {"containers": [{"name": "user-service", "image": "x"}]}},
        "steps": [{"weight": 10}, {"analysis": ["error-ratio"]}],
        "analysis": ANALYSIS,
    }
    args.update(override)
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=str(KUBECONFIG), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "userservice.deploy.canary",
            "-a",
            json_.dumps(args),
            "-e",
            f"ansible_python_interpreter={VENV_BIN / 'python'}",
        ],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout
    assert option in proc.stdout, proc.stdout[-1500:]
    time.sleep(0.5)
    assert audit_events(namespace) == []  # not one request reached the API server for this namespace


GATEWAY_PORT = 8080  # the platform Gateway's HTTP listener on the host's loopback (hack/cluster)


def _tag_during_canary(tagged, namespace: str) -> None:
    """Send header-tagged requests only while the canary Deployment has Ready pods."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = kubectl_json("-n", namespace, "get", "deployments", "-l", "deploy.userservice.io/track=canary")
        if any((d.get("status") or {}).get("readyReplicas") for d in found["items"]):
            tagged.start()
            time.sleep(15)
            tagged.stop()
            return
        time.sleep(1)


def test_gateway_api_weights_through_traefik(canary, namespace):
    """Real weighted traffic: the canary's HTTPRoute weights, enforced by Traefik, within 3 points over >= 1000."""
    import threading

    from loadgen import LoadGenerator

    host = "canary.%s.localhost" % namespace
    router = {
        "type": "gateway",
        "port": 80,
        "gateway": {"name": "platform", "namespace": "traefik"},
        "hostnames": [host],
        "header": {"name": "X-Canary", "value": "always"},
    }
    assert canary(version="1.0.0", router=router).rc == 0
    steps = [{"weight": 20}, {"pause": 30}, {"weight": 50}, {"pause": 30}]
    stream = LoadGenerator(
        "127.0.0.1", port=GATEWAY_PORT, rate=50, max_seconds=300, keepalive=True, headers={"Host": host}
    )
    tagged = LoadGenerator(
        "127.0.0.1", port=GATEWAY_PORT, rate=2, max_seconds=300, headers={"Host": host, "X-Canary": "always"}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Traefik picks the route up from the API server
        probe = LoadGenerator("127.0.0.1", port=GATEWAY_PORT, rate=5, max_requests=1, headers={"Host": host})
        probe.start()
        time.sleep(0.5)
        probe.stop()
        if probe.summary()["failed"] == 0:
            break
    stream.start()
    try:
        time.sleep(3)
        watcher = threading.Thread(target=_tag_during_canary, args=(tagged, namespace), daemon=True)
        watcher.start()
        run = canary(version="2.0.0", router=router, steps=steps, lock_ttl=60)
    finally:
        stream.stop()
        tagged.stop()
    tagged_answers = [o for o in tagged.snapshot() if o.ok]
    # With the header, every answer came from the canary while it ran (whatever its weight).
    assert tagged_answers and {o.version for o in tagged_answers} == {"2.0.0"}, tagged.summary()
    assert run.rc == 0 and run.result["status"] == "promoted", run.output[-3000:]
    shares = shares_per_step(stream, run.result, "2.0.0", settle_seconds=2.0)
    for step in shares:
        assert step["answers"] >= 1000, shares
        assert abs(step["percent"] - step["weight"]) <= 3, shares
    assert stream.summary()["failed"] == 0, stream.summary()
    record("canary_gateway_traefik", shares=shares, requests=stream.summary()["requests"])


def test_no_data_follows_each_policy(canary, namespace):
    """No load at all: the canary's error ratio has no data; each on_no_data policy gives its documented result."""
    assert canary(version="1.0.0").rc == 0
    steps = [{"weight": 25}, {"analysis": ["error-ratio"]}, {"weight": 50}]
    quick = dict(ERROR_RATIO, samples=1, initial_delay=0)
    held = canary(
        version="2.0.0",
        steps=steps,
        analysis={"prometheus": PROMETHEUS, "checks": [dict(quick, on_no_data="inconclusive")]},
    )
    assert held.rc != 0 and release_state(namespace)["canary"]["waiting"] == "inconclusive analysis", held.output[
        -2000:
    ]
    assert canary(state="aborted").rc == 0
    failed = canary(
        version="3.0.0", steps=steps, analysis={"prometheus": PROMETHEUS, "checks": [dict(quick, on_no_data="fail")]}
    )
    assert failed.rc != 0 and failed.result["status"] == "aborted", failed.output[-2000:]
    passed = canary(
        version="4.0.0", steps=steps, analysis={"prometheus": PROMETHEUS, "checks": [dict(quick, on_no_data="pass")]}
    )
    assert passed.rc == 0 and passed.result["status"] == "promoted", passed.output[-2000:]
    record("canary_no_data", inconclusive="paused", fail="aborted", passed="promoted")


def test_a_whole_canary_with_only_the_namespaced_deployer_role(user_service_image, tmp_path):
    """deploy.yml bootstraps the namespace and the deployer Role (admin, once); then a first release, a canary
    with analysis, its promotion and an abort run with nothing but the deployer ServiceAccount's token."""
    import os
    import subprocess
    import uuid

    from conftest import KUBECONFIG, REPO, VENV_BIN, Releaser, kubectl

    namespace = "e2e-dep-%s" % uuid.uuid4().hex[:6]
    registry, rest = user_service_image.split("/", 1)
    repository, digest = rest.split("@")
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=str(KUBECONFIG), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    bootstrap = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(REPO / "inventories" / "dev"),
            str(REPO / "playbooks" / "deploy.yml"),
            "-e",
            json.dumps(
                {
                    "user_service_namespace": namespace,
                    "user_service_release_strategy": "canary",
                    "user_service_version": "1.0.0",
                    "user_service_image_registry": registry,
                    "user_service_image_repository": repository,
                    "user_service_image_digest": digest,
                    "workload_bootstrap": True,
                    "workload_ingress_enabled": False,
                }
            ),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        assert bootstrap.returncode == 0, bootstrap.stdout[-3000:]
        # The app's Service (the release role creates it when missing; this test drives the module directly).
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "user-service", "namespace": namespace},
            "spec": {
                "selector": {"app.kubernetes.io/name": "user-service"},
                "ports": [{"name": "http", "port": 80, "targetPort": 3000}],
            },
        }
        from conftest import run as run_

        run_("kubectl", "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-", input=json.dumps(service))
        token = kubectl("-n", namespace, "create", "token", "user-service-deployer", "--duration", "30m").strip()
        server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").strip()
        ca = tmp_path / "ca.crt"
        ca.write_bytes(
            __import__("base64").b64decode(
                kubectl(
                    "config",
                    "view",
                    "--raw",
                    "--minify",
                    "-o",
                    "jsonpath={.clusters[0].cluster.certificate-authority-data}",
                )
            )
        )

        class DeployerOnly(Releaser):
            def environment(self):
                out = {k: v for k, v in super().environment().items() if k != "K8S_AUTH_KUBECONFIG"}
                out.update(
                    K8S_AUTH_HOST=server, K8S_AUTH_API_KEY=token, K8S_AUTH_SSL_CA_CERT=str(ca), HOME=str(tmp_path)
                )  # no ~/.kube/config to fall back on
                return out

        deployer = DeployerOnly(namespace, user_service_image, tmp_path, playbook="canary.yml")
        first = deployer(version="1.0.0")
        assert first.rc == 0, first.output[-3000:]
        load = LoadGenerator(
            kubectl("-n", namespace, "get", "svc", "user-service", "-o", "jsonpath={.spec.clusterIP}"),
            rate=10,
            max_seconds=300,
        ).start()
        try:
            steps = [{"weight": 25}, {"analysis": ["error-ratio"]}, {"weight": 50}]
            # Two scrapes of the canary pods with traffic before the first sample (the enforced NetworkPolicy
            # and the bootstrap leave this namespace's pods new to Prometheus).
            slow = {"prometheus": PROMETHEUS, "checks": [dict(ERROR_RATIO, initial_delay=25)]}
            promoted = deployer(version="2.0.0", steps=steps, analysis=slow)
            paused = deployer(version="3.0.0", steps=[{"weight": 25}, {"pause": "approval"}, {"weight": 50}])
            aborted = deployer(state="aborted")
        finally:
            load.stop()
        assert promoted.rc == 0 and promoted.result["status"] == "promoted", promoted.output[-3000:]
        assert paused.rc == 0 and paused.result["status"] == "paused", paused.output[-3000:]
        assert aborted.rc == 0 and aborted.result["status"] == "aborted", aborted.output[-3000:]
        assert load.summary()["failed"] == 0, load.summary()
        record("canary_deployer_only", requests=load.summary()["requests"], failed=0)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
