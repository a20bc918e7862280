# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.client import ProxyResponse
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiUnreachableError,
    GateFailedError,
    InvalidArgumentError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.health import (
    HealthSpec,
    judge_response,
    run_health_gate,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.objects import (
    NS,
    deployment,
    pod,
    replica_set,
)


def gate_kube(kube: Any, pod_names: List[str]) -> Dict[str, Any]:
    dep = deployment(replicas=len(pod_names), updated=len(pod_names), total=len(pod_names), available=len(pod_names))
    dep["metadata"]["namespace"] = NS
    kube.replica_sets = [replica_set("4", "new"), replica_set("3", "old")]
    kube.pods = [pod(name, "new") for name in pod_names] + [pod("old-1", "old")]
    return dep


def scripted(answers: Dict[str, List[Any]]) -> Any:
    """Per-pod answers in order; the last one repeats."""

    def proxy(namespace: str, name: str, port: Any, path: str, timeout: float) -> ProxyResponse:
        queue = answers[name]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return ProxyResponse(status, json.dumps(body).encode())

    return proxy


OK = (200, {"status": "ok"})
DOWN = (503, {"status": "starting"})


class TestGate:
    def test_passes_after_n_consecutive_per_pod_and_skips_old_pods(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a", "b"])
        kube.proxy = scripted({"a": [OK], "b": [OK]})
        result = run_health_gate(kube, dep, HealthSpec({"consecutive": 3, "interval": 2}), clock=clock)
        assert result["passed"] is True
        assert [p["consecutive_successes"] for p in result["pods"]] == [3, 3]
        assert clock.elapsed == 4  # round-robin: 3 rounds, 2 sleeps, whatever the pod count
        probed = {c[1] for c in kube.calls if c[0] == "proxy"}
        assert probed == {"a", "b"}
        assert ("proxy", "a", "3000", "/api/health/status") in kube.calls

    def test_failure_resets_the_streak(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a"])
        kube.proxy = scripted({"a": [OK, OK, DOWN, OK, OK, OK]})
        result = run_health_gate(kube, dep, HealthSpec({"consecutive": 3, "interval": 1}), clock=clock)
        record = result["pods"][0]
        assert record["attempts"] == 6
        assert record["failures"] == 1
        assert record["passed"]

    def test_failure_threshold_fails_fast_with_per_pod_data(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a", "b"])
        kube.proxy = scripted({"a": [OK], "b": [DOWN]})
        with pytest.raises(GateFailedError) as info:
            run_health_gate(
                kube, dep, HealthSpec({"consecutive": 5, "failure_threshold": 2, "interval": 1}), clock=clock
            )
        data = info.value.data
        assert data["passed"] is False
        by_pod = {p["pod"]: p for p in data["pods"]}
        assert by_pod["b"]["failures"] == 2
        assert by_pod["b"]["last_probes"][-1]["status"] == 503
        assert "pod b failed 2 probes" in data["reason"]
        assert "Deployment user-service-dev/user-service-green" in str(info.value)

    def test_timeout_when_threshold_disabled(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a"])
        kube.proxy = scripted({"a": [DOWN]})
        with pytest.raises(GateFailedError) as info:
            run_health_gate(kube, dep, HealthSpec({"failure_threshold": 0, "timeout": 10, "interval": 2}), clock=clock)
        assert clock.elapsed == 10
        assert "timed out" in info.value.data["reason"]

    def test_unreachable_probe_counts_as_failure(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a"])
        kube.proxy = scripted({"a": [ApiUnreachableError("x", seen="read timeout"), OK]})
        result = run_health_gate(kube, dep, HealthSpec({"consecutive": 2, "interval": 1}), clock=clock)
        assert result["pods"][0]["failures"] == 1
        assert result["pods"][0]["last_probes"][0]["reason"] == "read timeout"

    def test_not_enough_ready_pods_keeps_waiting(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a", "b"])
        kube.pods[1]["status"]["conditions"][0]["status"] = "False"
        kube.proxy = scripted({"a": [OK]})
        with pytest.raises(GateFailedError) as info:
            run_health_gate(kube, dep, HealthSpec({"consecutive": 1, "timeout": 6, "interval": 2}), clock=clock)
        assert "1 of 2 pods passed (1 Ready)" in info.value.data["reason"]


class TestJudge:
    def test_json_condition(self) -> None:
        spec = HealthSpec({"json_path": "status", "value": "ok"})
        assert judge_response(spec, 200, b'{"status": "ok"}')["ok"]
        bad = judge_response(spec, 200, b'{"status": "degraded"}')
        assert not bad["ok"] and "'degraded' == 'ok' is false" in bad["reason"]
        assert judge_response(spec, 200, b"{}")["reason"] == "field status missing"
        assert judge_response(spec, 200, b"<html>")["reason"] == "body is not JSON"

    def test_expected_status_list_overrides_2xx(self) -> None:
        spec = HealthSpec({"expected_status": [204]})
        assert judge_response(spec, 204, b"")["ok"]
        assert not judge_response(spec, 200, b"")["ok"]

    @pytest.mark.parametrize(
        "params, option",
        [
            ({"path": "api/health"}, "health.path"),
            ({"port": 0}, "health.port"),
            ({"consecutive": 0}, "health.consecutive"),
            ({"interval": 0}, "health.interval"),
            ({"timeout": -1}, "health.timeout"),
            ({"expected_status": [99]}, "health.expected_status"),
            ({"json_path": "status"}, "health.value"),
            ({"json_path": "status", "condition": "in", "value": "ok"}, "health.value"),
        ],
    )
    def test_bad_options_name_the_option(self, params: Dict[str, Any], option: str) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            HealthSpec(params)
        assert info.value.option == option
        assert option in str(info.value)
