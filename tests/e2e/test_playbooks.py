"""The operator's playbooks end to end on the platform: release, preview, promote, monitor, rollback, abort,
status, and a lock steal, through the release role exactly as `ansible-playbook` runs them (dev inventory,
only the namespace and the image overridden), under a bounded load with zero failed requests.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any, Dict

import pytest
from conftest import KUBECONFIG, REPO, VENV_BIN, kubectl, kubectl_json, release_state, run, service_ip
from loadgen import LoadGenerator
from test_bluegreen_release import record, settle

PLAYBOOKS = REPO / "playbooks"


class Operator:
    def __init__(self, namespace: str, image: str) -> None:
        registry, rest = image.split("/", 1)
        repository, digest = rest.split("@")
        self.vars: Dict[str, Any] = {
            "user_service_namespace": namespace,
            "user_service_release_strategy": "bluegreen",
            "user_service_image_registry": registry,
            "user_service_image_repository": repository,
            "user_service_image_digest": digest,
            "workload_ingress_enabled": False,
            "workload_replicas": 2,
            "workload_hpa_min_replicas": 2,
            "workload_hpa_max_replicas": 4,
            "workload_probe_period_seconds": 2,
            "release_health": {"consecutive": 2, "interval": 1},
            "release_scale_down_delay": -1,
            "release_post_switch_watch": 3,
        }

    def __call__(self, playbook: str, **extra: Any) -> Any:
        variables = dict(self.vars, **extra)
        env = dict(
            __import__("os").environ,
            K8S_AUTH_KUBECONFIG=str(KUBECONFIG),
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
            ANSIBLE_SHOW_CUSTOM_STATS="1",
        )
        env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
        proc = run(
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(REPO / "inventories" / "dev"),
            str(PLAYBOOKS / playbook),
            "-e",
            json.dumps(variables),
            check=False,
            cwd=REPO,
            env=env,
            timeout=900,
        )
        try:
            report = json.loads(proc.stdout[proc.stdout.index("{") :])
        except ValueError:
            report = {}
        result = (report.get("global_custom_stats") or {}).get("release_result") or {}
        failures = [
            host.get("msg", "")
            for play in report.get("plays", [])
            for task in play.get("tasks", [])
            for host in task.get("hosts", {}).values()
            if host.get("failed")
        ]
        return Outcome(proc.returncode, result, " | ".join(failures), proc.stdout[-4000:] + proc.stderr[-2000:])


class Outcome:
    def __init__(self, rc: int, result: Dict[str, Any], message: str, output: str) -> None:
        self.rc, self.result, self.message, self.output = rc, result, message, output

    def __repr__(self) -> str:
        return f"Outcome(rc={self.rc}, message={self.message[:300]!r}, result={self.result!r}, output={self.output[-1500:]!r})"


@pytest.fixture
def operator(user_service_image):
    namespace = f"e2e-pb-{uuid.uuid4().hex[:6]}"
    yield Operator(namespace, user_service_image)
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def selected_slot(namespace: str) -> str:
    service = kubectl_json("-n", namespace, "get", "service", "user-service")
    return service["spec"]["selector"].get("deploy.userservice.io/slot")


def test_every_playbook_on_the_platform_with_zero_failed_requests(operator):
    namespace = operator.vars["user_service_namespace"]
    first = operator("release.yml", user_service_version="1.0.0")
    assert first.rc == 0, first.output
    stream = LoadGenerator(service_ip(namespace), rate=10, max_seconds=600).start()
    try:
        settle(stream)
        preview = operator("release.yml", user_service_version="2.0.0", release_action="preview")
        assert preview.rc == 0 and preview.result["pending_slot"] == "green", preview
        promoted = operator("promote.yml")
        assert promoted.rc == 0 and selected_slot(namespace) == "green", promoted
        # The pipeline's monitor stage: the built-in error-ratio check on the healthy version under load passes
        # (zero errors measure 0, not "no data"), with no data counted as a failure.
        monitored = operator(
            "release.yml",
            release_action="monitor",
            release_post_promotion_analysis=["error-ratio"],
            release_analysis_on_no_data="fail",
            release_analysis_window="30s",
            release_analysis_samples=2,
            release_analysis_interval=5,
        )
        assert monitored.rc == 0, monitored
        assert monitored.result["verdicts"]["post-promotion"] == "pass", monitored.result
        back = operator("rollback.yml")
        assert back.rc == 0 and selected_slot(namespace) == "blue", back
        again = operator("rollback.yml")
        assert again.rc == 0 and again.result["changed"] is False and selected_slot(namespace) == "blue", again
        status = operator("status.yml")
        assert status.rc == 0, status
        third = operator("release.yml", user_service_version="3.0.0", release_action="preview")
        assert third.rc == 0 and third.result["pending_slot"] == "green", third
        aborted = operator("abort.yml")
        assert aborted.rc == 0 and aborted.result["aborted_slot"] == "green", aborted
        # A run that holds the lock and died: the plan names the holder, the steal goes through the playbook.
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kubectl(
            "-n",
            namespace,
            "patch",
            "lease",
            "user-service-release",
            "--type",
            "merge",
            "-p",
            json.dumps({"spec": {"holderIdentity": "ghost run 1", "leaseDurationSeconds": 600, "renewTime": now}}),
        )
        held = operator("release.yml", user_service_version="2.0.0")
        assert held.rc != 0 and "ghost run 1" in held.message, held
        stolen = operator("release.yml", user_service_version="2.0.0", release_lock_steal=True)
        assert stolen.rc == 0 and selected_slot(namespace) == "green", stolen
        settle(stream)
    finally:
        stream.stop()
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    assert "3.0.0" not in summary["by_version"], summary  # the aborted preview never got traffic
    state = release_state(namespace)
    assert state["active_slot"] == "green" and state["run"] is None
    record("playbooks_end_to_end", requests=summary["requests"], failed=summary["failed"])


def test_a_digest_the_registry_does_not_have_is_refused_before_any_write(operator):
    namespace = operator.vars["user_service_namespace"]
    missing = "sha256:" + "0" * 64
    refused = operator("release.yml", user_service_version="9.9.9", user_service_image_digest=missing)
    assert refused.rc != 0 and "has no" in refused.message and missing in refused.message, refused
    gone = run("kubectl", "--kubeconfig", str(KUBECONFIG), "get", "namespace", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout  # not even the namespace was created
