# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The analysis engine: metric and HTTP checks judged into pass | fail | inconclusive.

Shared unchanged by the blue/green and canary modules. A module declares its
checks once under the ``analysis`` option and picks them by name for a phase
(pre-/post-promotion, a canary step) with :func:`select_checks`.

Verdict rules, per check (documented in plugins/doc_fragments/analysis.py):

* a sample is *ok* when its value is within ``min``/``max`` (Prometheus) or the
  answer has an expected status and the JSON condition holds (HTTP);
* *no data* (empty result or NaN) is judged by ``on_no_data``: ``fail`` counts a
  failure, ``pass`` counts a success, ``inconclusive`` counts neither and makes
  the check inconclusive unless it fails;
* the check fails as soon as failures exceed ``failure_limit``; with
  ``consecutive_success`` it passes as soon as that many ok samples follow each
  other (and is inconclusive if the samples run out first); otherwise it passes
  after ``samples`` samples;
* a query Prometheus rejects fails the check at once (it cannot get better);
  an unreachable Prometheus or target counts as a failed sample.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    ApiUnreachableError,
    InvalidArgumentError,
    PrometheusQueryError,
    PrometheusUnreachableError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.matchers import (
    CONDITIONS,
    compare,
    extract_json_path,
    is_missing,
    status_ok,
)
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import (
    BUILTIN_QUERIES,
    HttpUnreachable,
    PrometheusClient,
    render_query,
    urllib_get,
    validate_duration,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat, poll

NO_DATA_POLICIES = ["fail", "inconclusive", "pass"]
VERDICTS = ("pass", "fail", "inconclusive")

ANALYSIS_CHECK_OPTIONS: Dict[str, Dict[str, Any]] = {
    "name": dict(type="str", required=True),
    "type": dict(type="str", required=True, choices=["http", "prometheus"]),
    # prometheus
    "query": dict(type="str"),
    "metric": dict(type="str", choices=sorted(BUILTIN_QUERIES)),
    "quantile": dict(type="float", default=0.99),
    "window": dict(type="str", default="1m"),
    # http
    "url": dict(type="str"),
    "service": dict(type="str"),
    "pod": dict(type="str"),
    "port": dict(type="str"),
    "path": dict(type="str", default="/"),
    "scheme": dict(type="str", default="http", choices=["http", "https"]),
    "expected_status": dict(type="list", elements="int"),
    "json_path": dict(type="str"),
    "condition": dict(type="str", default="==", choices=CONDITIONS),
    "value": dict(type="raw"),
    "request_timeout": dict(type="float", default=5.0),
    "validate_certs": dict(type="bool", default=True),
    # verdict
    "min": dict(type="float"),
    "max": dict(type="float"),
    "interval": dict(type="float", default=30.0),
    "initial_delay": dict(type="float", default=0.0),
    "samples": dict(type="int", default=3),
    "failure_limit": dict(type="int", default=0),
    "consecutive_success": dict(type="int"),
    "on_no_data": dict(type="str", default="fail", choices=NO_DATA_POLICIES),
}

PROMETHEUS_OPTIONS: Dict[str, Dict[str, Any]] = {
    "url": dict(type="str", default="http://127.0.0.1:9090"),
    "timeout": dict(type="float", default=10.0),
    "validate_certs": dict(type="bool", default=True),
    "bearer_token": dict(type="str", no_log=True),
}

ANALYSIS_OPTIONS: Dict[str, Dict[str, Any]] = {
    "prometheus": dict(type="dict", default={}, options=PROMETHEUS_OPTIONS),
    "checks": dict(type="list", elements="dict", default=[], options=ANALYSIS_CHECK_OPTIONS),
    "variables": dict(type="dict", default={}),
}

# One source for the analysis options; plugins/doc_fragments/analysis.py documents them.
ANALYSIS_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    "analysis": dict(type="dict", default={}, options=ANALYSIS_OPTIONS),
}

# Variables the engine provides; user variables may not shadow them.
CONTEXT_VARIABLES = ("namespace", "app", "version", "slot", "track")


def _defaults(options: Dict[str, Dict[str, Any]], params: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    values = {key: spec.get("default") for key, spec in options.items()}
    values.update({k: v for k, v in (params or {}).items() if v is not None})
    return values


class CheckSpec:
    """One validated check; errors name the option as ``analysis.checks[i].<key>``."""

    def __init__(self, params: Dict[str, Any], index: int = 0) -> None:
        v = _defaults(ANALYSIS_CHECK_OPTIONS, params)
        self.where = "analysis.checks[%d]" % index
        self.name: str = v["name"]
        self.type: str = v["type"]
        self.query: Optional[str] = v["query"]
        self.metric: Optional[str] = v["metric"]
        self.quantile: float = v["quantile"]
        self.window: str = v["window"]
        self.url: Optional[str] = v["url"]
        self.service: Optional[str] = v["service"]
        self.pod: Optional[str] = v["pod"]
        self.port: Optional[str] = None if v["port"] is None else str(v["port"])
        self.path: str = v["path"]
        self.scheme: str = v["scheme"]
        self.expected_status: Optional[List[int]] = v["expected_status"] or None
        self.json_path: Optional[str] = v["json_path"]
        self.condition: str = v["condition"]
        self.value: Any = v["value"]
        self.request_timeout: float = v["request_timeout"]
        self.validate_certs: bool = v["validate_certs"]
        self.min: Optional[float] = v["min"]
        self.max: Optional[float] = v["max"]
        self.interval: float = v["interval"]
        self.initial_delay: float = v["initial_delay"]
        self.samples: int = v["samples"]
        self.failure_limit: int = v["failure_limit"]
        self.consecutive_success: Optional[int] = v["consecutive_success"]
        self.on_no_data: str = v["on_no_data"]
        self.validate()

    def _bad(self, key: str, expected: str, seen: Any) -> InvalidArgumentError:
        return InvalidArgumentError(
            "%s.%s" % (self.where, key), expected, seen, hint="Fix check '%s' in the analysis option" % self.name
        )

    def validate(self) -> None:
        if not self.name:
            raise self._bad("name", "a non-empty check name", self.name)
        if self.type not in ("http", "prometheus"):
            raise self._bad("type", "http or prometheus", self.type)
        if self.on_no_data not in NO_DATA_POLICIES:
            raise self._bad("on_no_data", " | ".join(NO_DATA_POLICIES), self.on_no_data)
        if self.samples < 1:
            raise self._bad("samples", "an integer >= 1", self.samples)
        if self.interval <= 0:
            raise self._bad("interval", "seconds > 0", self.interval)
        if self.initial_delay < 0:
            raise self._bad("initial_delay", "seconds >= 0", self.initial_delay)
        if self.failure_limit < 0:
            raise self._bad("failure_limit", "an integer >= 0", self.failure_limit)
        if self.consecutive_success is not None and not 1 <= self.consecutive_success <= self.samples:
            raise self._bad(
                "consecutive_success", "an integer from 1 to samples (%d)" % self.samples, self.consecutive_success
            )
        for key in ("min", "max"):
            bound = getattr(self, key)
            if bound is not None and math.isnan(bound):
                raise self._bad(key, "a number", bound)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise self._bad("min", "min <= max (%s)" % self.max, self.min)
        if self.type == "prometheus":
            self._validate_prometheus()
        else:
            self._validate_http()

    def _validate_prometheus(self) -> None:
        if bool(self.query) == bool(self.metric):
            raise self._bad(
                "query",
                "exactly one of query or metric for a prometheus check",
                {"query": self.query, "metric": self.metric},
            )
        if self.min is None and self.max is None:
            raise self._bad("max", "min and/or max: the bound the query result must stay within", None)
        for key in ("url", "service", "pod", "json_path"):
            if getattr(self, key) is not None:
                raise self._bad(key, "no %s on a prometheus check" % key, getattr(self, key))
        validate_duration(self.window, "%s.window" % self.where)
        if not 0 < self.quantile < 1:
            raise self._bad("quantile", "a number between 0 and 1 (exclusive)", self.quantile)

    def _validate_http(self) -> None:
        targets = [key for key in ("url", "service", "pod") if getattr(self, key)]
        if len(targets) != 1:
            raise self._bad("url", "exactly one of url, service or pod for an http check", targets or None)
        if self.url and not self.url.startswith(("http://", "https://")):
            raise self._bad("url", "an http:// or https:// URL", self.url)
        if (self.service or self.pod) and not self.port:
            raise self._bad("port", "the port to reach %s on" % (self.service or self.pod), None)
        if not self.path.startswith("/"):
            raise self._bad("path", "a path starting with '/'", self.path)
        if self.query or self.metric:
            raise self._bad("query", "no query or metric on an http check", self.query or self.metric)
        if self.json_path is None and (self.min is not None or self.max is not None):
            raise self._bad("json_path", "a JSON field for min/max to apply to", None)
        if self.json_path is not None and self.value is None and self.min is None and self.max is None:
            raise self._bad("value", "a value (or min/max) to compare json_path with", None)
        if self.condition == "in" and self.json_path and self.value is not None and not isinstance(self.value, list):
            raise self._bad("value", "a list when condition is 'in'", self.value)
        for code in self.expected_status or []:
            if not 100 <= code <= 599:
                raise self._bad("expected_status", "HTTP status codes 100-599", self.expected_status)
        if self.request_timeout <= 0:
            raise self._bad("request_timeout", "seconds > 0", self.request_timeout)

    def template(self) -> str:
        return self.query if self.query else BUILTIN_QUERIES[self.metric or ""]

    def bound(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.type == "http":
            out["expected_status"] = self.expected_status or "2xx"
            if self.json_path is not None and self.value is not None:
                out["json_path"] = self.json_path
                out["condition"] = self.condition
                out["value"] = self.value
        return out


def parse_checks(checks: Optional[List[Dict[str, Any]]]) -> List[CheckSpec]:
    specs: List[CheckSpec] = []
    seen: Dict[str, int] = {}
    for index, params in enumerate(checks or []):
        spec = CheckSpec(params, index)
        if spec.name in seen:
            raise InvalidArgumentError(
                "analysis.checks[%d].name" % index,
                "a name not used by analysis.checks[%d]" % seen[spec.name],
                spec.name,
            )
        seen[spec.name] = index
        specs.append(spec)
    return specs


def select_checks(checks: List[CheckSpec], names: Optional[List[str]], option: str) -> List[CheckSpec]:
    """The checks named by a module option (e.g. ``pre_promotion_analysis``), in that order."""
    by_name = {check.name: check for check in checks}
    selected = []
    for name in names or []:
        if name not in by_name:
            raise InvalidArgumentError(
                option,
                "names of checks defined in analysis.checks (%s)" % (", ".join(sorted(by_name)) or "none defined"),
                name,
            )
        selected.append(by_name[name])
    return selected


class AnalysisContext:
    """Where checks run and what their templates may refer to."""

    def __init__(
        self,
        *,
        namespace: str,
        app: str,
        version: Optional[str] = None,
        slot: Optional[str] = None,
        track: Optional[str] = None,
        variables: Optional[Dict[str, Any]] = None,
        prometheus: Optional[PrometheusClient] = None,
        kube: Optional[Any] = None,
        http_get: Optional[Any] = None,
        clock: Optional[Any] = None,
        heartbeat: Optional[Any] = None,
    ) -> None:
        self.namespace = namespace
        self.prometheus = prometheus
        self.kube = kube
        self.http_get = http_get or urllib_get
        self.clock = clock or SystemClock()
        self.heartbeat = heartbeat
        extra = dict(variables or {})
        for key in CONTEXT_VARIABLES:
            if key in extra:
                raise InvalidArgumentError(
                    "analysis.variables.%s" % key,
                    "no override of a variable the engine sets (%s)" % ", ".join(CONTEXT_VARIABLES),
                    extra[key],
                )
        extra.update({"namespace": namespace, "app": app, "version": version, "slot": slot, "track": track})
        self.variables = extra

    @classmethod
    def prometheus_from_params(
        cls, params: Optional[Dict[str, Any]], http_get: Optional[Any] = None
    ) -> PrometheusClient:
        p = _defaults(PROMETHEUS_OPTIONS, params)
        if not str(p["url"]).startswith(("http://", "https://")):
            raise InvalidArgumentError("analysis.prometheus.url", "an http:// or https:// URL", p["url"])
        if p["timeout"] <= 0:
            raise InvalidArgumentError("analysis.prometheus.timeout", "seconds > 0", p["timeout"])
        return PrometheusClient(p["url"], p["timeout"], p["validate_certs"], p["bearer_token"], http_get)


class CheckRun:
    """The samples and verdict of one check."""

    def __init__(self, spec: CheckSpec, context: AnalysisContext, start: float) -> None:
        self.spec = spec
        self.context = context
        self.samples: List[Dict[str, Any]] = []
        self.failures = 0
        self.no_data = 0
        self.consecutive = 0
        self.verdict: Optional[str] = None
        self.reason = ""
        self.value: Optional[Any] = None
        self.next_due = start + spec.initial_delay
        self.started_at = isoformat(context.clock.now())
        self.finished_at: Optional[str] = None
        if spec.type == "prometheus":
            self.target = render_query(spec.template(), self._variables(), "%s.query" % spec.where)
        else:
            self.target = self._http_target()

    def _variables(self) -> Dict[str, Any]:
        values = dict(self.context.variables)
        values["window"] = self.spec.window
        values["quantile"] = self.spec.quantile
        return values

    def _http_target(self) -> str:
        s = self.spec
        if s.url:
            return "GET %s" % s.url
        kind = "service" if s.service else "pod"
        return "GET %s %s/%s:%s%s" % (kind, self.context.namespace, s.service or s.pod, s.port, s.path)

    @property
    def done(self) -> bool:
        return self.verdict is not None

    # -- measuring -----------------------------------------------------------

    def measure(self) -> None:
        at = isoformat(self.context.clock.now())
        try:
            sample = self._measure_prometheus() if self.spec.type == "prometheus" else self._measure_http()
        except PrometheusQueryError as exc:
            sample = {"value": None, "ok": False, "error": str(exc)}
            self._record(at, sample)
            self._finish("fail", "query rejected: %s" % (exc.seen or exc.message))
            return
        self._record(at, sample)
        self._decide()

    def _measure_prometheus(self) -> Dict[str, Any]:
        if self.context.prometheus is None:
            raise PrometheusQueryError("no Prometheus configured", expected="analysis.prometheus.url")
        try:
            result = self.context.prometheus.query(self.target)
        except PrometheusUnreachableError as exc:
            return {"value": None, "ok": False, "error": str(exc)}
        if result.no_data:
            return self._no_data_sample()
        return self._bounded(result.value)

    def _measure_http(self) -> Dict[str, Any]:
        s = self.spec
        try:
            if s.url:
                response = self.context.http_get(
                    s.url, {"Accept": "application/json, */*"}, s.request_timeout, s.validate_certs
                )
            elif s.service:
                response = self.context.kube.service_proxy_get(
                    self.context.namespace, s.service, s.port, s.path, s.request_timeout, s.scheme
                )
            else:
                response = self.context.kube.pod_proxy_get(
                    self.context.namespace, s.pod, s.port, s.path, s.request_timeout, s.scheme
                )
        except (HttpUnreachable, ApiUnreachableError) as exc:
            return {"value": None, "ok": False, "error": str(exc)}
        status, body = response.status, response.body
        if not status_ok(status, s.expected_status):
            return {
                "value": status,
                "ok": False,
                "error": "HTTP %s, expected %s" % (status, s.expected_status or "2xx"),
            }
        if s.json_path is None:
            return {"value": status, "ok": True}
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            return {"value": None, "ok": False, "error": "HTTP %s body is not JSON" % status}
        actual = extract_json_path(document, s.json_path)
        if is_missing(actual) or actual is None:
            return self._no_data_sample()
        if s.value is not None:
            holds, explanation = compare(actual, s.condition, s.value)
            if not holds:
                return {"value": actual, "ok": False, "error": explanation}
        if s.min is not None or s.max is not None:
            try:
                number = float(actual)
            except (TypeError, ValueError):
                return {"value": actual, "ok": False, "error": "%s is not a number" % s.json_path}
            if math.isnan(number):
                return self._no_data_sample()
            return self._bounded(number)
        return {"value": actual, "ok": True}

    def _no_data_sample(self) -> Dict[str, Any]:
        policy = self.spec.on_no_data
        ok = {"fail": False, "pass": True, "inconclusive": None}[policy]
        return {"value": None, "ok": ok, "no_data": True}

    def _bounded(self, value: float) -> Dict[str, Any]:
        s = self.spec
        if s.max is not None and value > s.max:
            return {"value": value, "ok": False, "error": "%g > max %g" % (value, s.max)}
        if s.min is not None and value < s.min:
            return {"value": value, "ok": False, "error": "%g < min %g" % (value, s.min)}
        return {"value": value, "ok": True}

    # -- judging -------------------------------------------------------------

    def _record(self, at: str, sample: Dict[str, Any]) -> None:
        sample = dict(sample, time=at)
        self.samples.append(sample)
        if sample.get("value") is not None:
            self.value = sample["value"]
        if sample.get("no_data"):
            self.no_data += 1
        if sample["ok"] is False:
            self.failures += 1
            self.consecutive = 0
        elif sample["ok"] is True:
            self.consecutive += 1
        else:
            self.consecutive = 0

    def _decide(self) -> None:
        s = self.spec
        last = self.samples[-1]
        if self.failures > s.failure_limit:
            why = last.get("error") or ("no data" if last.get("no_data") else "failed")
            self._finish(
                "fail", "%d failed samples exceed failure_limit %d; last: %s" % (self.failures, s.failure_limit, why)
            )
            return
        if s.consecutive_success and self.consecutive >= s.consecutive_success:
            self._finish("pass", "%d consecutive ok samples" % self.consecutive)
            return
        if len(self.samples) < s.samples:
            return
        if s.consecutive_success:
            self._finish(
                "inconclusive",
                "%d samples taken without %d consecutive ok samples" % (len(self.samples), s.consecutive_success),
            )
        elif self.no_data and s.on_no_data == "inconclusive":
            self._finish(
                "inconclusive",
                "%d of %d samples had no data (on_no_data: inconclusive)" % (self.no_data, len(self.samples)),
            )
        else:
            self._finish(
                "pass", "%d samples, %d failed (failure_limit %d)" % (len(self.samples), self.failures, s.failure_limit)
            )

    def _finish(self, verdict: str, reason: str) -> None:
        self.verdict = verdict
        self.reason = reason
        self.finished_at = isoformat(self.context.clock.now())

    def stop(self, reason: str) -> None:
        if not self.done:
            self._finish("inconclusive", reason)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "check": self.spec.name,
            "type": self.spec.type,
            "query": self.target,
            "value": self.value,
            "bound": self.spec.bound(),
            "on_no_data": self.spec.on_no_data,
            "samples": list(self.samples),
            "failures": self.failures,
            "verdict": self.verdict,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def overall_verdict(verdicts: List[str]) -> str:
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def run_analysis(
    checks: List[CheckSpec],
    context: AnalysisContext,
    *,
    stop_on_failure: bool = True,
) -> Dict[str, Any]:
    """Run the checks side by side, each on its own interval, and return every verdict as data.

    With ``stop_on_failure`` the first failed check ends the analysis; checks still
    running are then inconclusive with the reason saying why they stopped.
    """
    clock = context.clock
    start = clock.monotonic()
    started_at = isoformat(clock.now())
    runs = [CheckRun(spec, context, start) for spec in checks]

    def step() -> Any:
        now = clock.monotonic()
        for run in runs:
            if not run.done and run.next_due <= now + 1e-6:
                run.measure()
                run.next_due = max(run.next_due + run.spec.interval, now)
        failed = [run for run in runs if run.verdict == "fail"]
        if failed and stop_on_failure:
            for run in runs:
                run.stop("stopped because check '%s' failed" % failed[0].spec.name)
        if all(run.done for run in runs):
            return True, None
        return False, {"reason": ", ".join("%s: %d samples" % (r.spec.name, len(r.samples)) for r in runs)}

    def next_wait() -> float:
        pending = [run.next_due for run in runs if not run.done]
        return max(0.0, min(pending) - clock.monotonic()) if pending else 0.0

    poll(step, timeout=None, interval=next_wait, what="analysis", clock=clock, heartbeat=context.heartbeat)
    results = [run.as_dict() for run in runs]
    verdict = overall_verdict([r["verdict"] for r in results])
    decisive = [r for r in results if r["verdict"] == verdict]
    reason = (
        "; ".join("%s: %s" % (r["check"], r["reason"]) for r in decisive)
        if verdict != "pass"
        else "%d checks passed" % len(results)
    )
    return {
        "verdict": verdict,
        "reason": reason,
        "checks": results,
        "started_at": started_at,
        "finished_at": isoformat(clock.now()),
    }


def analysis_error(
    result: Dict[str, Any], phase: str, inconclusive_fails: bool = False
) -> Optional[AnalysisFailedError]:
    """The error to raise for a result, or None when the phase may go on."""
    verdict = result["verdict"]
    if verdict == "pass" or (verdict == "inconclusive" and not inconclusive_fails):
        return None
    culprit = next((c for c in result["checks"] if c["verdict"] == verdict), None) or {}
    return AnalysisFailedError(
        "%s analysis %s" % (phase, "failed" if verdict == "fail" else "was inconclusive"),
        expected="check %s within %s" % (culprit.get("check"), culprit.get("bound")),
        seen="value %s (%s)" % (culprit.get("value"), culprit.get("reason")),
        hint="The verdicts with every sample are in the result and the release state record",
        data=result,
    )
