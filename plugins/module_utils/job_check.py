# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes Job analysis check: one Job per sample, its container's exit code decides.

A sample creates a Job in the release namespace, watches it without blocking
the other checks of the phase (the analysis loop polls it between their
samples), reads the exit code of its one container and the last lines of its
log, and deletes it. Exit code 0 is an ok sample, any other a failed one. A Job
that cannot run or finish (image pull errors, admission refusing the pod, the
timeout, the API server refusing the Job) is an *error* sample: it says nothing
about the release and counts against ``error_limit``.

The pod runs under the restricted Pod Security Standard (non-root, no privilege
escalation, every capability dropped, the runtime's default seccomp profile),
without a ServiceAccount token unless the check names a ServiceAccount, and
carries none of the application's labels, so no Service of the application ever
routes traffic to it.

Logs kept in results pass through :func:`redact_secrets`: bearer tokens,
``Authorization`` values, JWTs, ``password=``-style pairs and URL userinfo are
replaced by ``***`` before they reach the module result or the state record.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import redact_secrets
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import PLACEHOLDER
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import STUCK_REASONS, backoff

JOB_OPTIONS: Dict[str, Dict[str, Any]] = {
    "image": dict(type="str", required=True),
    "command": dict(type="list", elements="str"),
    "args": dict(type="list", elements="str"),
    "env": dict(type="dict", default={}),
    "timeout": dict(type="float", default=300.0),
    "log_lines": dict(type="int", default=20),
    "service_account": dict(type="str"),
    "run_as_user": dict(type="int"),
    "resources": dict(type="dict"),
}

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "userservice.deploy"
PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"
# Our own pod label to find the Job's pod: the controller's job-name labels changed name across releases.
JOB_LABEL = "deploy.userservice.io/analysis-job"
CHECK_LABEL = "deploy.userservice.io/analysis-check"
CONTAINER = "check"
# The cluster removes a finished Job this long after it ends if this run could not (API server gone, run killed).
JOB_TTL_SECONDS = 600
TERMINATION_GRACE_SECONDS = 5
MAX_LOG_LINES = 1000
# One log line kept in a result at most this long: results end up in the state record (a ConfigMap, 1 MiB).
LOG_LINE_LIMIT = 300
# Bytes of log asked for; a container printing megabytes must not fill the module's memory.
LOG_BYTES_LIMIT = 64 * 1024
# A terminated container with one of these reasons did not run the check to its end: no verdict on the release.
NOT_RUN_REASONS = frozenset({"OOMKilled", "ContainerCannotRun", "StartError", "DeadlineExceeded"})
# restartPolicy Never: CrashLoopBackOff cannot happen; the others never clear up by themselves.
NOT_STARTING_REASONS = STUCK_REASONS - {"CrashLoopBackOff"}

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
RESOURCE_KEYS = ("limits", "requests")


def _defaults(options: Dict[str, Dict[str, Any]], params: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    values = {key: spec.get("default") for key, spec in options.items()}
    values.update({k: v for k, v in (params or {}).items() if v is not None})
    return values


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------


class JobOptions:
    """The validated ``job`` option of a check; errors name ``analysis.checks[i].job.<key>``."""

    def __init__(self, params: Any, where: str, check: str) -> None:
        self.where = where
        self.check = check
        if not isinstance(params, dict):
            raise self._bad("", "a dict with at least image, for a job check", params)
        unknown = sorted(set(params) - set(JOB_OPTIONS))
        if unknown:
            raise self._bad(unknown[0], "one of %s" % ", ".join(sorted(JOB_OPTIONS)), params[unknown[0]])
        v = _defaults(JOB_OPTIONS, params)
        self.image: str = v["image"] or ""
        self.command: Optional[List[str]] = self._strings("command", v["command"])
        self.args: Optional[List[str]] = self._strings("args", v["args"])
        self.env: Dict[str, Any] = self._env(v["env"])
        self.timeout: float = v["timeout"]
        self.log_lines: int = v["log_lines"]
        self.service_account: Optional[str] = v["service_account"]
        self.run_as_user: Optional[int] = v["run_as_user"]
        self.resources: Optional[Dict[str, Any]] = v["resources"]
        self.validate()

    def _bad(self, key: str, expected: str, seen: Any) -> InvalidArgumentError:
        option = "%s.%s" % (self.where, key) if key else self.where
        return InvalidArgumentError(option, expected, seen, hint="Fix check '%s' in the analysis option" % self.check)

    def _strings(self, key: str, value: Any) -> Optional[List[str]]:
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._bad(key, "a list of strings", value)
        out = []
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)) or item is None:
                raise self._bad("%s[%d]" % (key, index), "a string", item)
            out.append(_text(item))
        return out

    def _env(self, value: Any) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self._bad("env", "a dict of variable name to value (or to {secret, key})", value)
        env: Dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not ENV_NAME.match(name):
                raise self._bad(
                    "env", "variable names of letters, digits, '_', '-', '.' (not starting with a digit)", name
                )
            if isinstance(item, dict):
                if set(item) != {"secret", "key"} or not all(isinstance(item[k], str) and item[k] for k in item):
                    raise self._bad(
                        "env.%s" % name, "a value, or {secret: <Secret name>, key: <key in it>}", sorted(item)
                    )
                env[name] = dict(item)
            elif item is None or isinstance(item, list):
                raise self._bad("env.%s" % name, "a string, number or boolean", item)
            else:
                env[name] = _text(item)
        return env

    def validate(self) -> None:
        if not self.image or not isinstance(self.image, str) or any(c.isspace() for c in self.image):
            raise self._bad("image", "an image reference without spaces (name:tag or name@sha256:digest)", self.image)
        if not (isinstance(self.timeout, (int, float)) and self.timeout > 0 and math.isfinite(self.timeout)):
            raise self._bad("timeout", "seconds > 0 for a Job to run to its end", self.timeout)
        if not (isinstance(self.log_lines, int) and 0 <= self.log_lines <= MAX_LOG_LINES):
            raise self._bad("log_lines", "an integer from 0 to %d" % MAX_LOG_LINES, self.log_lines)
        if self.service_account is not None and not DNS_SUBDOMAIN.match(self.service_account):
            raise self._bad("service_account", "a ServiceAccount name (lower case DNS subdomain)", self.service_account)
        if self.run_as_user is not None and (not isinstance(self.run_as_user, int) or self.run_as_user < 1):
            raise self._bad(
                "run_as_user", "a user id >= 1 (the restricted Pod Security Standard refuses root)", self.run_as_user
            )
        if self.resources is not None:
            if not isinstance(self.resources, dict) or set(self.resources) - set(RESOURCE_KEYS):
                raise self._bad("resources", "a dict with limits and/or requests", self.resources)
            for key, amounts in self.resources.items():
                if not isinstance(amounts, dict) or not all(
                    isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in amounts.values()
                ):
                    raise self._bad("resources.%s" % key, "a dict such as {cpu: 100m, memory: 64Mi}", amounts)

    def bound(self) -> Dict[str, Any]:
        return {"exit_code": 0}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------
# Templates and the manifest
# ---------------------------------------------------------------------------


def render_plain(template: str, variables: Dict[str, Any], option: str) -> str:
    """Fill ``${name}`` placeholders with the values as they are (argv and env need no quoting).

    An unknown name, or one the context leaves unset, is an error naming ``option``.
    """

    def value(match: Any) -> str:
        key = match.group(1)
        if variables.get(key) is None:
            raise InvalidArgumentError(
                option,
                "placeholders among %s" % ", ".join(sorted(k for k, v in variables.items() if v is not None)),
                "${%s}" % key,
                hint="The engine sets namespace, app, version, slot and track when it knows them; "
                "add others under analysis.variables",
            )
        return _text(variables[key])

    return PLACEHOLDER.sub(value, template)


class RenderedJob:
    """The container of a check with its placeholders filled."""

    def __init__(self, options: JobOptions, variables: Dict[str, Any]) -> None:
        where = options.where
        self.options = options
        self.image = render_plain(options.image, variables, "%s.image" % where)
        self.command = (
            None
            if options.command is None
            else [render_plain(c, variables, "%s.command[%d]" % (where, i)) for i, c in enumerate(options.command)]
        )
        self.args = (
            None
            if options.args is None
            else [render_plain(a, variables, "%s.args[%d]" % (where, i)) for i, a in enumerate(options.args)]
        )
        self.env: List[Dict[str, Any]] = []
        for name, item in sorted(options.env.items()):
            if isinstance(item, dict):
                ref = {"name": item["secret"], "key": item["key"]}
                self.env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
            else:
                self.env.append({"name": name, "value": render_plain(item, variables, "%s.env.%s" % (where, name))})

    def describe(self) -> str:
        """What results show as the check's query: image and argv, secrets redacted (env values never shown)."""
        argv = (self.command or []) + (self.args or [])
        text = "job image %s" % self.image
        if argv:
            text += " run %s" % " ".join(argv)
        return redact_secrets(text)


def _dns_label(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "x"


def label_value(text: str) -> str:
    """``text`` as a valid label value (63 characters of ``[A-Za-z0-9._-]``, alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def job_name(app: str, check: str, run_id: str, sample: int) -> str:
    """``<app>-<check>-<run>-<sample>``, shortened (with a hash, so names stay distinct) to a 63-character DNS label.

    63, not 253: the Job controller copies the name into a pod label value.
    """
    suffix = "-%s-%d" % (_dns_label(run_id)[:8], sample)
    base = _dns_label("%s-%s" % (app, check))
    room = 63 - len(suffix)
    if len(base) > room:
        digest = hashlib.sha256(base.encode("utf-8")).hexdigest()[:6]
        base = base[: room - 7].rstrip("-") + "-" + digest
    return base + suffix


def build_job(rendered: RenderedJob, *, namespace: str, name: str, app: str, check: str, run_id: str) -> Dict[str, Any]:
    """The Job of one sample."""
    options = rendered.options
    labels = {
        MANAGED_BY_LABEL: MANAGER,
        # part-of, never app.kubernetes.io/name: the application's Services select on name.
        PART_OF_LABEL: label_value(app),
        COMPONENT_LABEL: "analysis",
        CHECK_LABEL: label_value(check),
        JOB_LABEL: name,
        "deploy.userservice.io/run": label_value(run_id),
    }
    container: Dict[str, Any] = {
        "name": CONTAINER,
        "image": rendered.image,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # The verdict is the exit code; the message file is the one other thing kept, and logs say more.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if rendered.command is not None:
        container["command"] = rendered.command
    if rendered.args is not None:
        container["args"] = rendered.args
    if rendered.env:
        container["env"] = rendered.env
    if options.resources:
        container["resources"] = options.resources
    pod_security: Dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if options.run_as_user is not None:
        pod_security["runAsUser"] = options.run_as_user
        container["securityContext"]["runAsUser"] = options.run_as_user
    pod_spec: Dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security,
        "automountServiceAccountToken": options.service_account is not None,
        "enableServiceLinks": False,
        # A check stopped for its timeout (or because the analysis ended) has no verdict left to give: no 30 s grace.
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "containers": [container],
    }
    if options.service_account is not None:
        pod_spec["serviceAccountName"] = options.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            # One attempt: a retried check would hide a flaky failure behind a later pass.
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(math.ceil(options.timeout)),
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


# ---------------------------------------------------------------------------
# One sample
# ---------------------------------------------------------------------------


def _conditions(job: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    out = {}
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True":
            out[condition.get("type")] = condition
    return out


def _container_state(pod: Dict[str, Any]) -> Dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return status.get("state") or {}
    return {}


def _waiting_reason(pod: Dict[str, Any]) -> Optional[str]:
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in NOT_STARTING_REASONS:
            message = waiting.get("message") or ""
            return "%s%s" % (waiting["reason"], ": %s" % message if message else "")
    return None


class JobSample:
    """One Job from creation to deletion; :meth:`poll` returns the sample once the Job has an outcome."""

    def __init__(
        self,
        kube: Any,
        manifest: Dict[str, Any],
        options: JobOptions,
        clock: Any,
        poll_interval: Optional[Callable[[], float]] = None,
    ) -> None:
        self.kube = kube
        self.manifest = manifest
        self.namespace: str = manifest["metadata"]["namespace"]
        self.name: str = manifest["metadata"]["name"]
        self.options = options
        self.clock = clock
        self.started = clock.monotonic()
        self.created = False
        self.pod: Optional[str] = None
        self.interval = poll_interval or backoff(1.0, 5.0)

    @property
    def elapsed(self) -> float:
        return max(0.0, self.clock.monotonic() - self.started)

    def _sample(
        self, ok: Optional[bool], outcome: str, exit_code: Optional[int], error: Optional[str]
    ) -> Dict[str, Any]:
        sample: Dict[str, Any] = {
            "value": exit_code,
            "ok": ok,
            "outcome": outcome,
            "job": self.name,
            "exit_code": exit_code,
            "duration": round(self.elapsed, 3),
        }
        if error:
            sample["error"] = redact_secrets(error)
        return sample

    def start(self) -> Optional[Dict[str, Any]]:
        """Create the Job; an error sample when the API server refuses it, else None."""
        if getattr(self.kube, "dry_run", False):
            return self._sample(None, "error", None, "a Job check does not run in check mode (nothing is created)")
        try:
            self.kube.create("Job", self.namespace, self.manifest)
        except ConflictError as exc:
            sample = self._sample(
                None, "error", None, "Job %s/%s already exists: %s" % (self.namespace, self.name, exc)
            )
            sample["conflict"] = True
            return sample
        except ReleaseError as exc:
            return self._sample(None, "error", None, "Job %s/%s not created: %s" % (self.namespace, self.name, exc))
        self.created = True
        return None

    def next_wait(self) -> float:
        left = self.options.timeout - self.elapsed
        return max(0.0, min(self.interval(), left))

    def poll(self) -> Optional[Dict[str, Any]]:
        """The sample once the Job has an outcome, else None (keep polling)."""
        try:
            job = self.kube.read("Job", self.namespace, self.name)
            pods = self.kube.list("Pod", self.namespace, {JOB_LABEL: self.name})
        except NotFoundError:
            return self._sample(
                None, "error", None, "Job %s/%s disappeared before it finished" % (self.namespace, self.name)
            )
        except ReleaseError as exc:
            return self._sample(None, "error", None, "cannot read Job %s/%s: %s" % (self.namespace, self.name, exc))
        conditions = _conditions(job)
        failed = conditions.get("Failed")
        if failed and failed.get("reason") == "DeadlineExceeded":
            # The Job controller killed the pod at activeDeadlineSeconds: its exit code is the kill's, not the check's.
            self.pod = self.pod or self._pod_name(pods)
            return self._finish(
                None, "error", None, "Job %s did not finish within timeout %gs" % (self.name, self.options.timeout)
            )
        pod = self._pod(pods)
        if pod is not None:
            self.pod = (pod.get("metadata") or {}).get("name")
            status = pod.get("status") or {}
            terminated = _container_state(pod).get("terminated")
            if terminated:
                if (pod.get("metadata") or {}).get("deletionTimestamp") and terminated.get("exitCode") != 0:
                    return self._finish(
                        None, "error", None, "pod %s was deleted while the check ran (someone else?)" % self.pod
                    )
                return self._terminated(terminated)
            stuck = _waiting_reason(pod)
            if stuck:
                # The container never ran: there is no log to read (the API server answers 400).
                sample = self._sample(None, "error", None, "pod %s cannot start the check: %s" % (self.pod, stuck))
                sample["logs"] = []
                return sample
            if status.get("phase") == "Failed":
                return self._finish(
                    None,
                    "error",
                    None,
                    "pod %s failed before its container ended: %s %s"
                    % (self.pod, status.get("reason") or "", status.get("message") or ""),
                )
        if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
            # The pod is gone (evicted or deleted after success); the Job controller saw exit 0.
            return self._finish(True, "ok", 0, None)
        if failed:
            return self._finish(
                None,
                "error",
                None,
                "Job %s failed (%s) and its pod tells no exit code: %s"
                % (self.name, failed.get("reason") or "Failed", failed.get("message") or ""),
            )
        if self.elapsed >= self.options.timeout:
            where = "its pod %s had not finished" % self.pod if self.pod else "no pod started (quota, admission?)"
            return self._finish(
                None,
                "error",
                None,
                "Job %s did not finish within timeout %gs: %s" % (self.name, self.options.timeout, where),
            )
        return None

    @classmethod
    def _pod_name(cls, pods: List[Dict[str, Any]]) -> Optional[str]:
        pod = cls._pod(pods)
        return (pod.get("metadata") or {}).get("name") if pod else None

    @staticmethod
    def _pod(pods: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        if not pods:
            return None
        # backoffLimit 0 makes one pod; if the controller made another, the newest tells the story.
        return sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")[-1]

    def _terminated(self, terminated: Dict[str, Any]) -> Dict[str, Any]:
        code = terminated.get("exitCode")
        reason = terminated.get("reason") or ""
        if reason in NOT_RUN_REASONS or code is None:
            return self._finish(
                None, "error", code, "container did not run the check to its end: %s (exit code %s)" % (reason, code)
            )
        code = int(code)
        if code == 0:
            return self._finish(True, "ok", 0, None)
        return self._finish(False, "failed", code, "exit code %d%s" % (code, " (%s)" % reason if reason else ""))

    def _finish(self, ok: Optional[bool], outcome: str, code: Optional[int], error: Optional[str]) -> Dict[str, Any]:
        sample = self._sample(ok, outcome, code, error)
        sample["logs"] = self.logs()
        return sample

    def logs(self) -> List[str]:
        """The last ``log_lines`` lines of the pod's log, redacted; a line saying why when they cannot be read."""
        if not self.pod or self.options.log_lines == 0:
            return []
        try:
            text = self.kube.pod_log(self.namespace, self.pod, self.options.log_lines)
        except ReleaseError as exc:
            return ["(logs of pod %s unavailable: %s)" % (self.pod, redact_secrets(str(exc)))]
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        lines = (text or "")[-LOG_BYTES_LIMIT:].splitlines()[-self.options.log_lines :]
        return [redact_secrets(line)[:LOG_LINE_LIMIT] for line in lines]

    def delete(self) -> Optional[str]:
        """Delete the Job and its pod; a warning (not an error) when that fails: its TTL removes it later."""
        if not self.created:
            return None
        try:
            self.kube.delete("Job", self.namespace, self.name)
        except NotFoundError:
            pass
        except ReleaseError as exc:
            return "Job %s/%s not deleted (the cluster removes it %ds after it ends): %s" % (
                self.namespace,
                self.name,
                JOB_TTL_SECONDS,
                exc,
            )
        self.created = False
        return None
