# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options and probe loop of the http_check module (smoke tests after a deploy or release).

Each target (a URL, or a Service through the API server's service proxy) is
probed round-robin, one probe per target per ``interval``, until it has
answered as expected ``consecutive`` times in a row (passed) or failed more
than ``retries`` probes (failed). Answers are judged by http_probe.judge_answer,
the same judgement the health gate and HTTP analysis checks use.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiUnreachableError,
    InvalidArgumentError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import (
    Expectation,
    HttpGet,
    HttpTarget,
    HttpUnreachable,
    judge_answer,
    redact_text,
    redact_url,
    send_probe,
)
from ansible_collections.userservice.deploy.plugins.module_utils.matchers import CONDITIONS
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat, poll

# One source for the module's own options; plugins/modules/http_check.py documents them
# (tests/unit/plugins/modules/test_http_check_module.py keeps the two in step).
HTTP_CHECK_OPTIONS: Dict[str, Dict[str, Any]] = {
    "url": dict(type="list", elements="str", default=[]),
    "service": dict(type="list", elements="str", default=[]),
    "namespace": dict(type="str"),
    "port": dict(type="str"),
    "path": dict(type="str", default="/"),
    "scheme": dict(type="str", default="http", choices=["http", "https"]),
    "expected_status": dict(type="list", elements="int"),
    "body_regex": dict(type="str"),
    "json_path": dict(type="str"),
    "condition": dict(type="str", default="==", choices=CONDITIONS),
    "value": dict(type="raw"),
    "min": dict(type="float"),
    "max": dict(type="float"),
    "max_latency": dict(type="float"),
    "consecutive": dict(type="int", default=1),
    "retries": dict(type="int", default=0),
    "interval": dict(type="float", default=1.0),
    "probe_timeout": dict(type="float", default=5.0),
    "url_validate_certs": dict(type="bool", default=True),
}

PROBES_KEPT = 5


class HttpCheckSpec:
    """Validated options; errors name the option."""

    def __init__(self, params: Dict[str, Any]) -> None:
        values = {key: spec.get("default") for key, spec in HTTP_CHECK_OPTIONS.items()}
        values.update({k: v for k, v in params.items() if k in HTTP_CHECK_OPTIONS and v is not None})
        self.urls: List[str] = list(values["url"] or [])
        self.services: List[str] = list(values["service"] or [])
        self.namespace: Optional[str] = values["namespace"]
        self.port: Optional[str] = None if values["port"] is None else str(values["port"])
        self.path: str = values["path"]
        self.scheme: str = values["scheme"]
        self.expected_status: Optional[List[int]] = values["expected_status"] or None
        self.body_regex: Optional[str] = values["body_regex"]
        self.json_path: Optional[str] = values["json_path"]
        self.condition: str = values["condition"]
        self.value: Any = values["value"]
        self.min: Optional[float] = values["min"]
        self.max: Optional[float] = values["max"]
        self.max_latency: Optional[float] = values["max_latency"]
        self.consecutive: int = values["consecutive"]
        self.retries: int = values["retries"]
        self.interval: float = values["interval"]
        self.probe_timeout: float = values["probe_timeout"]
        self.url_validate_certs: bool = values["url_validate_certs"]
        self.validate()

    def validate(self) -> None:
        if not self.urls and not self.services:
            raise InvalidArgumentError("url", "at least one URL, or Services in option service", None)
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise InvalidArgumentError("url", "http:// or https:// URLs", redact_url(url))
        if self.services:
            if not self.namespace:
                raise InvalidArgumentError("namespace", "the namespace of the Services %s" % self.services, None)
            if not self.port:
                raise InvalidArgumentError("port", "the Service port (number or name) to probe", None)
        if not self.path.startswith("/"):
            raise InvalidArgumentError("path", "a path starting with '/'", self.path)
        for code in self.expected_status or []:
            if not 100 <= code <= 599:
                raise InvalidArgumentError("expected_status", "HTTP status codes 100-599", self.expected_status)
        if self.body_regex is not None:
            try:
                re.compile(self.body_regex)
            except re.error as exc:
                raise InvalidArgumentError(
                    "body_regex", "a Python regular expression", "%s (%s)" % (self.body_regex, exc)
                ) from exc
        if self.json_path is None:
            for key in ("value", "min", "max"):
                if getattr(self, key) is not None:
                    raise InvalidArgumentError("json_path", "the JSON field that %s applies to" % key, None)
        if self.condition == "in" and self.value is not None and not isinstance(self.value, list):
            raise InvalidArgumentError("value", "a list when condition is 'in'", self.value)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidArgumentError("min", "min <= max (%s)" % self.max, self.min)
        if self.consecutive < 1:
            raise InvalidArgumentError("consecutive", "an integer >= 1", self.consecutive)
        if self.retries < 0:
            raise InvalidArgumentError("retries", "an integer >= 0", self.retries)
        for key in ("interval", "probe_timeout", "max_latency"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise InvalidArgumentError(key, "seconds > 0", value)

    def targets(self) -> List[HttpTarget]:
        out = [HttpTarget(url=url, validate_certs=self.url_validate_certs) for url in self.urls]
        out += [
            HttpTarget(service=name, namespace=self.namespace, port=self.port, path=self.path, scheme=self.scheme)
            for name in self.services
        ]
        return out

    def expectation(self) -> Expectation:
        return Expectation(
            expected_status=self.expected_status,
            json_path=self.json_path,
            condition=self.condition,
            value=self.value,
            minimum=self.min,
            maximum=self.max,
            body_regex=self.body_regex,
            max_latency=self.max_latency,
        )


class _TargetRun:
    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        self.attempts = 0
        self.failures = 0
        self.consecutive = 0
        self.verdict: Optional[str] = None
        self.last: Dict[str, Any] = {}
        self.probes: List[Dict[str, Any]] = []

    @property
    def done(self) -> bool:
        return self.verdict is not None

    def add(self, probe: Dict[str, Any], spec: HttpCheckSpec) -> None:
        self.attempts += 1
        self.last = probe
        self.probes = (self.probes + [probe])[-PROBES_KEPT:]
        if probe["ok"]:
            self.consecutive += 1
            if self.consecutive >= spec.consecutive:
                self.verdict = "passed"
        else:
            self.consecutive = 0
            self.failures += 1
            if self.failures > spec.retries:
                self.verdict = "failed"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "target": self.target.describe(),
            "passed": self.verdict == "passed",
            "attempts": self.attempts,
            "failures": self.failures,
            "consecutive_successes": self.consecutive,
            "status": self.last.get("status"),
            "latency": self.last.get("latency"),
            "value": self.last.get("value"),
            "reason": self.last.get("reason"),
            "probes": list(self.probes),
        }


def probe_target(
    target: HttpTarget,
    spec: HttpCheckSpec,
    expect: Expectation,
    clock: Any,
    *,
    kube: Optional[Any],
    http_get: Optional[HttpGet],
) -> Dict[str, Any]:
    """One probe as data: ``{time, ok, status, latency, value, reason}``; no answer is a failed probe."""
    at = isoformat(clock.now())
    try:
        answer = send_probe(target, spec.probe_timeout, clock, http_get=http_get, kube=kube)
    except HttpUnreachable as exc:
        reason = "no answer: %s" % redact_text(str(exc), target.url or "")
        return {"time": at, "ok": False, "status": None, "latency": None, "value": None, "reason": reason}
    except ApiUnreachableError as exc:
        reason = "the API server did not answer: %s" % (exc.seen or exc.message)
        return {"time": at, "ok": False, "status": None, "latency": None, "value": None, "reason": reason}
    judged = judge_answer(expect, answer.status, answer.body, answer.content_type, answer.latency)
    return {
        "time": at,
        "ok": judged["ok"] is True,
        "status": judged["status"],
        "latency": judged.get("latency"),
        "value": judged["value"],
        "reason": judged["reason"],
    }


def run_http_check(
    spec: HttpCheckSpec,
    *,
    kube: Optional[Any] = None,
    http_get: Optional[HttpGet] = None,
    clock: Optional[Any] = None,
) -> Dict[str, Any]:
    """Probe every target until each passed or failed; the result as data (``passed`` says which)."""
    clock = clock or SystemClock()
    expect = spec.expectation()
    runs = [_TargetRun(target) for target in spec.targets()]
    started_at = isoformat(clock.now())

    def step() -> Any:
        for run in runs:
            if not run.done:
                run.add(probe_target(run.target, spec, expect, clock, kube=kube, http_get=http_get), spec)
        if all(run.done for run in runs):
            return True, None
        pending = [run for run in runs if not run.done]
        return False, {"pending": [run.target.describe() for run in pending]}

    poll(step, timeout=None, interval=spec.interval, what="http_check", clock=clock)
    failed = [run for run in runs if run.verdict == "failed"]
    targets = [run.as_dict() for run in runs]
    if failed:
        msg = "; ".join(
            "%s failed %d of %d probes (retries %d), last: %s"
            % (run.target.describe(), run.failures, run.attempts, spec.retries, run.last.get("reason"))
            for run in failed
        )
        msg = "%d of %d targets did not pass: %s" % (len(failed), len(runs), msg)
    else:
        msg = "%d targets answered as expected %d times in a row" % (len(runs), spec.consecutive)
    return {
        "passed": not failed,
        "msg": msg,
        "expected": expect.describe(),
        "targets": targets,
        "started_at": started_at,
        "finished_at": isoformat(clock.now()),
    }


def url_passwords(urls: List[str]) -> List[str]:
    """The passwords in URLs' userinfo, for the module to add to its no_log values."""
    out = []
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            out.append(password)
    return out
