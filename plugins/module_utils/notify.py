# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release events as JSON to an optional webhook, never in the release's way.

A release must not block or fail because a chat bridge or an incident tool is
down. :meth:`Notifier.send` therefore never raises: it retries what may pass
on a second try (no answer, 408, 425, 429, 5xx) with a growing pause, inside a
total time bound, and returns a warning string when the event was not
delivered. After one undelivered event, the next ones are tried once only
(until one is delivered again), so a dead webhook costs a release at most
``timeout`` seconds per event.

Webhook URLs often carry their secret (a token in the path, ``user:password@``),
so a warning names only the scheme and host, and the option is ``no_log``.
Only the configuration is validated with an error (:meth:`Notifier.from_params`),
before the release writes anything.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any, Callable, Dict, List, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import (
    HttpUnreachable,
    open_url,
    redact_secrets,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat

# step: a canary step done; paused: waiting for approval or a timed pause; aborted: traffic back to stable;
# promoted: the new version serves everything; frozen: weights held after a failure (on_failure: freeze);
# failed: the run ended with an error; released: a release live without steps (blue/green's switch, a first
# canary release); rolled_back: blue/green's switch back.
EVENTS = ["step", "paused", "aborted", "promoted", "frozen", "failed", "rolled_back", "released"]
# Keys every payload has; data passed to send() cannot replace them (run_id only when the notifier has none).
ENVELOPE = ("event", "app", "namespace", "time", "run_id")
RETRY_STATUSES = (408, 425, 429)
MAX_RETRIES = 10
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 4.0

NOTIFY_OPTIONS: Dict[str, Dict[str, Any]] = {
    "url": dict(type="str", required=True, no_log=True),
    "timeout": dict(type="float", default=5.0),
    "retries": dict(type="int", default=2),
    "headers": dict(type="dict", default={}, no_log=True),
    "events": dict(type="list", elements="str", default=list(EVENTS), choices=EVENTS),
    "validate_certs": dict(type="bool", default=True),
}

# One source for the notify option; plugins/doc_fragments/notify.py documents it.
NOTIFY_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    "notify": dict(type="dict", options=NOTIFY_OPTIONS),
}

HttpPost = Callable[[str, bytes, Dict[str, str], float, bool], int]


def urllib_post(url: str, body: bytes, headers: Dict[str, str], timeout: float, validate_certs: bool) -> int:
    """POST with ansible's ``open_url`` and return the status; raise HttpUnreachable when nothing answered.

    Redirects are not followed: a webhook that redirects a POST is misconfigured, and following it
    would send the event (and any Authorization header) somewhere else.
    """
    from ansible.module_utils.urls import ConnectionError as UrlsConnectionError  # imported on first use

    try:
        response = open_url(
            url,
            data=body,
            method="POST",
            headers=headers,
            timeout=timeout,
            validate_certs=validate_certs,
            follow_redirects="none",
            # user:password@ in the URL goes out with the first request: a webhook sends no 401 challenge.
            force_basic_auth=True,
        )
        # Read a little so the connection closes cleanly; the body itself is of no interest.
        response.read(4096)
        return response.getcode() or 200
    except HTTPError as exc:
        return exc.code
    except (URLError, socket.timeout, OSError, UrlsConnectionError, http.client.HTTPException, ValueError) as exc:
        raise HttpUnreachable("%s: %s" % (type(exc).__name__, getattr(exc, "reason", exc))) from exc


def display_target(url: str) -> str:
    """``scheme://host[:port]``: all of a webhook URL that is safe to show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = ":%d" % parts.port if parts.port else ""
    except ValueError:
        return "the webhook"
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s%s" % (parts.scheme or "?", host, port)


class Notifier:
    """Sends release events; disabled (every send a no-op) when no URL is configured."""

    def __init__(
        self,
        url: Optional[str],
        *,
        app: str,
        namespace: str,
        run_id: Optional[str] = None,
        timeout: float = 5.0,
        retries: int = 2,
        headers: Optional[Dict[str, str]] = None,
        events: Optional[List[str]] = None,
        validate_certs: bool = True,
        post: Optional[HttpPost] = None,
        clock: Optional[Any] = None,
        backoff: float = FIRST_BACKOFF,
    ) -> None:
        self.url = url
        self.target = display_target(url) if url else None
        self.app = app
        self.namespace = namespace
        self.run_id = run_id
        self.timeout = timeout
        self.retries = retries
        self.headers = dict(headers or {})
        self.events = list(EVENTS if events is None else events)
        self.validate_certs = validate_certs
        self.post = post or urllib_post
        self.clock = clock or SystemClock()
        self.backoff = backoff
        # After an undelivered event the next ones get one attempt each, until one is delivered.
        self.degraded = False
        self.deliveries: List[Dict[str, Any]] = []

    @classmethod
    def from_params(
        cls,
        params: Optional[Dict[str, Any]],
        *,
        app: str,
        namespace: str,
        run_id: Optional[str] = None,
        post: Optional[HttpPost] = None,
        clock: Optional[Any] = None,
    ) -> "Notifier":
        """The notifier for the module's ``notify`` option; raises InvalidArgumentError for a bad one."""
        if not params:
            return cls(None, app=app, namespace=namespace, run_id=run_id, post=post, clock=clock)
        p = {key: spec.get("default") for key, spec in NOTIFY_OPTIONS.items()}
        p.update({k: v for k, v in params.items() if v is not None})
        url = p["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
            raise InvalidArgumentError(
                "notify.url",
                "an http:// or https:// URL with a host",
                display_target(url) if isinstance(url, str) and url else type(url).__name__,
            )
        if not isinstance(p["timeout"], (int, float)) or not 0 < p["timeout"] <= 60:
            raise InvalidArgumentError("notify.timeout", "seconds > 0 and at most 60", p["timeout"])
        if not isinstance(p["retries"], int) or not 0 <= p["retries"] <= MAX_RETRIES:
            raise InvalidArgumentError("notify.retries", "an integer from 0 to %d" % MAX_RETRIES, p["retries"])
        headers = p["headers"] or {}
        if not isinstance(headers, dict):
            raise InvalidArgumentError("notify.headers", "a dict of header name to value", type(headers).__name__)
        for name, value in headers.items():
            if not isinstance(name, str) or not name or any(c in name for c in ":\r\n "):
                raise InvalidArgumentError("notify.headers", "header names without ':', spaces or line breaks", name)
            if not isinstance(value, str) or "\n" in value or "\r" in value:
                # The value is a secret (no_log): say what is wrong with it, never what it is.
                raise InvalidArgumentError(
                    "notify.headers.%s" % name, "a one-line string", "a %s" % type(value).__name__
                )
        events = p["events"]
        if not isinstance(events, list) or not events:
            raise InvalidArgumentError("notify.events", "a non-empty list among %s" % ", ".join(EVENTS), events)
        unknown = [event for event in events if event not in EVENTS]
        if unknown:
            raise InvalidArgumentError("notify.events", "events among %s" % ", ".join(EVENTS), unknown)
        return cls(
            url,
            app=app,
            namespace=namespace,
            run_id=run_id,
            timeout=float(p["timeout"]),
            retries=p["retries"],
            headers=headers,
            events=events,
            validate_certs=bool(p["validate_certs"]),
            post=post,
            clock=clock,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def wants(self, event: str) -> bool:
        return self.enabled and event in self.events

    def payload(self, event: str, data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        body = dict(data or {})
        envelope = {
            "event": event,
            "app": self.app,
            "namespace": self.namespace,
            "time": isoformat(self.clock.now()),
            "run_id": self.run_id,
        }
        # A notifier made before the run had an id takes the one the event carries.
        if envelope["run_id"] is None and body.get("run_id") is not None:
            del envelope["run_id"]
        body.update(envelope)
        body.setdefault("run_id", None)
        return body

    def send(self, event: str, data: Optional[Dict[str, Any]] = None) -> Optional[str]:
        """POST the event; None when it was delivered (or is not wanted), else a warning. Never raises."""
        try:
            return self._send(event, data)
        except Exception as exc:  # a notification must never end a release, whatever went wrong in it
            self.degraded = True
            return self._warning(event, 0, 0.0, "%s: %s" % (type(exc).__name__, exc))

    def _send(self, event: str, data: Optional[Dict[str, Any]]) -> Optional[str]:
        if event not in EVENTS:
            return "notify: unknown event %r not sent (events are %s)" % (event, ", ".join(EVENTS))
        if not self.wants(event) or not self.url:
            return None
        body = json.dumps(self.payload(event, data), default=str, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "userservice.deploy"}
        headers.update(self.headers)
        attempts = 1 if self.degraded else 1 + self.retries
        pauses = [min(MAX_BACKOFF, self.backoff * 2**i) for i in range(attempts - 1)]
        # The whole event, retries and pauses included, ends within this; a slow receiver cannot stretch it.
        budget = self.timeout * attempts + sum(pauses)
        started = self.clock.monotonic()
        tried, last = 0, ""
        for attempt in range(attempts):
            left = budget - (self.clock.monotonic() - started)
            if left <= 0:
                break
            tried += 1
            retry = True
            try:
                status = self.post(self.url, body, headers, min(self.timeout, left), self.validate_certs)
            except HttpUnreachable as exc:
                last = "no answer (%s)" % exc
            else:
                if 200 <= status < 300:
                    self.degraded = False
                    self.deliveries.append({"event": event, "delivered": True, "attempts": tried, "status": status})
                    return None
                last = "HTTP %s" % status
                retry = status in RETRY_STATUSES or status >= 500
            if not retry or attempt == attempts - 1:
                break
            pause = min(pauses[attempt], budget - (self.clock.monotonic() - started))
            if pause <= 0:
                break
            self.clock.sleep(pause)
        self.degraded = True
        elapsed = self.clock.monotonic() - started
        self.deliveries.append({"event": event, "delivered": False, "attempts": tried, "error": self._scrub(last)})
        return self._warning(event, tried, elapsed, last)

    def _scrub(self, text: str) -> str:
        """``text`` without any part of the URL beyond scheme and host (path tokens, user:password)."""
        url = self.url or ""
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        secrets = [url]
        if parts is not None:
            path = parts.path + ("?" + parts.query if parts.query else "")
            userinfo = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
            secrets += [path if len(path) > 1 else "", parts.query, userinfo, parts.password or ""]
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, "***")
        return redact_secrets(text)

    def _warning(self, event: str, attempts: int, elapsed: float, why: str) -> str:
        return (
            "notify: event %s not delivered to %s after %d attempt%s in %.1fs: %s; the release went on without it"
            % (
                event,
                self.target or "the webhook",
                attempts,
                "" if attempts == 1 else "s",
                elapsed,
                self._scrub(why),
            )
        )
