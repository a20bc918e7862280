# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notifications: JSON events to a webhook, retried within a time bound, never in the release's way."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest
import yaml

from ansible_collections.userservice.deploy.plugins.doc_fragments import notify as notify_doc
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.userservice.deploy.plugins.module_utils.notify import (
    EVENTS,
    NOTIFY_ARG_SPEC,
    Notifier,
    display_target,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes_jobs import FakePost, unreachable
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.test_doc_fragments import differences

SECRET_URL = "https://ops:hunter2@hooks.example.com/services/T000/B000/XXXXsecretXXXX?sig=abc123"


def notifier(post: FakePost, clock: FakeClock, **params: Any) -> Notifier:
    values: Dict[str, Any] = {"url": "https://hooks.example.com/release"}
    values.update(params)
    return Notifier.from_params(values, app="user-service", namespace="prod", run_id="3f9c2a1b", post=post, clock=clock)


class TestFakeBoundary:
    def test_event_as_json_with_the_envelope(self, clock: FakeClock) -> None:
        post = FakePost([204])
        n = notifier(post, clock, headers={"Authorization": "Bearer t0k3n"})
        assert n.send("step", {"step": 2, "weight": 25, "verdict": {"verdict": "pass"}}) is None
        (sent,) = post.sent
        assert json.loads(sent["body"]) == {
            "event": "step",
            "app": "user-service",
            "namespace": "prod",
            "time": "2026-01-02T03:04:05.000000Z",
            "run_id": "3f9c2a1b",
            "step": 2,
            "weight": 25,
            "verdict": {"verdict": "pass"},
        }
        assert sent["headers"]["Content-Type"] == "application/json"
        assert sent["headers"]["Authorization"] == "Bearer t0k3n"
        assert sent["timeout"] == 5.0
        assert n.deliveries == [{"event": "step", "delivered": True, "attempts": 1, "status": 204}]

    def test_data_cannot_replace_the_envelope_and_odd_values_are_serialised(self, clock: FakeClock) -> None:
        post = FakePost([200])
        notifier(post, clock).send("failed", {"event": "other", "app": "x", "when": clock.now()})
        body = json.loads(post.sent[0]["body"])
        assert body["event"] == "failed" and body["app"] == "user-service"
        assert body["when"] == "2026-01-02 03:04:05+00:00"

    def test_run_id_from_the_event_when_the_notifier_has_none(self, clock: FakeClock) -> None:
        post = FakePost([200])
        n = Notifier.from_params({"url": "https://h/"}, app="a", namespace="n", post=post, clock=clock)
        n.send("step", {"run_id": "abc123", "step": 1})
        n.send("step", {"step": 2})
        bodies = [json.loads(s["body"]) for s in post.sent]
        assert [b["run_id"] for b in bodies] == ["abc123", None]
        # A notifier that knows its run keeps its own id.
        notifier(post, clock).send("step", {"run_id": "other"})
        assert json.loads(post.sent[-1]["body"])["run_id"] == "3f9c2a1b"

    def test_retries_with_backoff_then_delivers(self, clock: FakeClock) -> None:
        post = FakePost([503, unreachable("timed out"), 200])
        n = notifier(post, clock)
        assert n.send("promoted") is None
        assert len(post.sent) == 3 and clock.sleeps == [0.5, 1.0]
        assert n.deliveries[-1]["attempts"] == 3

    def test_gives_up_with_a_warning_that_hides_the_url(self, clock: FakeClock) -> None:
        post = FakePost([unreachable("URLError: cannot reach %s (user ops:hunter2)" % SECRET_URL)])
        n = notifier(post, clock, url=SECRET_URL, retries=2)
        warning = n.send("aborted", {"step": 1})
        assert warning is not None and len(post.sent) == 3
        assert warning.startswith("notify: event aborted not delivered to https://hooks.example.com after 3 attempts")
        assert warning.endswith("the release went on without it")
        for secret in ("hunter2", "XXXXsecretXXXX", "abc123", "T000", "ops:"):
            assert secret not in warning
            assert secret not in json.dumps(n.deliveries)

    def test_total_time_is_bounded_even_when_every_attempt_times_out(self, clock: FakeClock) -> None:
        post = FakePost([unreachable("timed out")], clock=clock, takes=5.0)
        n = notifier(post, clock, timeout=5, retries=2)
        assert n.send("failed") is not None
        # 3 attempts of 5 s and pauses of 0.5 s and 1 s.
        assert clock.elapsed == pytest.approx(16.5)

    def test_a_dead_webhook_costs_one_attempt_per_event_after_the_first(self, clock: FakeClock) -> None:
        post = FakePost([unreachable("refused")], clock=clock, takes=5.0)
        n = notifier(post, clock, timeout=5, retries=2)
        n.send("step")
        before = clock.elapsed
        assert n.send("step") is not None and "after 1 attempt in" in (n.send("paused") or "")
        assert clock.elapsed - before == pytest.approx(10.0) and len(post.sent) == 5
        post.answers = [200]
        assert n.send("step") is None and not n.degraded
        post.answers = [500]
        n.send("step")
        assert len(post.sent) == 6 + 3  # retries are back once an event got through

    @pytest.mark.parametrize("status, attempts", [(400, 1), (401, 1), (404, 1), (302, 1), (429, 3), (408, 3), (502, 3)])
    def test_which_answers_are_retried(self, clock: FakeClock, status: int, attempts: int) -> None:
        post = FakePost([status])
        warning = notifier(post, clock).send("step")
        assert warning is not None and "HTTP %d" % status in warning and len(post.sent) == attempts

    def test_events_filter_and_disabled_notifier(self, clock: FakeClock) -> None:
        post = FakePost([200])
        n = notifier(post, clock, events=["aborted", "failed"])
        assert n.send("step") is None and n.send("aborted") is None
        assert [json.loads(s["body"])["event"] for s in post.sent] == ["aborted"]
        off = Notifier.from_params(None, app="a", namespace="n", post=post, clock=clock)
        assert not off.enabled and off.send("failed") is None and len(post.sent) == 1

    def test_never_raises(self, clock: FakeClock) -> None:
        def broken(*args: Any) -> int:
            raise RuntimeError("bug in the transport with %s" % SECRET_URL)

        n = Notifier.from_params({"url": SECRET_URL}, app="a", namespace="n", post=broken, clock=clock)
        warning = n.send("failed")
        assert warning is not None and "RuntimeError" in warning and "hunter2" not in warning
        assert "XXXXsecretXXXX" not in warning
        assert "unknown event" in (n.send("exploded") or "")

    def test_display_target(self) -> None:
        assert display_target(SECRET_URL) == "https://hooks.example.com"
        assert display_target("http://[::1]:8080/x") == "http://[::1]:8080"


class TestOptions:
    @pytest.mark.parametrize(
        "params, option",
        [
            ({"url": "hooks.example.com/x"}, "notify.url"),
            ({"url": "ftp://hooks.example.com/x"}, "notify.url"),
            ({"url": "https:///path-only"}, "notify.url"),
            ({"url": "https://h/", "timeout": 0}, "notify.timeout"),
            ({"url": "https://h/", "timeout": 600}, "notify.timeout"),
            ({"url": "https://h/", "retries": -1}, "notify.retries"),
            ({"url": "https://h/", "retries": 50}, "notify.retries"),
            ({"url": "https://h/", "events": ["deployed"]}, "notify.events"),
            ({"url": "https://h/", "events": []}, "notify.events"),
            ({"url": "https://h/", "headers": {"X-Token": 12345}}, "notify.headers.X-Token"),
            ({"url": "https://h/", "headers": {"Bad: name": "x"}}, "notify.headers"),
        ],
    )
    def test_bad_option_names_it(self, params: Dict[str, Any], option: str) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            Notifier.from_params(params, app="a", namespace="n")
        assert info.value.option == option

    def test_secret_values_are_never_shown_in_errors(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            Notifier.from_params({"url": "ftp://ops:hunter2@h/tok"}, app="a", namespace="n")
        assert "hunter2" not in str(info.value) and "tok" not in str(info.value)
        with pytest.raises(InvalidArgumentError) as info:
            Notifier.from_params({"url": "https://h/", "headers": {"X": ["s3cr3t"]}}, app="a", namespace="n")
        assert "s3cr3t" not in str(info.value)

    def test_defaults(self) -> None:
        n = Notifier.from_params({"url": "https://h/"}, app="a", namespace="n")
        assert (n.timeout, n.retries, n.events, n.validate_certs) == (5.0, 2, EVENTS, True)

    def test_fragment_matches_argspec(self) -> None:
        doc = yaml.safe_load(notify_doc.ModuleDocFragment.DOCUMENTATION)["options"]
        assert differences(doc, NOTIFY_ARG_SPEC, "") == []

    def test_secrets_are_no_log(self) -> None:
        options = NOTIFY_ARG_SPEC["notify"]["options"]
        assert options["url"]["no_log"] and options["headers"]["no_log"]


# ---------------------------------------------------------------------------
# A real receiver on 127.0.0.1: the real HTTP client, real timeouts, real retries
# ---------------------------------------------------------------------------


class Receiver:
    """A webhook in a thread that answers ``status``, or hangs (bounded) when ``hang`` is set."""

    def __init__(self, status: int = 204, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.requests: List[Dict[str, Any]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.hang:
                    # Never answers in time; bounded so the thread ends even if the client never gives up.
                    receiver.release.wait(5)
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return "http://hook:s3cr3t@127.0.0.1:%d/hooks/abc-token" % self.server.server_address[1]

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: List[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs).__enter__()
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.__exit__()


def real_notifier(url: str, **params: Any) -> Notifier:
    values: Dict[str, Any] = {"url": url}
    values.update(params)
    n = Notifier.from_params(values, app="user-service", namespace="prod", run_id="r1")
    n.backoff = 0.05  # real sleeps, kept short
    return n


class TestRealReceiver:
    def test_delivered_as_json_with_basic_auth_from_the_url(self, receiver_factory: Any) -> None:
        receiver = receiver_factory(status=204)
        n = real_notifier(receiver.url, headers={"X-Release": "canary"})
        assert n.send("promoted", {"weights": {"stable": 0, "canary": 100}}) is None
        (request,) = receiver.requests
        assert request["path"] == "/hooks/abc-token"
        assert json.loads(request["body"])["weights"] == {"stable": 0, "canary": 100}
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["X-Release"] == "canary"
        assert request["headers"]["Authorization"].startswith("Basic ")

    def test_500_is_retried_then_a_warning(self, receiver_factory: Any) -> None:
        receiver = receiver_factory(status=500)
        n = real_notifier(receiver.url, retries=2, timeout=2)
        started = time.monotonic()
        warning = n.send("failed", {"reason": "analysis failed"})
        assert time.monotonic() - started < 2
        assert len(receiver.requests) == 3
        assert warning is not None and "HTTP 500" in warning and "after 3 attempts" in warning
        assert "s3cr3t" not in warning and "abc-token" not in warning and "127.0.0.1" in warning

    def test_hanging_receiver_times_out_within_the_bound(self, receiver_factory: Any) -> None:
        receiver = receiver_factory(hang=True)
        n = real_notifier(receiver.url, retries=1, timeout=0.3)
        started = time.monotonic()
        warning = n.send("aborted")
        elapsed = time.monotonic() - started
        # Two attempts of 0.3 s and a 0.05 s pause, plus scheduling slack; far from the receiver's 5 s.
        assert elapsed < 1.5
        assert len(receiver.requests) == 2
        assert warning is not None and "no answer" in warning and "s3cr3t" not in warning

    def test_nothing_listening(self, receiver_factory: Any) -> None:
        receiver = receiver_factory()
        url = receiver.url
        receiver.__exit__()
        warning = real_notifier(url, retries=0, timeout=1).send("step")
        assert warning is not None and "no answer" in warning and "after 1 attempt" in warning


def test_events_documented_in_the_order_of_the_code() -> None:
    doc = yaml.safe_load(notify_doc.ModuleDocFragment.DOCUMENTATION)["options"]["notify"]["suboptions"]["events"]
    assert doc["choices"] == EVENTS and doc["default"] == EVENTS
