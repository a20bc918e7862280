# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A wait that ends on a watched change: the transport's first event, the client's fallbacks, the poll's wake.

The transport is tested against a real HTTP server on loopback that streams a watch the way the API server
does (chunked, one JSON event per line); the client and the poll loop at the transport boundary.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import urllib3

from ansible_collections.userservice.deploy.plugins.module_utils.client import HttpTransport, KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ApiUnreachableError
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, poll, wait_for_rollout
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock

EVENT = {"type": "MODIFIED", "object": {"kind": "Deployment", "metadata": {"name": "web", "resourceVersion": "8"}}}


class WatchHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # What the next watch does: ("event", delay) streams one event after delay; ("silent", 0) sends headers and
    # nothing else; ("status", code) answers a plain error.
    script: List[Tuple[str, float]] = []
    seen: List[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        type(self).seen.append(self.path)
        if "watch=1" not in self.path:
            body = json.dumps({"kind": "Deployment", "metadata": {"resourceVersion": "7"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        what, value = type(self).script.pop(0) if type(self).script else ("silent", 0)
        if what == "status":
            body = b'{"kind":"Status","code":%d}' % int(value)
            self.send_response(int(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if what == "event":
            time.sleep(value)
            line = json.dumps(EVENT).encode() + b"\n"
            # Split over two chunks: the reader must join them into one line.
            for part in (line[:20], line[20:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
        time.sleep(3)  # the stream stays open, as a watch does until its timeoutSeconds


@pytest.fixture()
def server() -> Iterator[str]:
    WatchHandler.script, WatchHandler.seen = [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WatchHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def transport(host: str) -> HttpTransport:
    return HttpTransport(host, urllib3.PoolManager(maxsize=2), {})


def test_the_first_event_ends_the_watch_and_the_pool_keeps_working(server: str) -> None:
    WatchHandler.script = [("event", 0.2)]
    http = transport(server)
    started = time.monotonic()
    status, line = http.first_event("/apis/apps/v1/namespaces/ns/deployments", {"watch": "1"}, 2.0)
    assert time.monotonic() - started < 1.0
    assert status == 200 and json.loads(line) == EVENT
    # The half-read stream was not handed back to the pool as a live connection: the next request is answered.
    assert http.request("GET", "/apis/apps/v1/namespaces/ns/deployments/web").json()["metadata"] == {
        "resourceVersion": "7"
    }


def test_a_silent_watch_returns_nothing_after_its_seconds_not_later(server: str) -> None:
    WatchHandler.script = [("silent", 0)]
    started = time.monotonic()
    status, line = transport(server).first_event("/apis/apps/v1/namespaces/ns/deployments", {"watch": "1"}, 0.4)
    waited = time.monotonic() - started
    assert (status, line) == (200, b"")
    assert 0.3 < waited < 1.0


def test_an_unreachable_api_server_is_reported_as_such() -> None:
    with pytest.raises(ApiUnreachableError):
        transport("http://127.0.0.1:9").first_event("/x", {"watch": "1"}, 0.5)


class WatchTransport:
    """The transport boundary for KubeClient.wait_for_change: scripted first events."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: List[Dict[str, Any]] = []

    def first_event(self, path: str, query: Dict[str, Any], seconds: float) -> Tuple[int, bytes]:
        self.calls.append(dict(path=path, query=query, seconds=seconds))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_with(*answers: Any) -> Tuple[KubeClient, WatchTransport, FakeClock]:
    http, time_ = WatchTransport(*answers), FakeClock()
    return KubeClient(http, sleep=time_.sleep, monotonic=time_.monotonic), http, time_


def test_a_change_wakes_the_wait_at_once() -> None:
    client, http, time_ = client_with((200, json.dumps(EVENT).encode()))
    assert client.wait_for_change("Deployment", "ns", "web", "7", 2.0) is True
    assert time_.sleeps == []
    query = http.calls[0]["query"]
    assert query["fieldSelector"] == "metadata.name=web" and query["resourceVersion"] == "7"
    assert http.calls[0]["path"] == "/apis/apps/v1/namespaces/ns/deployments"


@pytest.mark.parametrize(
    "answer",
    [
        (200, b""),
        (200, json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410}}).encode()),
        (200, b"not json"),
        ApiUnreachableError("no answer"),
        (500, b""),
    ],
    ids=["no-event", "expired-version-410", "garbage", "unreachable", "server-error"],
)
def test_anything_but_a_change_sleeps_out_the_rest_and_says_no(answer: Any) -> None:
    client, http, time_ = client_with(answer, answer)
    assert client.wait_for_change("Deployment", "ns", "web", "7", 1.5) is False
    assert time_.sleeps == [1.5]
    assert client.wait_for_change("Deployment", "ns", "web", "7", 1.5) is False
    assert len(http.calls) == 2, "a transient failure does not stop the next wait from watching"


def test_a_refused_watch_is_not_asked_again_in_the_run() -> None:
    client, http, time_ = client_with((403, b'{"kind":"Status"}'))
    assert client.wait_for_change("Deployment", "ns", "web", "7", 0.5) is False
    assert client.wait_for_change("Deployment", "ns", "web", "7", 0.5) is False
    assert len(http.calls) == 1 and time_.sleeps == [0.5, 0.5]


def test_without_a_resource_version_it_only_sleeps() -> None:
    client, http, time_ = client_with()
    assert client.wait_for_change("Deployment", "ns", "web", "", 0.5) is False
    assert http.calls == [] and time_.sleeps == [0.5]


class CountingClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        raise AssertionError("a wait with a wake does not sleep on its own")


def test_poll_hands_each_pause_to_the_wake_and_looks_again_when_it_fires() -> None:
    clock, asked, steps = CountingClock(), [], []

    def wake(seconds: float) -> bool:
        asked.append(seconds)
        clock.now += 0.01
        return True

    def step() -> Tuple[bool, Any]:
        steps.append(clock.now)
        return len(steps) == 3, "done"

    assert poll(step, timeout=30, interval=10.0, what="x", clock=clock, heartbeat_every=5.0, wake=wake) == "done"
    # Each pause of 10 s would be two heartbeat slices; a wake that fires ends the pause after the first.
    assert asked == [5.0, 5.0] and len(steps) == 3


class RolloutClient:
    """A Deployment that completes on its second read, and a watch that reports the write between the reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.watched: List[Tuple[str, float]] = []

    def read_deployment(self, namespace: str, name: str) -> Dict[str, Any]:
        self.reads += 1
        ready = 2 if self.reads > 1 else 0
        return {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "generation": 2,
                "resourceVersion": str(10 + self.reads),
            },
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 2,
                "replicas": 2,
                "updatedReplicas": 2,
                "readyReplicas": ready,
                "availableReplicas": ready,
            },
        }

    def list_replica_sets(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        return []

    def wait_for_change(self, kind: str, namespace: str, name: str, version: str, seconds: float) -> bool:
        self.watched.append((version, seconds))
        return True


def test_a_rollout_wait_on_real_time_watches_from_the_version_it_read() -> None:
    client = RolloutClient()
    started = time.monotonic()
    wait_for_rollout(client, "ns", "web", timeout=30, interval=5.0, clock=SystemClock())
    assert time.monotonic() - started < 1.0, "the watched change ended the 5 s pause"
    assert client.watched == [("11", 5.0)]


def test_a_rollout_wait_on_a_fake_clock_never_watches() -> None:
    client, clock = RolloutClient(), FakeClock()  # its time does not pass while a watch waits
    wait_for_rollout(client, "ns", "web", timeout=30, interval=1.0, clock=clock)
    assert client.watched == [] and clock.sleeps == [1.0]
