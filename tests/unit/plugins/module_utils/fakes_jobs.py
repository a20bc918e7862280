# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake KubeClient that runs check Jobs on the fake clock, and a fake webhook boundary."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.errors import ApiError, ReleaseError
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import HttpUnreachable
from ansible_collections.userservice.deploy.plugins.module_utils.job_check import JOB_LABEL
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import EPOCH, FakeClock, FakeKube


class JobScript:
    """What one Job does, measured in fake seconds from its creation.

    ``pod_after``: when its pod appears; ``runs_for``: when its container ends with ``exit_code``
    (``reason`` as the kubelet reports it); ``waiting``: a reason the container waits with forever
    (ImagePullBackOff); ``never_ends``: it runs until the deadline; ``refuse``: create raises it.
    A Job still running at ``activeDeadlineSeconds`` (or at ``deadline``, when the test wants the
    cluster's clock to run ahead of ours) is failed by the "controller" (DeadlineExceeded) and its
    pod killed (exit 137, being deleted), as the real Job controller does.
    """

    def __init__(
        self,
        exit_code: int = 0,
        runs_for: float = 5.0,
        logs: str = "",
        pod_after: float = 1.0,
        waiting: Optional[str] = None,
        never_ends: bool = False,
        reason: Optional[str] = None,
        refuse: Optional[ReleaseError] = None,
        pod_phase_failure: Optional[str] = None,
        deadline: Optional[float] = None,
    ) -> None:
        self.exit_code = exit_code
        self.runs_for = runs_for
        self.logs = logs
        self.pod_after = pod_after
        self.waiting = waiting
        self.never_ends = never_ends
        self.reason = reason
        self.refuse = refuse
        self.pod_phase_failure = pod_phase_failure
        self.deadline = deadline


def _raise(error: BaseException) -> None:
    raise error


class FakeJobKube(FakeKube):
    """FakeKube plus Jobs that run by a script on the fake clock, their pods and their logs."""

    def __init__(self, clock: FakeClock, scripts: Optional[List[JobScript]] = None) -> None:
        super().__init__()
        self.clock = clock
        self.scripts = list(scripts or [JobScript()])
        self.jobs: Dict[str, Tuple[float, JobScript]] = {}
        self.created: List[Dict[str, Any]] = []
        self.log_requests: List[Tuple[str, int]] = []
        self.log_error: Optional[ReleaseError] = None
        self.delete_error: Optional[ReleaseError] = None
        self.dry_run = False

    def _next_script(self) -> JobScript:
        return self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]

    def create(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        if kind != "Job":
            return super().create(kind, namespace, body)
        script = self._next_script()
        if script.refuse is not None:
            self.calls.append(("create", kind, body["metadata"]["name"]))
            _raise(script.refuse)
        created = super().create(kind, namespace, body)
        self.created.append(copy.deepcopy(body))
        self.jobs[body["metadata"]["name"]] = (self.clock.monotonic(), script)
        return created

    def delete(self, kind: str, namespace: str, name: str, resource_version: Optional[str] = None) -> Dict[str, Any]:
        if kind == "Job" and self.delete_error is not None:
            self.calls.append(("delete", kind, name))
            _raise(self.delete_error)
        return super().delete(kind, namespace, name, resource_version)

    def running_jobs(self) -> List[str]:
        return sorted(name for (kind, _ns, name) in self.objects if kind == "Job")

    # -- what the cluster would show ----------------------------------------------

    def _age(self, name: str) -> Tuple[float, JobScript]:
        started, script = self.jobs[name]
        return self.clock.monotonic() - started, script

    def _deadline(self, name: str, namespace: str) -> Optional[float]:
        job = self.objects.get(("Job", namespace, name)) or {}
        return (job.get("spec") or {}).get("activeDeadlineSeconds")

    def _job_state(self, name: str, namespace: str) -> Dict[str, Any]:
        """``{"pod": pod status or None, "conditions": [...], "deleting": bool}`` now."""
        age, script = self._age(name)
        deadline = script.deadline if script.deadline is not None else self._deadline(name, namespace)
        ends = None if (script.never_ends or script.waiting or script.pod_phase_failure) else script.runs_for
        if deadline is not None and age >= deadline and (ends is None or ends > deadline):
            killed = {"terminated": {"exitCode": 137, "reason": "Error"}}
            return {
                "pod": {"phase": "Failed", "containerStatuses": [{"name": "check", "state": killed}]},
                "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}],
                "deleting": True,
            }
        if age < script.pod_after:
            return {"pod": None, "conditions": [], "deleting": False}
        if script.pod_phase_failure:
            return {
                "pod": {"phase": "Failed", "reason": script.pod_phase_failure, "message": "The node was low on memory"},
                "conditions": [],
                "deleting": False,
            }
        if script.waiting:
            state = {"waiting": {"reason": script.waiting, "message": "back-off pulling image"}}
            return {
                "pod": {"phase": "Pending", "containerStatuses": [{"name": "check", "state": state}]},
                "conditions": [],
                "deleting": False,
            }
        if ends is None or age < ends:
            state = {"running": {"startedAt": "2026-01-02T03:04:06Z"}}
            return {
                "pod": {"phase": "Running", "containerStatuses": [{"name": "check", "state": state}]},
                "conditions": [],
                "deleting": False,
            }
        reason = script.reason or ("Completed" if script.exit_code == 0 else "Error")
        terminated = {"terminated": {"exitCode": script.exit_code, "reason": reason}}
        ok = script.exit_code == 0 and reason == "Completed"
        condition = {"type": "Complete"} if ok else {"type": "Failed", "reason": "BackoffLimitExceeded"}
        return {
            "pod": {
                "phase": "Succeeded" if ok else "Failed",
                "containerStatuses": [{"name": "check", "state": terminated}],
            },
            "conditions": [dict(condition, status="True")],
            "deleting": False,
        }

    def read(self, kind: str, namespace: str, name: str) -> Dict[str, Any]:
        obj = super().read(kind, namespace, name)
        if kind == "Job" and name in self.jobs:
            obj["status"] = {"conditions": self._job_state(name, namespace)["conditions"]}
        return obj

    def list(self, kind: str, namespace: str, selector: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
        job = (selector or {}).get(JOB_LABEL)
        if kind != "Pod" or job is None:
            return super().list(kind, namespace, selector)
        self.calls.append(("list", "Pod", job))
        if ("Job", namespace, job) not in self.objects or job not in self.jobs:
            return []
        state = self._job_state(job, namespace)
        if state["pod"] is None:
            return []
        metadata: Dict[str, Any] = {
            "name": "%s-abcde" % job,
            "namespace": namespace,
            "labels": {JOB_LABEL: job},
            "creationTimestamp": EPOCH.isoformat(),
        }
        if state["deleting"]:
            metadata["deletionTimestamp"] = EPOCH.isoformat()
        return [{"metadata": metadata, "status": state["pod"]}]

    def pod_log(self, namespace: str, pod: str, tail_lines: int) -> str:
        self.log_requests.append((pod, tail_lines))
        if self.log_error is not None:
            raise self.log_error
        job = pod.rsplit("-", 1)[0]
        _age, script = self._age(job)
        lines = script.logs.splitlines()
        return "\n".join(lines[-tail_lines:]) + ("\n" if lines else "")


def api_error(status: int, message: str = "refused") -> ApiError:
    return ApiError(message, status=status)


class FakePost:
    """The webhook POST boundary: answers from a script, records what was sent."""

    def __init__(self, answers: List[Any], clock: Optional[FakeClock] = None, takes: float = 0.0) -> None:
        self.answers = list(answers)
        self.sent: List[Dict[str, Any]] = []
        self.clock = clock
        self.takes = takes

    def __call__(self, url: str, body: bytes, headers: Dict[str, str], timeout: float, validate_certs: bool) -> int:
        self.sent.append({"url": url, "body": body, "headers": dict(headers), "timeout": timeout})
        if self.clock is not None:
            self.clock.advance(min(self.takes, timeout))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return int(answer)


def unreachable(text: str = "timed out") -> HttpUnreachable:
    return HttpUnreachable(text)
