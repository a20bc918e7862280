# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate: every new pod answers its health endpoint N times in a row.

Probes go through the API server's pod proxy, so the gate works from any place
that can reach the API (laptop, AWX node, CI runner) and needs nothing in the
cluster but ``get`` on ``pods/proxy``. Pods are probed round-robin, one probe
per pod per interval, so the gate takes about ``consecutive * interval``
whatever the replica count.

A pod whose containers restart (its ``restartCount`` grows) starts again from
zero, even after it passed: a crash-looping pod that is Ready between crashes
must not collect its successes across them. Answers are judged by
http_probe.judge_answer, which never keeps the body.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiUnreachableError,
    GateFailedError,
    InvalidArgumentError,
    WaitTimeoutError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import (
    Expectation,
    HttpTarget,
    judge_answer,
    send_probe,
)
from ansible_collections.userservice.deploy.plugins.module_utils.matchers import CONDITIONS
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import (
    SystemClock,
    current_pods,
    desired_replicas,
    isoformat,
    pod_ready,
    poll,
)

# One source for the gate options; plugins/doc_fragments/health.py documents them.
HEALTH_OPTIONS: Dict[str, Dict[str, Any]] = {
    "path": dict(type="str", default="/api/health/status"),
    "port": dict(type="int", default=3000),
    "scheme": dict(type="str", default="http", choices=["http", "https"]),
    "consecutive": dict(type="int", default=3),
    "interval": dict(type="float", default=2.0),
    "request_timeout": dict(type="float", default=5.0),
    "timeout": dict(type="float", default=120.0),
    "failure_threshold": dict(type="int", default=3),
    "expected_status": dict(type="list", elements="int"),
    "json_path": dict(type="str"),
    "condition": dict(type="str", default="==", choices=CONDITIONS),
    "value": dict(type="raw"),
}

HEALTH_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    "health": dict(type="dict", default={}, options=HEALTH_OPTIONS),
}

PROBES_KEPT = 5


class HealthSpec:
    """Validated gate settings; option names in errors are the user's (``health.<key>``)."""

    def __init__(self, params: Optional[Dict[str, Any]] = None) -> None:
        values = {key: spec.get("default") for key, spec in HEALTH_OPTIONS.items()}
        values.update({k: v for k, v in (params or {}).items() if v is not None})
        self.path: str = values["path"]
        self.port: int = values["port"]
        self.scheme: str = values["scheme"]
        self.consecutive: int = values["consecutive"]
        self.interval: float = values["interval"]
        self.request_timeout: float = values["request_timeout"]
        self.timeout: float = values["timeout"]
        self.failure_threshold: int = values["failure_threshold"]
        self.expected_status: Optional[List[int]] = values.get("expected_status") or None
        self.json_path: Optional[str] = values.get("json_path")
        self.condition: str = values["condition"]
        self.value: Any = values.get("value")
        self.validate()

    def validate(self) -> None:
        if not self.path.startswith("/"):
            raise InvalidArgumentError("health.path", "an absolute URL path starting with '/'", self.path)
        if not 1 <= self.port <= 65535:
            raise InvalidArgumentError("health.port", "a port number 1-65535", self.port)
        if self.consecutive < 1:
            raise InvalidArgumentError("health.consecutive", "an integer >= 1", self.consecutive)
        for key in ("interval", "request_timeout", "timeout"):
            if getattr(self, key) <= 0:
                raise InvalidArgumentError("health.%s" % key, "a number of seconds > 0", getattr(self, key))
        if self.failure_threshold < 0:
            raise InvalidArgumentError(
                "health.failure_threshold",
                "an integer >= 0 (0 = only the timeout ends the gate)",
                self.failure_threshold,
            )
        for code in self.expected_status or []:
            if not 100 <= code <= 599:
                raise InvalidArgumentError("health.expected_status", "HTTP status codes 100-599", self.expected_status)
        if self.json_path is not None and self.value is None:
            raise InvalidArgumentError("health.value", "a value to compare health.json_path with", None)
        if self.condition == "in" and self.json_path is not None and not isinstance(self.value, list):
            raise InvalidArgumentError("health.value", "a list when health.condition is 'in'", self.value)

    def describe(self) -> Dict[str, Any]:
        """The gate parameters as plan/result data."""
        return {
            "path": self.path,
            "port": self.port,
            "scheme": self.scheme,
            "consecutive": self.consecutive,
            "interval": self.interval,
            "request_timeout": self.request_timeout,
            "timeout": self.timeout,
            "failure_threshold": self.failure_threshold,
            "expected_status": self.expected_status or "2xx",
            "json_condition": None
            if self.json_path is None
            else {"path": self.json_path, "condition": self.condition, "value": self.value},
        }

    def expectation(self) -> Expectation:
        return Expectation(
            expected_status=self.expected_status, json_path=self.json_path, condition=self.condition, value=self.value
        )


def judge_response(
    spec: HealthSpec, status: int, body: bytes, content_type: str = "", latency: Optional[float] = None
) -> Dict[str, Any]:
    """``{ok, status, reason}`` for one health answer; a missing or null JSON field is a failure here."""
    judged = judge_answer(spec.expectation(), status, body, content_type, latency)
    out = {"ok": judged["ok"] is True, "status": status, "reason": judged["reason"]}
    if latency is not None:
        out["latency"] = judged["latency"]
    return out


def restart_count(pod: Dict[str, Any]) -> int:
    """Restarts of all the pod's containers (init containers included)."""
    status = pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    return sum(int(container.get("restartCount") or 0) for container in statuses)


class _PodRecord:
    def __init__(self, name: str, restarts: int) -> None:
        self.name = name
        self.consecutive = 0
        self.consecutive_failures = 0
        self.attempts = 0
        self.failures = 0
        self.passed = False
        self.restarts = restarts
        self.probes: List[Dict[str, Any]] = []

    def add(self, probe: Dict[str, Any], needed: int) -> None:
        self.attempts += 1
        if probe["ok"]:
            self.consecutive += 1
            self.consecutive_failures = 0
            self.passed = self.consecutive >= needed
        else:
            self.consecutive = 0
            self.consecutive_failures += 1
            self.failures += 1
        self.probes = (self.probes + [probe])[-PROBES_KEPT:]

    def restarted(self, restarts: int, at: str) -> Optional[Dict[str, Any]]:
        """A failed pseudo-probe when the containers restarted since the last look; the pod starts again."""
        if restarts <= self.restarts:
            return None
        event = {
            "time": at,
            "ok": False,
            "status": None,
            "reason": "containers restarted (restartCount %d -> %d)%s"
            % (self.restarts, restarts, " after the pod had passed" if self.passed else ""),
        }
        self.restarts = restarts
        self.passed = False
        self.consecutive = 0
        self.consecutive_failures += 1
        self.failures += 1
        self.probes = (self.probes + [event])[-PROBES_KEPT:]
        return event

    def as_dict(self) -> Dict[str, Any]:
        return {
            "pod": self.name,
            "passed": self.passed,
            "consecutive_successes": self.consecutive,
            "consecutive_failures": self.consecutive_failures,
            "attempts": self.attempts,
            "failures": self.failures,
            "restarts": self.restarts,
            "last_probes": self.probes,
        }


def run_health_gate(
    client: Any,
    deployment: Dict[str, Any],
    spec: HealthSpec,
    *,
    clock: Optional[Any] = None,
    heartbeat: Optional[Any] = None,
) -> Dict[str, Any]:
    """Probe every Ready pod of the Deployment's current ReplicaSet until each passed.

    Returns the per-pod results as data. Raises GateFailedError (with the same data)
    when a pod fails ``failure_threshold`` probes in a row (a container restart
    counts as one) or ``timeout`` runs out. Probe results keep status, content
    type and length of an answer, never its body.
    """
    clock = clock or SystemClock()
    meta = deployment.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    want = desired_replicas(deployment)
    records: Dict[str, _PodRecord] = {}
    started_at = isoformat(clock.now())

    def result(passed: bool, reason: str) -> Dict[str, Any]:
        return {
            "deployment": name,
            "namespace": namespace,
            "passed": passed,
            "reason": reason,
            "gate": spec.describe(),
            "pods": [records[key].as_dict() for key in sorted(records)],
            "started_at": started_at,
            "finished_at": isoformat(clock.now()),
        }

    def fail(reason: str, seen: str) -> GateFailedError:
        return GateFailedError(
            "health gate failed",
            kind="Deployment",
            namespace=namespace,
            name=name,
            expected="each new pod to answer %s %s on port %s %d times in a row"
            % (spec.expected_status or "2xx", spec.path, spec.port, spec.consecutive),
            seen=seen,
            hint="Traffic was not moved; check the pod logs and the health endpoint",
            data=result(False, reason),
        )

    def check_threshold(record: _PodRecord, last: Dict[str, Any]) -> None:
        if spec.failure_threshold and record.consecutive_failures >= spec.failure_threshold:
            reason = "pod %s failed %d probes in a row, last: %s" % (
                record.name,
                record.consecutive_failures,
                last["reason"],
            )
            raise fail(reason, reason)

    def step() -> Any:
        pods = current_pods(client, deployment)
        at = isoformat(clock.now())
        for pod in pods:
            record = records.get(pod["metadata"]["name"])
            event = record.restarted(restart_count(pod), at) if record else None
            if record and event:
                check_threshold(record, event)
        ready = [pod for pod in pods if pod_ready(pod)]
        for pod in ready:
            pod_name = pod["metadata"]["name"]
            record = records.setdefault(pod_name, _PodRecord(pod_name, restart_count(pod)))
            if record.passed:
                continue
            probe = probe_pod(client, namespace, pod_name, spec, clock)
            record.add(probe, spec.consecutive)
            check_threshold(record, probe)
        passed = [r for r in records.values() if r.passed and r.name in {p["metadata"]["name"] for p in ready}]
        if len(ready) >= want and len(passed) == len(ready):
            return True, None
        return False, {"reason": "%d of %d pods passed (%d Ready)" % (len(passed), want, len(ready))}

    try:
        poll(
            step, timeout=spec.timeout, interval=spec.interval, what="the health gate", clock=clock, heartbeat=heartbeat
        )
    except WaitTimeoutError as exc:
        raise fail("timed out after %ss: %s" % (spec.timeout, exc.seen), exc.seen or "timeout") from exc
    return result(True, "%d pods answered %d times in a row" % (len(records), spec.consecutive))


def probe_pod(client: Any, namespace: str, pod: str, spec: HealthSpec, clock: Any) -> Dict[str, Any]:
    at = isoformat(clock.now())
    target = HttpTarget(pod=pod, namespace=namespace, port=spec.port, path=spec.path, scheme=spec.scheme)
    try:
        answer = send_probe(target, spec.request_timeout, clock, kube=client)
    except ApiUnreachableError as exc:
        return {"time": at, "ok": False, "status": None, "reason": str(exc.seen or exc.message)}
    judged = judge_response(spec, answer.status, answer.body, answer.content_type, answer.latency)
    judged["time"] = at
    return judged
