# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP GET and one judgement of its answer, shared by the health gate, HTTP analysis checks and http_check.

A probe reaches its target directly (``open_url``, from where the module runs)
or through the API server's service or pod proxy (``KubeClient``), so it
needs no network path to the cluster's pods.

What a probe reports never quotes the answer's body: a failing answer is
described by its status, content type and length. Health endpoints and APIs
put tokens, connection strings and stack traces in bodies, and probe results
end up in module output, CI logs and the release state record. For the same
reason a URL is shown with any ``user:password@`` replaced by ``***@``.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
from typing import Any, Callable, Dict, List, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.userservice.deploy.plugins.module_utils.matchers import (
    check_bounds,
    compare,
    extract_json_path,
    is_missing,
    status_ok,
)

# ---------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with its userinfo (``user:password@``) replaced by ``***@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) without the userinfo of ``url``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    if "@" not in parts.netloc:
        return text
    userinfo = parts.netloc.rsplit("@", 1)[0]
    text = text.replace(url, redact_url(url)).replace(userinfo, "***")
    if parts.password:
        text = text.replace(parts.password, "***")
    return text


# What free text (a check Job's log, its argv) may carry that must never reach a result or the state record.
_SECRET_PATTERNS = [
    # scheme://user:password@host -> scheme://***@host
    (re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@"), r"\1***@"),
    # Authorization: Bearer abc / Basic abc / a bare value
    (
        re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;]+"),
        r"\1***",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1***"),
    # JSON Web Tokens (ServiceAccount tokens, OIDC) wherever they stand.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "***"),
    # password=..., "api_key": "...", token: ...
    (
        re.compile(
            r"(?i)\b((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)[\"']?\s*[:=]\s*[\"']?)"
            r"[^\s\"',;&]+"
        ),
        r"\1***",
    ),
]


def redact_secrets(text: str) -> str:
    """``text`` with bearer tokens, Authorization values, JWTs, ``password=``-style values and URL userinfo as ``***``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------------
# The HTTP boundary
# ---------------------------------------------------------------------------


class HttpResponse:
    """An answer: any status, the body and its content type."""

    def __init__(self, status: int, body: bytes, content_type: str = "") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type


class HttpUnreachable(Exception):
    """No HTTP answer at all (refused, DNS, TLS, timeout)."""


HttpGet = Callable[[str, Dict[str, str], float, bool], HttpResponse]


def open_url(url: str, **kwargs: Any) -> Any:
    """ansible's ``open_url``, imported on first use: ansible.module_utils.urls takes a tenth of a second to
    import, and a release whose gates all go through the API server never needs it."""
    from ansible.module_utils.urls import open_url as ansible_open_url

    return ansible_open_url(url, **kwargs)


def urllib_get(url: str, headers: Dict[str, str], timeout: float, validate_certs: bool) -> HttpResponse:
    """GET with ansible's ``open_url``; non-2xx answers are returned, not raised.

    Credentials in the URL (``https://user:password@host/``) are sent as basic
    authentication by ``open_url`` and never appear in the error text.
    """
    from ansible.module_utils.urls import ConnectionError as UrlsConnectionError

    try:
        response = open_url(
            url, method="GET", headers=headers, timeout=timeout, validate_certs=validate_certs, follow_redirects="safe"
        )
        content_type = response.headers.get("Content-Type", "") if response.headers else ""
        return HttpResponse(response.getcode() or 200, response.read(), content_type or "")
    except HTTPError as exc:
        body = exc.read() if exc.fp is not None else b""
        content_type = exc.headers.get("Content-Type", "") if exc.headers else ""
        return HttpResponse(exc.code, body or b"", content_type or "")
    except (URLError, socket.timeout, OSError, UrlsConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpUnreachable(redact_text("%s: %s" % (type(exc).__name__, reason), url)) from exc


# ---------------------------------------------------------------------------
# Targets and probes
# ---------------------------------------------------------------------------


class HttpTarget:
    """Where a probe goes: a URL, or a Service or pod reached through the API server proxy."""

    def __init__(
        self,
        *,
        url: Optional[str] = None,
        service: Optional[str] = None,
        pod: Optional[str] = None,
        namespace: Optional[str] = None,
        port: Any = None,
        path: str = "/",
        scheme: str = "http",
        validate_certs: bool = True,
    ) -> None:
        self.url = url
        self.service = service
        self.pod = pod
        self.namespace = namespace
        self.port = None if port is None else str(port)
        self.path = path
        self.scheme = scheme
        self.validate_certs = validate_certs

    @property
    def proxied(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        """``GET <url>`` (credentials redacted) or ``GET service <ns>/<name>:<port><path>``."""
        if self.url is not None:
            return "GET %s" % redact_url(self.url)
        kind = "service" if self.service else "pod"
        return "GET %s %s/%s:%s%s" % (kind, self.namespace, self.service or self.pod, self.port, self.path)


class ProbeAnswer:
    """An answer with the seconds it took."""

    def __init__(self, status: int, body: bytes, content_type: str, latency: float) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.latency = latency


def send_probe(
    target: HttpTarget,
    timeout: float,
    clock: Any,
    *,
    http_get: Optional[HttpGet] = None,
    kube: Optional[Any] = None,
) -> ProbeAnswer:
    """One GET. Raises HttpUnreachable (a URL did not answer) or ApiUnreachableError (the API server did not)."""
    started = clock.monotonic()
    if target.url is not None:
        response: Any = (http_get or urllib_get)(
            target.url, {"Accept": "application/json, */*"}, timeout, target.validate_certs
        )
    elif kube is None:
        raise ValueError("a probe through the API server proxy needs a Kubernetes client")
    elif target.service:
        response = kube.service_proxy_get(
            target.namespace, target.service, target.port, target.path, timeout, target.scheme
        )
    else:
        response = kube.pod_proxy_get(target.namespace, target.pod, target.port, target.path, timeout, target.scheme)
    latency = max(0.0, clock.monotonic() - started)
    return ProbeAnswer(response.status, response.body or b"", getattr(response, "content_type", "") or "", latency)


# ---------------------------------------------------------------------------
# Judging an answer
# ---------------------------------------------------------------------------


def describe_answer(status: Optional[int], body: bytes, content_type: str = "") -> str:
    """``HTTP 503 (text/html, 1234 bytes)``: what an answer was, without its content."""
    media = (content_type or "").split(";")[0].strip() or "no content type"
    return "HTTP %s (%s, %d bytes)" % (status, media, len(body or b""))


class Expectation:
    """What makes an answer ok. Every part is optional; with none set, any 2xx is ok.

    Bounds are inclusive. A JSON field that is missing, null or NaN is *no data*
    (``ok`` is None): the caller decides what that counts as.
    """

    def __init__(
        self,
        *,
        expected_status: Optional[List[int]] = None,
        json_path: Optional[str] = None,
        condition: str = "==",
        value: Any = None,
        minimum: Optional[float] = None,
        maximum: Optional[float] = None,
        body_regex: Optional[str] = None,
        max_latency: Optional[float] = None,
    ) -> None:
        self.expected_status = expected_status or None
        self.json_path = json_path
        self.condition = condition
        self.value = value
        self.minimum = minimum
        self.maximum = maximum
        self.body_regex = re.compile(body_regex) if body_regex else None
        self.max_latency = max_latency

    def describe(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"expected_status": self.expected_status or "2xx"}
        if self.json_path is not None:
            out["json_path"] = self.json_path
            if self.value is not None:
                out["condition"] = self.condition
                out["value"] = self.value
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        if self.body_regex is not None:
            out["body_regex"] = self.body_regex.pattern
        if self.max_latency is not None:
            out["max_latency"] = self.max_latency
        return out


def judge_answer(
    expect: Expectation, status: int, body: bytes, content_type: str = "", latency: Optional[float] = None
) -> Dict[str, Any]:
    """``{ok, status, value, reason}`` for one answer, plus ``no_data: True`` when the JSON field has no value.

    ``ok`` is True, False or None (no data). ``value`` is the JSON field when
    one is tested, else the status. ``reason`` never contains the body.
    """
    answer = describe_answer(status, body, content_type)
    out: Dict[str, Any] = {"status": status}
    if latency is not None:
        out["latency"] = round(latency, 6)

    def verdict(ok: Optional[bool], value: Any, reason: str, **extra: Any) -> Dict[str, Any]:
        return dict(out, ok=ok, value=value, reason=reason, **extra)

    if not status_ok(status, expect.expected_status):
        return verdict(False, status, "%s, expected %s" % (answer, expect.expected_status or "2xx"))
    if expect.max_latency is not None and latency is not None and latency > expect.max_latency:
        return verdict(False, status, "%s in %.3fs, more than max_latency %gs" % (answer, latency, expect.max_latency))
    if expect.body_regex is not None:
        text = (body or b"").decode("utf-8", "replace")
        if not expect.body_regex.search(text):
            return verdict(False, status, "%s: body does not match %r" % (answer, expect.body_regex.pattern))
    if expect.json_path is None:
        return verdict(True, status, answer)
    try:
        document = json.loads((body or b"").decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return verdict(False, None, "%s: body is not JSON" % answer)
    actual = extract_json_path(document, expect.json_path)
    if is_missing(actual) or actual is None:
        what = "missing" if is_missing(actual) else "null"
        return verdict(None, None, "field %s %s" % (expect.json_path, what), no_data=True)
    if expect.value is not None:
        holds, explanation = compare(actual, expect.condition, expect.value)
        if not holds:
            return verdict(False, actual, "%s: %s" % (expect.json_path, explanation))
    if expect.minimum is not None or expect.maximum is not None:
        try:
            number = float(actual)
        except (TypeError, ValueError):
            return verdict(False, actual, "%s is not a number" % expect.json_path)
        if math.isnan(number):
            return verdict(None, None, "field %s is NaN" % expect.json_path, no_data=True)
        breach = check_bounds(number, expect.minimum, expect.maximum)
        if breach:
            return verdict(False, number, "%s: %s" % (expect.json_path, breach))
        return verdict(True, number, "%s = %g" % (expect.json_path, number))
    return verdict(
        True, actual, "%s: %s" % (expect.json_path, "%r" % (actual,) if expect.value is None else explanation)
    )
