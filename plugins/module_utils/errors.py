# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors of the release engine.

They are raised where the problem is found and turned into ``fail_json`` once,
at the top of a module, with :func:`error_result`. Every error can say which
object it is about, what was expected, what was seen and what to do, so the
message an operator reads is built in one place.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class ReleaseError(Exception):
    """Base class: a release step could not be carried out."""

    def __init__(
        self,
        message: str,
        *,
        kind: Optional[str] = None,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        expected: Optional[str] = None,
        seen: Optional[str] = None,
        hint: Optional[str] = None,
        data: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.expected = expected
        self.seen = seen
        self.hint = hint
        self.data: Dict[str, Any] = dict(data or {})

    @property
    def subject(self) -> str:
        if not self.kind and not self.name:
            return ""
        where = "/".join(part for part in (self.namespace, self.name) if part)
        return " ".join(part for part in (self.kind, where) if part)

    def __str__(self) -> str:
        parts = []
        head = self.message
        if self.subject:
            head = "%s: %s" % (self.subject, head)
        parts.append(head.rstrip("."))
        if self.expected is not None:
            parts.append("expected %s" % str(self.expected).rstrip("."))
        if self.seen is not None:
            parts.append("saw %s" % str(self.seen).rstrip("."))
        text = "; ".join(parts) + "."
        if self.hint:
            text += " " + self.hint.rstrip(".") + "."
        return text

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        for key in ("kind", "namespace", "name", "expected", "seen", "hint"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.data:
            out["data"] = self.data
        return out


class InvalidArgumentError(ReleaseError):
    """A module option has a value the engine cannot use."""

    def __init__(self, option: str, expected: str, seen: Any, hint: Optional[str] = None) -> None:
        super().__init__(
            "invalid value for option %s" % option,
            expected=expected,
            seen=repr(seen),
            hint=hint,
            data={"option": option},
        )
        self.option = option


class ApiError(ReleaseError):
    """The Kubernetes API answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        verb: Optional[str] = None,
        reason: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.status = status
        self.verb = verb
        self.reason = reason
        self.data.setdefault("status", status)
        if verb:
            self.data.setdefault("verb", verb)


class ApiUnreachableError(ApiError):
    """No answer from the API server (connection refused, TLS, timeout)."""


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    """The object changed since it was read (resourceVersion mismatch) or already exists."""


class ForbiddenError(ApiError):
    """RBAC refused the request; the message names verb, resource and namespace."""

    def __init__(self, verb: str, resource: str, namespace: Optional[str], name: Optional[str], detail: str) -> None:
        scope = "namespace %s" % namespace if namespace else "cluster scope"
        super().__init__(
            "forbidden to %s %s in %s" % (verb, resource, scope),
            status=403,
            verb=verb,
            kind=resource,
            namespace=namespace,
            name=name,
            seen=detail or None,
            hint="Grant the identity used by this run the verb '%s' on '%s' in a Role bound in that namespace"
            % (verb, resource),
        )
        self.resource = resource


class LockHeldError(ReleaseError):
    """Another run holds the release Lease."""

    def __init__(
        self,
        namespace: str,
        name: str,
        holder: str,
        expires_at: Optional[str],
        acquired_at: Optional[str] = None,
        hint: Optional[str] = None,
    ) -> None:
        super().__init__(
            "release lock is held by %s" % holder,
            kind="Lease",
            namespace=namespace,
            name=name,
            expected="no other holder",
            seen="holder %s since %s, expires %s" % (holder, acquired_at or "unknown", expires_at or "never"),
            hint=hint
            or "Wait for that run to finish or for the lease to expire, or steal the lock if that run is dead",
            data={"holder": holder, "expires_at": expires_at, "acquired_at": acquired_at},
        )
        self.holder = holder
        self.expires_at = expires_at


class LockLostError(LockHeldError):
    """The Lease we held was taken by someone else while we worked."""


class InvalidStateError(ReleaseError):
    """The release state record cannot be read or does not allow the requested step."""


class WaitTimeoutError(ReleaseError):
    """A wait ran out of time; ``data['last']`` says what was seen last."""


class RolloutFailedError(ReleaseError):
    """A rollout cannot complete (progress deadline exceeded, pods crash or cannot pull)."""


class GateFailedError(ReleaseError):
    """The health gate did not pass; ``data`` holds the per-pod results."""


class AnalysisFailedError(ReleaseError):
    """An analysis did not pass; ``data`` holds every check's verdict and samples."""


class PrometheusError(ReleaseError):
    """Prometheus could not answer a query."""


class PrometheusUnreachableError(PrometheusError):
    """No usable answer from Prometheus (connection, timeout, 5xx, not JSON)."""


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected the query (bad syntax, unsupported result shape)."""


def error_result(exc: ReleaseError) -> Dict[str, Any]:
    """Keyword arguments for ``module.fail_json`` built from a typed error."""
    return {"msg": str(exc), "error": exc.to_dict()}


def join_reasons(reasons: List[str]) -> str:
    return "; ".join(r for r in reasons if r)


class AnalysisMeasurementError(AnalysisFailedError):
    """An analysis could not measure: a check reached its ``error_limit`` (Prometheus unreachable or
    answering errors, a query Prometheus rejects or that returns several series, the API server not
    answering a proxied check). It says nothing about the release; ``data`` holds every check's samples."""
