# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The analysis engine: metric, HTTP, Job and comparative checks judged into pass | fail | inconclusive | error.

Shared unchanged by the blue/green and canary modules. A module declares its
checks once under the ``analysis`` option and picks them by name for a phase
(pre-/post-promotion, a canary step) with :func:`select_checks`.

Verdict rules, per check (documented in plugins/doc_fragments/analysis.py):

* a sample is *ok* when its value is within ``min``/``max`` (bounds inclusive)
  or, for HTTP, the answer has an expected status and the JSON condition holds,
  or, for a Job, its container exited 0 (a Job that could not run or finish in
  ``job.timeout`` is an *error*, see below);
* a ``compare`` check queries the canary track and the baseline track at the
  same instant; after ``samples`` samples a one-sided Mann-Whitney U test
  (:mod:`stats`) fails it when the canary is worse with p < ``alpha`` (and,
  with ``min_difference``, when the medians differ by more than that);
* *no data* (empty result, NaN, a missing JSON field) is judged by
  ``on_no_data``: ``fail`` counts a failure, ``pass`` counts an ok sample that
  never adds to a ``consecutive_success`` streak, ``inconclusive`` counts
  neither and makes the check inconclusive unless it fails;
* a sample that could not be taken (Prometheus unreachable or answering an
  error, a query it rejects or that returns several series, the API server not
  answering a proxied request, a check Job refused, not starting or timing
  out) is an *error*: it is not a sample of the
  release, does not count towards ``samples``, and more than ``error_limit``
  errors in a row end the check ``error``;
* the check fails as soon as failures exceed ``failure_limit``; with
  ``consecutive_success`` it passes as soon as that many ok samples with data
  follow each other (and is inconclusive if the samples run out first);
  otherwise it passes after ``samples`` samples.

The phase verdict is ``fail`` if a check failed, else ``error`` if one could
not measure, else ``inconclusive`` if one was, else ``pass``; ``decided_by``
names the check that decided it.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    AnalysisMeasurementError,
    ApiUnreachableError,
    InvalidArgumentError,
    PrometheusError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import (
    Expectation,
    HttpTarget,
    HttpUnreachable,
    judge_answer,
    redact_text,
    redact_url,
    send_probe,
    urllib_get,
)
from ansible_collections.userservice.deploy.plugins.module_utils.job_check import (
    JOB_OPTIONS,
    JobOptions,
    JobSample,
    RenderedJob,
    build_job,
    job_name,
)
from ansible_collections.userservice.deploy.plugins.module_utils.matchers import CONDITIONS, check_bounds
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import (
    BUILTIN_METRICS,
    PLACEHOLDER,
    SCOPE_LABELS,
    PrometheusClient,
    builtin_query,
    render_query,
    validate_duration,
)
from ansible_collections.userservice.deploy.plugins.module_utils.stats import mann_whitney_u, median, smallest_p_value
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat, poll

CHECK_TYPES = ["compare", "http", "job", "prometheus"]
NO_DATA_POLICIES = ["fail", "inconclusive", "pass"]
DIRECTIONS = ["higher_is_worse", "lower_is_worse"]
VERDICTS = ("pass", "fail", "error", "inconclusive")
JOB_NAME_ATTEMPTS = 3
# Argo Rollouts' consecutiveErrorLimit default: a minute or two of Prometheus trouble is not a verdict.
DEFAULT_ERROR_LIMIT = 4

ANALYSIS_CHECK_OPTIONS: Dict[str, Dict[str, Any]] = {
    "name": dict(type="str", required=True),
    "type": dict(type="str", required=True, choices=CHECK_TYPES),
    # prometheus and compare
    "query": dict(type="str"),
    "metric": dict(type="str", choices=sorted(BUILTIN_METRICS)),
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
    # job
    "job": dict(type="dict", options=JOB_OPTIONS),
    # compare
    "baseline_track": dict(type="str", default="stable"),
    "direction": dict(type="str", default="higher_is_worse", choices=DIRECTIONS),
    "alpha": dict(type="float", default=0.05),
    "min_difference": dict(type="float"),
    # verdict
    "min": dict(type="float"),
    "max": dict(type="float"),
    "interval": dict(type="float", default=30.0),
    "initial_delay": dict(type="float", default=0.0),
    "samples": dict(type="int", default=3),
    "failure_limit": dict(type="int", default=0),
    "error_limit": dict(type="int", default=DEFAULT_ERROR_LIMIT),
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
        self.job_params: Optional[Dict[str, Any]] = v["job"]
        self.job: Optional[JobOptions] = None
        self.baseline_track: str = v["baseline_track"]
        self.direction: str = v["direction"]
        self.alpha: float = v["alpha"]
        self.min_difference: Optional[float] = v["min_difference"]
        self.min: Optional[float] = v["min"]
        self.max: Optional[float] = v["max"]
        self.interval: float = v["interval"]
        self.initial_delay: float = v["initial_delay"]
        self.samples: int = v["samples"]
        self.failure_limit: int = v["failure_limit"]
        self.error_limit: int = v["error_limit"]
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
        if self.type not in CHECK_TYPES:
            raise self._bad("type", " | ".join(CHECK_TYPES), self.type)
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
        if self.error_limit < 0:
            raise self._bad(
                "error_limit",
                "an integer >= 0 (errors in a row tolerated; 0 ends the check on the first)",
                self.error_limit,
            )
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
        if self.type != "job" and self.job_params is not None:
            raise self._bad("job", "no job on a %s check (only type job runs a Job)" % self.type, "job: {...}")
        if self.type != "compare" and self.min_difference is not None:
            raise self._bad(
                "min_difference", "no min_difference on a %s check (only type compare)" % self.type, self.min_difference
            )
        {
            "prometheus": self._validate_prometheus,
            "http": self._validate_http,
            "job": self._validate_job,
            "compare": self._validate_compare,
        }[self.type]()

    def _refuse(self, keys: List[str]) -> None:
        for key in keys:
            if getattr(self, key) is not None:
                seen = redact_url(self.url or "") if key == "url" else getattr(self, key)
                raise self._bad(key, "no %s on a %s check" % (key, self.type), seen)

    def _validate_job(self) -> None:
        if self.job_params is None:
            raise self._bad(
                "job", "the Job to run (image, and optionally command, args, env, timeout) for a job check", None
            )
        self._refuse(["query", "metric", "url", "service", "pod", "json_path", "min", "max", "value"])
        self.job = JobOptions(self.job_params, "%s.job" % self.where, self.name)

    def _validate_compare(self) -> None:
        if bool(self.query) == bool(self.metric):
            raise self._bad(
                "query",
                "exactly one of query or metric for a compare check",
                {"query": self.query, "metric": self.metric},
            )
        if self.query and not any(m.group(1) == "track" for m in PLACEHOLDER.finditer(self.query)):
            raise self._bad(
                "query",
                "a query template with ${track}, so the canary and the baseline series differ",
                self.query,
            )
        self._refuse(["url", "service", "pod", "json_path", "min", "max", "consecutive_success"])
        validate_duration(self.window, "%s.window" % self.where)
        if not 0 < self.quantile < 1:
            raise self._bad("quantile", "a number between 0 and 1 (exclusive)", self.quantile)
        if not self.baseline_track:
            raise self._bad(
                "baseline_track", "the track label of the pods to compare with (stable)", self.baseline_track
            )
        if self.direction not in DIRECTIONS:
            raise self._bad("direction", " | ".join(DIRECTIONS), self.direction)
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1):
            raise self._bad("alpha", "a significance level between 0 and 1 (exclusive), such as 0.05", self.alpha)
        if self.min_difference is not None and not (self.min_difference >= 0):
            raise self._bad(
                "min_difference", "a number >= 0 (the medians must differ by more for a failure)", self.min_difference
            )
        lowest = smallest_p_value(self.samples, self.samples)
        if lowest >= self.alpha:
            needed = self.samples
            while smallest_p_value(needed, needed) >= self.alpha:
                needed += 1
            raise self._bad(
                "samples",
                "at least %d samples for alpha %g: with %d per track the smallest p-value the test can reach is %.3g, "
                "so it could never fail" % (needed, self.alpha, self.samples, lowest),
                self.samples,
            )

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
                seen = redact_url(self.url or "") if key == "url" else getattr(self, key)
                raise self._bad(key, "no %s on a prometheus check" % key, seen)
        validate_duration(self.window, "%s.window" % self.where)
        if not 0 < self.quantile < 1:
            raise self._bad("quantile", "a number between 0 and 1 (exclusive)", self.quantile)

    def _validate_http(self) -> None:
        targets = [key for key in ("url", "service", "pod") if getattr(self, key)]
        if len(targets) != 1:
            raise self._bad("url", "exactly one of url, service or pod for an http check", targets or None)
        if self.url and not self.url.startswith(("http://", "https://")):
            raise self._bad("url", "an http:// or https:// URL", redact_url(self.url))
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

    def template(self, scope: List[str]) -> str:
        """The query template; a built-in selects the labels of ``scope`` (those the context knows)."""
        if self.query:
            return self.query
        if not scope:
            raise self._bad(
                "metric",
                "a version, slot or track to scope the built-in query to (the release sets them)",
                self.metric,
            )
        return builtin_query(self.metric or "", scope)

    def job_options(self) -> JobOptions:
        """The validated ``job`` option of a job check."""
        if self.job is None:
            raise self._bad("job", "the Job to run, on a job check", self.type)
        return self.job

    def compare_template(self) -> str:
        """The template a compare check fills once per track: a built-in selects the track only.

        Not the version or the slot: the baseline runs another version, and selecting the canary's
        version would make the baseline series empty.
        """
        return self.query or builtin_query(self.metric or "", ["track"])

    def expectation(self) -> Expectation:
        """What makes an HTTP answer ok for this check."""
        return Expectation(
            expected_status=self.expected_status,
            json_path=self.json_path,
            condition=self.condition,
            value=self.value,
            minimum=self.min,
            maximum=self.max,
        )

    def http_target(self, namespace: str) -> HttpTarget:
        return HttpTarget(
            url=self.url,
            service=self.service,
            pod=self.pod,
            namespace=namespace,
            port=self.port,
            path=self.path,
            scheme=self.scheme,
            validate_certs=self.validate_certs,
        )

    def bound(self) -> Dict[str, Any]:
        if self.type == "job" and self.job is not None:
            return self.job.bound()
        if self.type == "compare":
            out = {"baseline_track": self.baseline_track, "direction": self.direction, "alpha": self.alpha}
            if self.min_difference is not None:
                out["min_difference"] = self.min_difference
            return out
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
        run_id: Optional[str] = None,
    ) -> None:
        self.namespace = namespace
        self.app = app
        # Names the Jobs of job checks; the engine passes its release run's id so they can be traced to it.
        self.run_id = run_id or uuid.uuid4().hex[:8]
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
            raise InvalidArgumentError(
                "analysis.prometheus.url", "an http:// or https:// URL", redact_url(str(p["url"]))
            )
        if p["timeout"] <= 0:
            raise InvalidArgumentError("analysis.prometheus.timeout", "seconds > 0", p["timeout"])
        return PrometheusClient(p["url"], p["timeout"], p["validate_certs"], p["bearer_token"], http_get)


class CheckRun:
    """The samples and verdict of one check."""

    def __init__(self, spec: CheckSpec, context: AnalysisContext, start: float) -> None:
        self.spec = spec
        self.context = context
        self.samples: List[Dict[str, Any]] = []
        self.measured = 0
        self.failures = 0
        self.errors = 0
        self.consecutive_errors = 0
        self.no_data = 0
        self.consecutive = 0
        self.verdict: Optional[str] = None
        self.reason = ""
        self.value: Optional[Any] = None
        self.finished_order: Optional[int] = None
        self.next_due = start + spec.initial_delay
        self.started_at = isoformat(context.clock.now())
        self.finished_at: Optional[str] = None
        if spec.type == "prometheus":
            scope = [label for label in SCOPE_LABELS if context.variables.get(label) is not None]
            self.target = render_query(spec.template(scope), self._variables(), "%s.query" % spec.where)
        elif spec.type == "compare":
            self._init_compare()
        elif spec.type == "job":
            self._init_job()
        else:
            self.http = spec.http_target(context.namespace)
            self.target = self.http.describe()

    def _init_compare(self) -> None:
        s = self.spec
        self.canary_track = str(self.context.variables.get("track") or "canary")
        if s.baseline_track == self.canary_track:
            raise s._bad(
                "baseline_track",
                "a track other than the one judged (%s)" % self.canary_track,
                s.baseline_track,
            )
        template = s.compare_template()
        option = "%s.query" % s.where
        self.target = render_query(template, dict(self._variables(), track=self.canary_track), option)
        self.baseline_target = render_query(template, dict(self._variables(), track=s.baseline_track), option)
        self.comparison: Dict[str, Any] = {
            "canary_track": self.canary_track,
            "baseline_track": s.baseline_track,
            "direction": s.direction,
            "alpha": s.alpha,
            "min_difference": s.min_difference,
            "method": None,
            "u": None,
            "p_value": None,
            "canary_median": None,
            "baseline_median": None,
            "difference": None,
            "canary": [],
            "baseline": [],
        }

    def _init_job(self) -> None:
        # Rendered now, so a bad placeholder fails before the first Job is created.
        self.job = RenderedJob(self.spec.job_options(), self.context.variables)
        self.target = self.job.describe()
        self.pending: Optional[JobSample] = None
        self.jobs_started = 0
        self.last_job: Optional[str] = None
        self.logs: List[str] = []
        self.cleanup_warnings: List[str] = []

    def _variables(self) -> Dict[str, Any]:
        values = dict(self.context.variables)
        values["window"] = self.spec.window
        values["quantile"] = self.spec.quantile
        return values

    @property
    def done(self) -> bool:
        return self.verdict is not None

    # -- measuring -----------------------------------------------------------

    def advance(self, now: float) -> None:
        """Take the sample that is due (or, for a Job, move the Job on) and set when to come back."""
        if self.spec.type == "job":
            self._advance_job()
            return
        self.measure()
        self.next_due = max(self.next_due + self.spec.interval, now)

    def measure(self) -> None:
        at = isoformat(self.context.clock.now())
        measure = {
            "prometheus": self._measure_prometheus,
            "compare": self._measure_compare,
            "http": self._measure_http,
        }[self.spec.type]
        self._record(at, measure())
        self._decide()

    def _measure_compare(self) -> Dict[str, Any]:
        if self.context.prometheus is None:
            return self._error_sample("no Prometheus configured (analysis.prometheus.url)")
        # One instant for both series, so both rate() windows cover the same time.
        at = self.context.clock.now().timestamp()
        try:
            canary = self.context.prometheus.query(self.target, at=at)
            baseline = self.context.prometheus.query(self.baseline_target, at=at)
        except PrometheusError as exc:
            return self._error_sample(str(exc))
        if canary.no_data or baseline.no_data:
            missing = [t for t, r in ((self.canary_track, canary), (self.spec.baseline_track, baseline)) if r.no_data]
            sample = self._no_data_sample("no data for track %s" % " and ".join(missing))
            return dict(sample, value=canary.value, baseline=baseline.value)
        # A compare sample is only measured here; the test over all of them decides.
        return {"value": canary.value, "baseline": baseline.value, "ok": True, "outcome": "ok"}

    # -- Job checks ------------------------------------------------------------

    def _advance_job(self) -> None:
        clock = self.context.clock
        if self.pending is None:
            self._start_job()
            return
        sampler = self.pending
        sample = sampler.poll()
        if sample is None:
            self.next_due = clock.monotonic() + sampler.next_wait()
            return
        self._end_job(sampler, sample)

    def _start_job(self) -> None:
        clock, s = self.context.clock, self.spec
        if self.context.kube is None:
            self._take_job_sample(self._error_sample("no Kubernetes client to create the Job with"))
            return
        # A name left by an earlier phase of the same run (its Job not yet gone) is skipped, a few times at most.
        for _attempt in range(JOB_NAME_ATTEMPTS):
            self.jobs_started += 1
            name = job_name(self.context.app, s.name, self.context.run_id, self.jobs_started)
            manifest = build_job(
                self.job,
                namespace=self.context.namespace,
                name=name,
                app=self.context.app,
                check=s.name,
                run_id=self.context.run_id,
            )
            sampler = JobSample(self.context.kube, manifest, s.job_options(), clock)
            self.last_job = name
            refused = sampler.start()
            if refused is None or not refused.pop("conflict", False):
                break
        if refused is not None:
            self._take_job_sample(refused)
            return
        self.pending = sampler
        self.next_due = clock.monotonic() + sampler.next_wait()

    def _end_job(self, sampler: JobSample, sample: Dict[str, Any]) -> None:
        warning = sampler.delete()
        self.pending = None
        if warning:
            sample["cleanup"] = warning
            self.cleanup_warnings.append(warning)
        self._take_job_sample(sample)

    def _take_job_sample(self, sample: Dict[str, Any]) -> None:
        if "logs" in sample:
            self.logs = list(sample["logs"])
            # An ok Job's log is no evidence worth a place in the state record; the check keeps the last one.
            if sample.get("ok") is True:
                del sample["logs"]
        self._record(isoformat(self.context.clock.now()), sample)
        self._decide()
        # The interval runs from the end of one Job to the start of the next: Jobs never overlap.
        self.next_due = self.context.clock.monotonic() + self.spec.interval

    def _error_sample(self, message: str) -> Dict[str, Any]:
        return {"value": None, "ok": None, "outcome": "error", "error": message}

    def _measure_prometheus(self) -> Dict[str, Any]:
        if self.context.prometheus is None:
            return self._error_sample("no Prometheus configured (analysis.prometheus.url)")
        try:
            result = self.context.prometheus.query(self.target)
        except PrometheusError as exc:
            return self._error_sample(str(exc))
        if result.no_data:
            return self._no_data_sample("no data")
        return self._bounded(result.value)

    def _measure_http(self) -> Dict[str, Any]:
        s = self.spec
        try:
            answer = send_probe(
                self.http, s.request_timeout, self.context.clock, http_get=self.context.http_get, kube=self.context.kube
            )
        except ApiUnreachableError as exc:
            # The API server relays the check; without it nothing was measured.
            return self._error_sample(str(exc.seen or exc.message))
        except HttpUnreachable as exc:
            # The URL is the thing judged: no answer from it is a failed sample.
            return {"value": None, "ok": False, "outcome": "failed", "error": redact_text(str(exc), s.url or "")}
        judged = judge_answer(s.expectation(), answer.status, answer.body, answer.content_type, answer.latency)
        extra = {"status": answer.status, "latency": judged.get("latency")}
        if judged.get("no_data"):
            return dict(self._no_data_sample(judged["reason"]), **extra)
        if judged["ok"]:
            return dict(value=judged["value"], ok=True, outcome="ok", **extra)
        return dict(value=judged["value"], ok=False, outcome="failed", error=judged["reason"], **extra)

    def _no_data_sample(self, why: str) -> Dict[str, Any]:
        policy = self.spec.on_no_data
        ok = {"fail": False, "pass": True, "inconclusive": None}[policy]
        sample = {"value": None, "ok": ok, "outcome": "no_data", "no_data": True}
        if ok is False:
            sample["error"] = why
        return sample

    def _bounded(self, value: float) -> Dict[str, Any]:
        breach = check_bounds(value, self.spec.min, self.spec.max)
        if breach:
            return {"value": value, "ok": False, "outcome": "failed", "error": breach}
        return {"value": value, "ok": True, "outcome": "ok"}

    # -- judging -------------------------------------------------------------

    def _record(self, at: str, sample: Dict[str, Any]) -> None:
        sample = dict(sample, time=at)
        self.samples.append(sample)
        if sample["outcome"] == "error":
            # Not a sample of the release: it neither counts towards `samples` nor breaks a streak.
            self.errors += 1
            self.consecutive_errors += 1
            return
        self.consecutive_errors = 0
        self.measured += 1
        if sample.get("value") is not None:
            self.value = sample["value"]
        if sample.get("no_data"):
            self.no_data += 1
        if sample["ok"] is False:
            self.failures += 1
            self.consecutive = 0
        elif sample["ok"] is True:
            # No data that counts as ok is no evidence either: it keeps a streak but never adds to it.
            if not sample.get("no_data"):
                self.consecutive += 1
        else:
            self.consecutive = 0

    def _decide(self) -> None:
        s = self.spec
        last = self.samples[-1]
        if self.consecutive_errors > s.error_limit:
            self._finish(
                "error",
                "%d errors in a row exceed error_limit %d; last: %s"
                % (self.consecutive_errors, s.error_limit, last.get("error")),
            )
            return
        if last["outcome"] == "error":
            return
        if self.failures > s.failure_limit:
            why = last.get("error") or ("no data" if last.get("no_data") else "failed")
            self._finish(
                "fail", "%d failed samples exceed failure_limit %d; last: %s" % (self.failures, s.failure_limit, why)
            )
            return
        if s.consecutive_success and self.consecutive >= s.consecutive_success:
            self._finish("pass", "%d consecutive ok samples" % self.consecutive)
            return
        if self.measured < s.samples:
            return
        if s.type == "compare":
            self._judge_comparison()
        elif s.consecutive_success:
            self._finish(
                "inconclusive",
                "%d samples taken without %d consecutive ok samples%s"
                % (
                    self.measured,
                    s.consecutive_success,
                    " (%d had no data, which never counts towards the streak)" % self.no_data if self.no_data else "",
                ),
            )
        elif self.no_data and s.on_no_data == "inconclusive":
            self._finish(
                "inconclusive",
                "%d of %d samples had no data (on_no_data: inconclusive)" % (self.no_data, self.measured),
            )
        else:
            self._finish(
                "pass", "%d samples, %d failed (failure_limit %d)" % (self.measured, self.failures, s.failure_limit)
            )

    def _judge_comparison(self) -> None:
        """The Mann-Whitney U test over the samples with data in both series."""
        s, c = self.spec, self.comparison
        measured = [sample for sample in self.samples if sample["outcome"] == "ok"]
        canary = [sample["value"] for sample in measured]
        baseline = [sample["baseline"] for sample in measured]
        c.update(canary=canary, baseline=baseline)
        worse = "higher" if s.direction == "higher_is_worse" else "lower"
        if not measured or smallest_p_value(len(canary), len(baseline)) >= s.alpha:
            why = "%d samples had data in both series: too few for the test to reach alpha %g" % (
                len(measured),
                s.alpha,
            )
            if s.on_no_data == "pass":
                self._finish("pass", "%s (on_no_data: pass)" % why)
            else:
                self._finish("inconclusive", why)
            return
        test = mann_whitney_u(canary, baseline, alternative="greater" if worse == "higher" else "less")
        canary_median, baseline_median = median(canary), median(baseline)
        difference = canary_median - baseline_median if worse == "higher" else baseline_median - canary_median
        c.update(
            method=test.method,
            u=test.u,
            p_value=test.p_value,
            canary_median=canary_median,
            baseline_median=baseline_median,
            difference=difference,
        )
        self.value = canary_median
        summary = "Mann-Whitney U=%g (%s), p=%.4g; medians %s %g, %s %g" % (
            test.u,
            test.method,
            test.p_value,
            self.canary_track,
            canary_median,
            s.baseline_track,
            baseline_median,
        )
        significant = test.p_value < s.alpha
        large_enough = s.min_difference is None or difference > s.min_difference
        if significant and large_enough:
            margin = "" if s.min_difference is None else ", by %g > min_difference %g" % (difference, s.min_difference)
            self._finish(
                "fail",
                "%s is %s than %s (p %.4g < alpha %g%s): %s"
                % (self.canary_track, worse, s.baseline_track, test.p_value, s.alpha, margin, summary),
            )
        elif self.no_data and s.on_no_data == "inconclusive":
            self._finish(
                "inconclusive",
                "%d of %d samples had no data (on_no_data: inconclusive); %s" % (self.no_data, self.measured, summary),
            )
        elif significant:
            self._finish(
                "pass",
                "%s is %s than %s (p %.4g < alpha %g) but by %g, not more than min_difference %g: %s"
                % (
                    self.canary_track,
                    worse,
                    s.baseline_track,
                    test.p_value,
                    s.alpha,
                    difference,
                    s.min_difference,
                    summary,
                ),
            )
        else:
            self._finish(
                "pass",
                "no evidence that %s is %s than %s (p %.4g >= alpha %g): %s"
                % (self.canary_track, worse, s.baseline_track, test.p_value, s.alpha, summary),
            )

    def _finish(self, verdict: str, reason: str) -> None:
        self.verdict = verdict
        self.reason = reason
        self.finished_at = isoformat(self.context.clock.now())

    def stop(self, reason: str) -> None:
        if not self.done:
            self._finish("inconclusive", reason)
        self.close()

    def close(self) -> None:
        """Delete a check Job still running (the analysis stopped, or the run is failing)."""
        if self.spec.type != "job" or self.pending is None:
            return
        warning = self.pending.delete()
        self.pending = None
        if warning:
            self.cleanup_warnings.append(warning)

    def as_dict(self) -> Dict[str, Any]:
        out = self._common_dict()
        if self.spec.type == "compare":
            out["baseline_query"] = self.baseline_target
            out["comparison"] = dict(self.comparison)
            if self.comparison["baseline_median"] is not None:
                out["bound"] = dict(out["bound"], baseline_median=self.comparison["baseline_median"])
        elif self.spec.type == "job":
            out["job"] = {
                "image": self.job.image,
                "last": self.last_job,
                "started": self.jobs_started,
                "cleanup_warnings": list(self.cleanup_warnings),
            }
            out["logs"] = list(self.logs)
        return out

    def _common_dict(self) -> Dict[str, Any]:
        return {
            "check": self.spec.name,
            "type": self.spec.type,
            "query": self.target,
            "value": self.value,
            "bound": self.spec.bound(),
            "on_no_data": self.spec.on_no_data,
            "samples": list(self.samples),
            "measured": self.measured,
            "failures": self.failures,
            "errors": self.errors,
            "no_data": self.no_data,
            "failure_limit": self.spec.failure_limit,
            "error_limit": self.spec.error_limit,
            "verdict": self.verdict,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


# Most to least severe: the phase takes the first verdict any check has.
SEVERITY = ("fail", "error", "inconclusive", "pass")
STOPPING = ("fail", "error")


def overall_verdict(verdicts: List[str]) -> str:
    for verdict in SEVERITY:
        if verdict in verdicts:
            return verdict
    return "pass"


def run_analysis(
    checks: List[CheckSpec],
    context: AnalysisContext,
    *,
    stop_on_failure: bool = True,
) -> Dict[str, Any]:
    """Run the checks side by side, each on its own interval, and return every verdict as data.

    With ``stop_on_failure`` the first check that fails (or ends ``error``) ends
    the analysis; checks still running are then inconclusive with the reason
    saying why they stopped. ``decided_by`` in the result names the check whose
    verdict is the phase's (the first to reach it), None when every check passed.
    """
    clock = context.clock
    start = clock.monotonic()
    started_at = isoformat(clock.now())
    runs = [CheckRun(spec, context, start) for spec in checks]
    finished: List[CheckRun] = []

    def note_finished() -> None:
        for run in runs:
            if run.done and run not in finished:
                finished.append(run)

    def step() -> Any:
        now = clock.monotonic()
        for run in runs:
            if not run.done and run.next_due <= now + 1e-6:
                run.advance(now)
        note_finished()
        stopping = [run for run in finished if run.verdict in STOPPING]
        if stopping and stop_on_failure:
            first = stopping[0]
            why = "failed" if first.verdict == "fail" else "could not measure (error)"
            for run in runs:
                run.stop("stopped because check '%s' %s" % (first.spec.name, why))
            note_finished()
        if all(run.done for run in runs):
            return True, None
        return False, {"reason": ", ".join("%s: %d samples" % (r.spec.name, len(r.samples)) for r in runs)}

    def next_wait() -> float:
        pending = [run.next_due for run in runs if not run.done]
        return max(0.0, min(pending) - clock.monotonic()) if pending else 0.0

    try:
        poll(step, timeout=None, interval=next_wait, what="analysis", clock=clock, heartbeat=context.heartbeat)
    finally:
        # A lost lease or an interrupt ends the loop early: no check Job is left running.
        for run in runs:
            run.close()
    results = [run.as_dict() for run in runs]
    verdict = overall_verdict([r["verdict"] for r in results])
    decider = next((run for run in finished if run.verdict == verdict), None) if verdict != "pass" else None
    decisive = [r for r in results if r["verdict"] == verdict]
    reason = (
        "; ".join("%s: %s" % (r["check"], r["reason"]) for r in decisive)
        if verdict != "pass"
        else "%d checks passed" % len(results)
    )
    return {
        "verdict": verdict,
        "reason": reason,
        "decided_by": decider.spec.name if decider else None,
        "checks": results,
        "counts": {name: sum(1 for r in results if r["verdict"] == name) for name in VERDICTS},
        "started_at": started_at,
        "finished_at": isoformat(clock.now()),
    }


def deciding_check(result: Dict[str, Any]) -> Dict[str, Any]:
    """The per-check entry that decided a result's verdict (``decided_by``), else the first with that verdict."""
    checks = result.get("checks") or []
    name = result.get("decided_by")
    if name:
        for check in checks:
            if check.get("check") == name:
                return check
    return next((c for c in checks if c.get("verdict") == result.get("verdict")), None) or {}


def verdict_summary(result: Dict[str, Any]) -> Dict[str, Any]:
    """A result without its samples, for notifications and logs: the verdict and what decided it."""
    out: Dict[str, Any] = {
        "verdict": result.get("verdict"),
        "reason": result.get("reason"),
        "decided_by": result.get("decided_by"),
        "counts": result.get("counts"),
    }
    if result.get("verdict") == "pass":
        return out
    culprit = deciding_check(result)
    for key in ("check", "type", "query", "value", "bound"):
        if key in culprit:
            out[key] = culprit[key]
    comparison = culprit.get("comparison")
    if comparison:
        out["p_value"] = comparison.get("p_value")
    if culprit.get("logs"):
        out["logs"] = list(culprit["logs"])[-5:]
    return out


def is_breach(exc: Exception) -> bool:
    """An analysis that measured the release and judged it bad (not an outage of the measuring)."""
    return isinstance(exc, AnalysisFailedError) and (exc.data or {}).get("verdict") == "fail"


def analysis_error(
    result: Dict[str, Any], phase: str, inconclusive_fails: bool = False
) -> Optional[AnalysisFailedError]:
    """The error to raise for a result, or None when the phase may go on.

    ``fail`` gives an AnalysisFailedError; ``error`` gives its subclass
    AnalysisMeasurementError (the analysis could not measure, so it says
    nothing about the release), whatever ``inconclusive_fails`` says;
    ``inconclusive`` gives an AnalysisFailedError only with ``inconclusive_fails``.
    """
    verdict = result["verdict"]
    if verdict == "pass" or (verdict == "inconclusive" and not inconclusive_fails):
        return None
    culprit = deciding_check(result)
    if verdict == "error":
        return AnalysisMeasurementError(
            "%s analysis could not measure: check %s" % (phase, culprit.get("check")),
            expected="at most %s errors in a row (error_limit) for %s"
            % (culprit.get("error_limit"), culprit.get("query")),
            seen=culprit.get("reason"),
            hint=(
                "This is no verdict on the release: make the check's Job able to run and finish (image, pull "
                "credentials, quota, Pod Security, job.timeout), then run the analysis again. Every sample is in the result"
                if culprit.get("type") == "job"
                else "This is no verdict on the release: make Prometheus (or the API server) answer, or fix the "
                "query, then run the analysis again. Every sample is in the result"
            ),
            data=result,
        )
    return AnalysisFailedError(
        "%s analysis %s: check %s"
        % (phase, "failed" if verdict == "fail" else "was inconclusive", culprit.get("check")),
        expected="check %s within %s" % (culprit.get("check"), culprit.get("bound")),
        seen="value %s (%s)" % (culprit.get("value"), culprit.get("reason")),
        hint="The verdicts with every sample are in the result and the release state record",
        data=result,
    )
