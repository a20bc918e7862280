# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus instant queries, query templates and the built-in queries.

Templates use ``${name}`` placeholders filled by plain substitution, never
Jinja: a template is data from the inventory and must not run code. Values are
escaped for the PromQL string literal they sit in, and a placeholder outside a
string literal only accepts plain tokens (numbers, durations, identifiers), so
a version string cannot add matchers or operators to a query.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlencode

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidArgumentError,
    PrometheusQueryError,
    PrometheusUnreachableError,
)

# The HTTP boundary lives in http_probe; these names stay importable from here.
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import (  # noqa: F401
    HttpGet,
    HttpResponse,
    HttpUnreachable,
    describe_answer,
    redact_url,
    urllib_get,
)

# ${name}: a syntax Jinja leaves alone, so queries written in inventories reach us untemplated.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
BARE_TOKEN = re.compile(r"^[A-Za-z0-9_.:]+$")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")

# Metric names of the User Service contract (COMMON.md); labels app/namespace are
# added by the platform's scrape config, version comes from the app itself.
REQUESTS_METRIC = "http_requests_total"
DURATION_BUCKET_METRIC = "http_request_duration_seconds_bucket"

BUILTIN_METRICS = ("error_ratio", "latency_quantile")

# Labels that say which pods a built-in query measures, in the order they appear in
# the selector. The slot tells two blue/green slots of one version apart (a
# config-only release keeps the version), the track does the same for a canary.
SCOPE_LABELS = ("version", "slot", "track")


# The platform's own requests (kubelet probes, Prometheus scrapes, the health gate) are not traffic: they
# always succeed, so counting them would dilute an error ratio and turn "no users" into a healthy 0.
NOT_TRAFFIC = 'route!~"/metrics|/api/health/.*"'


def _selector(scope: Sequence[str], extra: str = "") -> str:
    matchers = ['namespace="${namespace}"', 'app="${app}"']
    matchers += ['%s="${%s}"' % (label, label) for label in SCOPE_LABELS if label in scope]
    matchers.append(NOT_TRAFFIC)
    if extra:
        matchers.append(extra)
    return "{" + ",".join(matchers) + "}"


def builtin_query(name: str, scope: Sequence[str]) -> str:
    """The template of a built-in metric, selecting ``namespace``, ``app`` and each label of ``scope``.

    ``error_ratio`` is 0 when the pods served traffic without a 5xx (the app
    creates its 5xx series only on the first 5xx, so the numerator falls back
    to ``vector(0)``) and *no data* when they served nothing: the denominator
    is then an empty vector (no series) or 0 (NaN), and both read as no data.
    """
    if name == "error_ratio":
        errors = "sum(rate(%s%s[${window}]))" % (REQUESTS_METRIC, _selector(scope, 'status_code=~"5.."'))
        total = "sum(rate(%s%s[${window}]))" % (REQUESTS_METRIC, _selector(scope))
        return "(%s or vector(0)) / %s" % (errors, total)
    if name == "latency_quantile":
        return "histogram_quantile(${quantile}, sum by (le) (rate(%s%s[${window}])))" % (
            DURATION_BUCKET_METRIC,
            _selector(scope),
        )
    raise KeyError(name)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _escape(value: str, quote: str) -> str:
    if quote == "`":
        if "`" in value:
            raise ValueError("a backtick cannot be escaped inside a raw string")
        return value
    out = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def render_query(template: str, variables: Dict[str, Any], option: str = "query") -> str:
    """Fill ``${name}`` placeholders, escaping each value for where it stands.

    Inside ``"..."`` and ``'...'`` a value is escaped; inside a backtick raw
    string it may not contain a backtick; outside any string it must be a plain
    token (``[A-Za-z0-9_.:]+``, e.g. ``0.99``, ``5m``).
    """
    out: List[str] = []
    quote: Optional[str] = None
    i = 0
    while i < len(template):
        match = PLACEHOLDER.match(template, i)
        if match:
            key = match.group(1)
            if key not in variables or variables[key] is None:
                raise InvalidArgumentError(
                    option,
                    "placeholders among %s" % ", ".join(sorted(k for k, v in variables.items() if v is not None)),
                    "${%s}" % key,
                )
            value = variables[key]
            text = _format_value(value)
            if quote is None:
                if not BARE_TOKEN.match(text):
                    raise InvalidArgumentError(
                        option,
                        "a plain token (letters, digits, '_', '.', ':') for ${%s} outside quotes" % key,
                        text,
                        hint="Put the placeholder inside a quoted label value",
                    )
                out.append(text)
            else:
                try:
                    out.append(_escape(text, quote))
                except ValueError as exc:
                    raise InvalidArgumentError(option, "a value without backticks for ${%s}" % key, text) from exc
            i = match.end()
            continue
        char = template[i]
        if quote is None:
            if char in ('"', "'", "`"):
                quote = char
        elif char == "\\" and quote != "`" and i + 1 < len(template):
            out.append(template[i : i + 2])
            i += 2
            continue
        elif char == quote:
            quote = None
        out.append(char)
        i += 1
    if quote is not None:
        raise InvalidArgumentError(option, "balanced quotes in the query", template)
    return "".join(out)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def validate_duration(value: str, option: str) -> str:
    if not isinstance(value, str) or not DURATION.match(value):
        raise InvalidArgumentError(option, "a Prometheus duration such as 30s, 1m, 5m", value)
    return value


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------


class QueryResult:
    """One number or no data (``value is None``: empty result or NaN)."""

    def __init__(self, value: Optional[float], result_type: str, series: int, raw: Any) -> None:
        self.value = value
        self.result_type = result_type
        self.series = series
        self.raw = raw

    @property
    def no_data(self) -> bool:
        return self.value is None


class PrometheusClient:
    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        validate_certs: bool = True,
        bearer_token: Optional[str] = None,
        http_get: Optional[HttpGet] = None,
    ) -> None:
        self.url = url.rstrip("/")
        # What messages and results show: the URL without user:password@.
        self.display_url = redact_url(self.url)
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.bearer_token = bearer_token
        self.http_get = http_get or urllib_get

    def query(self, promql: str, at: Optional[float] = None) -> QueryResult:
        """Instant query (``GET /api/v1/query``) reduced to one value.

        Raises PrometheusUnreachableError when there is no usable answer (no
        answer, an HTTP error without a PromQL error, a Prometheus timeout) and
        PrometheusQueryError when Prometheus rejects the query or it returns
        more than one series; both messages name the query. An empty vector or
        NaN (``0/0``) is *no data*, not an error.
        """
        params: Dict[str, Any] = {"query": promql, "timeout": "%ds" % max(1, int(self.timeout))}
        if at is not None:
            params["time"] = "%.3f" % at
        url = "%s/api/v1/query?%s" % (self.url, urlencode(params))
        headers = {"Accept": "application/json"}
        if self.bearer_token:
            headers["Authorization"] = "Bearer %s" % self.bearer_token
        try:
            response = self.http_get(url, headers, self.timeout, self.validate_certs)
        except HttpUnreachable as exc:
            raise PrometheusUnreachableError(
                "Prometheus did not answer",
                expected="an answer from %s" % self.display_url,
                seen=str(exc),
                hint="Check the Prometheus URL and that it is reachable from where the playbook runs",
                data={"url": self.display_url},
            ) from exc
        payload = _decode(response)
        if payload is None or response.status >= 500 and payload.get("errorType") not in ("execution", "bad_data"):
            raise PrometheusUnreachableError(
                "Prometheus answered HTTP %s" % response.status,
                expected="a JSON answer from %s/api/v1/query" % self.display_url,
                seen=describe_answer(response.status, response.body, getattr(response, "content_type", "")),
                data={"url": self.display_url, "status": response.status},
            )
        if payload.get("status") != "success":
            raise PrometheusQueryError(
                "Prometheus rejected the query %s" % promql,
                expected="a valid PromQL query",
                seen="%s: %s" % (payload.get("errorType"), payload.get("error")),
                hint="Fix the query or its template variables",
                data={"query": promql, "status": response.status},
            )
        return _reduce(payload.get("data") or {}, promql)


def _decode(response: HttpResponse) -> Optional[Dict[str, Any]]:
    try:
        payload = json.loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _number(sample: Any) -> Optional[float]:
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        return None
    return None if math.isnan(value) else value


def _reduce(data: Dict[str, Any], promql: str) -> QueryResult:
    result_type = data.get("resultType") or ""
    result = data.get("result")
    if result_type == "scalar":
        return QueryResult(_number(result), result_type, 1, result)
    if result_type == "vector":
        series: List[Any] = result or []
        if not series:
            return QueryResult(None, result_type, 0, series)
        if len(series) > 1:
            labels = [s.get("metric") for s in series[:3]]
            raise PrometheusQueryError(
                "query %s returned %d series" % (promql, len(series)),
                expected="one series (aggregate with sum or max, or select more labels)",
                seen=json.dumps(labels),
                data={"query": promql},
            )
        return QueryResult(_number(series[0].get("value")), result_type, 1, series)
    raise PrometheusQueryError(
        "query %s returned a %s" % (promql, result_type or "result of unknown type"),
        expected="an instant vector or scalar",
        seen=result_type,
        data={"query": promql},
    )


def describe_value(value: Optional[float]) -> Tuple[Optional[float], str]:
    if value is None:
        return None, "no data"
    return value, "%g" % value
