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
        assert by_pod["b"]["failures"] == 2 and by_pod["b"]["consecutive_failures"] == 2
        assert by_pod["b"]["last_probes"][-1]["status"] == 503
        assert "pod b failed 2 probes in a row" in data["reason"]
        assert "Deployment user-service-dev/user-service-green" in str(info.value)

    def test_threshold_counts_failures_in_a_row_not_in_total(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a"])
        kube.proxy = scripted({"a": [DOWN, OK, DOWN, OK, DOWN, OK, OK]})
        result = run_health_gate(
            kube, dep, HealthSpec({"consecutive": 2, "failure_threshold": 2, "interval": 1}), clock=clock
        )
        record = result["pods"][0]
        assert record["passed"] and record["failures"] == 3 and record["consecutive_failures"] == 0

    def test_probe_bodies_never_reach_the_failure_data(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a"])
        kube.proxy = scripted({"a": [(500, {"trace": "connect postgres://app:hunter2@db failed"})]})
        with pytest.raises(GateFailedError) as info:
            run_health_gate(kube, dep, HealthSpec({"failure_threshold": 1}), clock=clock)
        assert "hunter2" not in json.dumps(info.value.to_dict()) and "hunter2" not in str(info.value)
        assert "HTTP 500 (no content type," in info.value.data["pods"][0]["last_probes"][0]["reason"]

    def test_pod_that_restarts_after_passing_is_probed_again(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a", "b"])
        pod_a = kube.pods[0]
        b_answers = [DOWN, DOWN, OK]

        def proxy(namespace: str, name: str, port: Any, path: str, timeout: float) -> ProxyResponse:
            if name == "b":
                status, body = b_answers.pop(0) if len(b_answers) > 1 else b_answers[0]
                if len(b_answers) == 1:
                    # a passed in the first round; it crashes and comes back while b is still starting.
                    pod_a["status"]["containerStatuses"][0]["restartCount"] = 1
                return ProxyResponse(status, json.dumps(body).encode())
            return ProxyResponse(*OK[:1], json.dumps(OK[1]).encode())

        kube.proxy = proxy
        result = run_health_gate(
            kube, dep, HealthSpec({"consecutive": 1, "failure_threshold": 3, "interval": 1}), clock=clock
        )
        record = {p["pod"]: p for p in result["pods"]}["a"]
        assert result["passed"] and record["passed"] and record["restarts"] == 1
        assert record["attempts"] == 2 and record["failures"] == 1
        assert "restartCount 0 -> 1) after the pod had passed" in record["last_probes"][1]["reason"]

    def test_crash_looping_pod_never_collects_its_successes(self, kube: Any, clock: Any) -> None:
        dep = gate_kube(kube, ["a"])
        pod_a = kube.pods[0]

        def proxy(namespace: str, name: str, port: Any, path: str, timeout: float) -> ProxyResponse:
            # Ready and healthy whenever probed, but it crashed again before the next probe.
            pod_a["status"]["containerStatuses"][0]["restartCount"] += 1
            return ProxyResponse(200, b"{}")

        kube.proxy = proxy
        with pytest.raises(GateFailedError) as info:
            run_health_gate(kube, dep, HealthSpec({"consecutive": 3, "timeout": 20, "interval": 2}), clock=clock)
        record = info.value.data["pods"][0]
        assert not record["passed"] and record["restarts"] >= 5
        assert "timed out" in info.value.data["reason"]

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
        assert judge_response(spec, 200, b"<html>", "text/html")["reason"] == (
            "HTTP 200 (text/html, 6 bytes): body is not JSON"
        )

    def test_null_field_is_a_failure(self) -> None:
        spec = HealthSpec({"json_path": "status", "value": "ok"})
        judged = judge_response(spec, 200, b'{"status": null}')
        assert judged["ok"] is False and judged["reason"] == "field status null"

    def test_failure_reason_never_quotes_the_body(self) -> None:
        judged = judge_response(HealthSpec(), 500, b'{"error": "db password=hunter2 refused"}', "application/json")
        assert judged["reason"] == "HTTP 500 (application/json, 40 bytes), expected 2xx"

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
