"""Runs that die, runs that race, and arguments that are wrong: the cluster must stay consistent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest
from conftest import KUBECONFIG, REPO, VENV_BIN, kubectl_json, release_state
from test_bluegreen_release import record, settle


def wait_for_state(namespace, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = release_state(namespace)
            if predicate(state):
                return state
        except (subprocess.CalledProcessError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError("release state never matched within %ss" % timeout)


def descendants(pid: int) -> list:
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    found = []
    for child in map(int, children):
        found += [child] + descendants(child)
    return found


def kill_group(proc) -> None:
    """SIGKILL the playbook and every process under it, the module included, like a CI runner that vanishes.

    Ansible starts the module in a session of its own, so killing the playbook's process group is not enough:
    the whole tree is frozen first (so nothing can fork or finish meanwhile), then killed.
    """
    tree = [proc.pid] + descendants(proc.pid)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in tree:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # a short-lived helper process that ended on its own
    proc.wait(timeout=30)


def assert_consistent(namespace, active, version) -> None:
    state = release_state(namespace)
    assert state["phase"] == "done" and state["run"] is None, state
    assert state["active_slot"] == active
    service = kubectl_json("-n", namespace, "get", "service", "user-service")
    assert service["spec"]["selector"]["deploy.userservice.io/slot"] == active
    deployments = {d["metadata"]["name"] for d in kubectl_json("-n", namespace, "get", "deployments")["items"]}
    assert deployments <= {"user-service-blue", "user-service-green"}, deployments
    live = kubectl_json("-n", namespace, "get", "deployment", "user-service-" + active)
    assert live["metadata"]["labels"]["app.kubernetes.io/version"] == version
    assert live["status"].get("availableReplicas") == live["spec"]["replicas"]
    lease = kubectl_json("-n", namespace, "get", "lease", "user-service-release")
    assert not lease["spec"].get("holderIdentity"), lease["spec"]  # released at the end of the run


# Each phase: what the record shows while the victim is there, and what slows that phase down so the kill lands.
PHASES = {
    "rollout": (
        lambda s: s.get("phase") == "deploying" and (s.get("slots") or {}).get("green"),
        {"env": {"FAULT_START_DELAY_SECONDS": "12"}},
    ),
    "gate": (lambda s: s.get("phase") == "gating", {"health": {"consecutive": 12, "interval": 1, "timeout": 90}}),
    # Killed after the switch: test_bluegreen_bad_day.py's C2 kills a release there twice and resumes it.
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_sigkill_at_each_phase_then_next_run_completes(phase, release, load, namespace):
    assert release(version="1.0.0").rc == 0
    matches, slow = PHASES[phase]
    # For "gate" the next run must wait for the dead run's lease to expire (a TTL longer than one playbook start-up,
    # so the first retry meets a live lease); the other phases steal it explicitly.
    ttl = 30 if phase == "gate" else 10
    with load(rate=10, max_seconds=300) as stream:
        settle(stream)
        proc = release.start(version="2.0.0", lock_ttl=ttl, **slow)[0]
        wait_for_state(namespace, matches)
        kill_group(proc)
        killed_at = time.monotonic()
        if phase == "gate":
            # Fail fast while the dead run's lease is valid, naming its holder...
            held = release(version="2.0.0")
            assert held.rc != 0 and "held by" in held.result["msg"], held.result.get("msg")
            time.sleep(max(0.0, ttl + 1 - (time.monotonic() - killed_at)))
            resumed = release(version="2.0.0", scale_down_delay=3)
        else:
            resumed = release(version="2.0.0", scale_down_delay=3, lock_steal=True)
        settle(stream)
    assert resumed.rc == 0, resumed.output[-3000:]
    assert resumed.result.get("interrupted_run"), resumed.result
    takeover = resumed.result["lock"].get("takeover")
    # A steal may find the lease already expired when the playbook start-up took longer than its TTL.
    assert takeover == "expired" if phase == "gate" else takeover in ("stolen", "expired"), resumed.result["lock"]
    assert_consistent(namespace, "green", "2.0.0")
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    record(
        "bluegreen_kill_%s" % phase,
        resumed_seconds=round(resumed.seconds, 1),
        failed=summary["failed"],
        requests=summary["requests"],
    )


def test_two_runs_started_together_exactly_one_proceeds(release, namespace):
    assert release(version="1.0.0").rc == 0
    first = release.start(version="2.0.0", scale_down_delay=1)
    second = release.start(version="3.0.0", scale_down_delay=1)
    outcomes = []
    for proc, result_file in (first, second):
        output = proc.communicate(timeout=600)[0]
        outcomes.append((proc.returncode, json.loads(result_file.read_text()) if result_file.exists() else {}, output))
    codes = sorted(outcome[0] for outcome in outcomes)
    assert codes[0] == 0 and codes[1] != 0, [o[:2] for o in outcomes]
    loser = next(outcome[1] for outcome in outcomes if outcome[0] != 0)
    assert "held by" in loser["msg"], loser["msg"]
    assert loser["error"]["type"] == "LockHeldError"
    winner = next(outcome[1] for outcome in outcomes if outcome[0] == 0)
    assert loser["error"]["data"]["holder"] == winner["lock"]["holder"] or winner["lock"]["holder"] in loser["msg"]


BAD_ARGUMENTS = [
    ("namespace", {"namespace": "Bad_Namespace"}),
    ("app", {"app": "x" * 60}),
    ("state", {"state": "deployed"}),
    ("image", {"image": "127.0.0.1:5000/user-service:1.0.0"}),
    ("image", {"image": "127.0.0.1:5000/user-service@sha256:1234"}),
    ("version", {"version": None}),
    ("version", {"version": "1.0 beta"}),
    ("pod_template", {"pod_template": None}),
    ("pod_template", {"pod_template": {"metadata": {}}}),
    ("pod_template.spec.containers", {"pod_template": {"spec": {"containers": []}}}),
    ("container_name", {"container_name": "sidecar"}),
    ("replicas", {"replicas": 0}),
    ("replicas", {"replicas": "two"}),
    ("scale_down_delay", {"scale_down_delay": -5}),
    ("rollout_timeout", {"rollout_timeout": 0}),
    ("verify_timeout", {"verify_timeout": -1}),
    ("preview_service", {"preview_service": "user-service"}),
    ("pre_promotion_analysis", {"pre_promotion_analysis": ["no-such-check"]}),
    ("type", {"analysis": {"checks": [{"name": "c", "type": "datadog"}]}}),
    ("analysis.checks", {"analysis": {"checks": [{"name": "c", "type": "prometheus", "max": 1}]}}),
    ("health", {"health": {"consecutive": 0}}),
    ("port", {"health": {"port": "abc"}}),
    ("lock_ttl", {"lock_ttl": 2}),
    ("on_failure", {"on_failure": "explode"}),
    ("history_limit", {"history_limit": 0}),
    ("analysis.prometheus.url", {"analysis": {"prometheus": {"url": "ftp://127.0.0.1:9090"}}}),
]


def audit_events(namespace: str):
    log = KUBECONFIG.parent / "logs" / "audit.log"
    events = []
    for line in log.read_text().splitlines():
        if namespace in line:
            event = json.loads(line)
            if (event.get("objectRef") or {}).get("namespace") == namespace:
                events.append(event)
    return events


@pytest.mark.parametrize(
    "option,override", BAD_ARGUMENTS, ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_ARGUMENTS)]
)
def test_bad_module_argument_fails_before_any_api_call(option, override, user_service_image):
    namespace = f"e2e-args-{uuid.uuid4().hex[:6]}"
    args = {
        "namespace": namespace,
        "image": user_service_image,
        "version": "1.0.0",
        "pod_template": {"spec": {"containers": [{"name": "user-service", "image": "x"}]}},
    }
    args.update(override)
    args = {k: v for k, v in args.items() if v is not None}
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=str(KUBECONFIG), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "userservice.deploy.bluegreen",
            "-a",
            json.dumps(args),
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
    assert audit_events(namespace) == []  # not one request, let alone a write, reached the API server
