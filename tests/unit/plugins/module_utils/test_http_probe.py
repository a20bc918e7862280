# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import io
import json
import socket
from email.message import Message
from typing import Any, Dict
from urllib.error import HTTPError, URLError

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils import http_probe
from ansible_collections.userservice.deploy.plugins.module_utils.client import ProxyResponse
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import (
    Expectation,
    HttpTarget,
    HttpUnreachable,
    describe_answer,
    judge_answer,
    redact_secrets,
    redact_text,
    redact_url,
    send_probe,
    urllib_get,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock, FakeKube


class TestSecretsInFreeText:
    """Check Job logs and argv go into results: whatever looks like a credential is masked."""

    @pytest.mark.parametrize(
        "line, shown",
        [
            ("curl https://ops:hunter2@api.internal/x", "curl https://***@api.internal/x"),
            ("postgres://app:pw@db:5432/users", "postgres://***@db:5432/users"),
            ("Authorization: Bearer abc.DEF-123_x", "Authorization: ***"),
            ("authorization=Basic b3BzOmh1bnRlcjI=", "authorization=***"),
            ('{"Authorization": "Token zzz"}', '{"Authorization": "***"}'),
            ("sent bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "sent bearer ***"),
            ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end", "token *** end"),
            ("password=hunter2&user=ops", "password=***&user=ops"),
            ('{"api_key": "k-123", "n": 1}', '{"api_key": "***", "n": 1}'),
            ("CLIENT_SECRET: abc; next", "CLIENT_SECRET: ***; next"),
            ("GET http://user-service:8080/health -> 200", "GET http://user-service:8080/health -> 200"),
            ("the token was rotated", "the token was rotated"),
        ],
    )
    def test_masked(self, line: str, shown: str) -> None:
        assert redact_secrets(line) == shown


class TestRedaction:
    @pytest.mark.parametrize(
        "url, shown",
        [
            ("https://user:pw@host:8443/p?q=1", "https://***@host:8443/p?q=1"),
            ("https://token@host/", "https://***@host/"),
            ("http://host/a@b", "http://host/a@b"),
            ("http://host:80/", "http://host:80/"),
        ],
    )
    def test_userinfo_is_replaced(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown

    def test_text_loses_userinfo_and_password(self) -> None:
        url = "https://ops:hunter2@host/x"
        text = "cannot reach https://ops:hunter2@host/x (auth ops:hunter2, password hunter2)"
        assert redact_text(text, url) == "cannot reach https://***@host/x (auth ***, password ***)"
        assert redact_text("plain", "http://host/") == "plain"


def response(status: int, body: bytes, content_type: str) -> Any:
    headers = Message()
    headers["Content-Type"] = content_type
    answer = io.BytesIO(body)
    answer.getcode = lambda: status  # type: ignore[attr-defined]
    answer.headers = headers  # type: ignore[attr-defined]
    return answer


class TestUrllibGet:
    """urllib_get at ansible's open_url, the real HTTP boundary."""

    def test_answer_with_content_type(self, monkeypatch: pytest.MonkeyPatch) -> None:
        seen: Dict[str, Any] = {}

        def open_url(url: str, **kwargs: Any) -> Any:
            seen.update(kwargs, url=url)
            return response(200, b'{"a": 1}', "application/json; charset=utf-8")

        monkeypatch.setattr(http_probe, "open_url", open_url)
        answer = urllib_get("https://h/x", {"Accept": "*/*"}, 3.0, False)
        assert (answer.status, answer.body, answer.content_type) == (
            200,
            b'{"a": 1}',
            "application/json; charset=utf-8",
        )
        assert seen["timeout"] == 3.0 and seen["validate_certs"] is False and seen["method"] == "GET"

    def test_http_error_is_an_answer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        headers = Message()
        headers["Content-Type"] = "text/plain"

        def open_url(url: str, **kwargs: Any) -> Any:
            raise HTTPError(url, 503, "unavailable", headers, io.BytesIO(b"down"))

        monkeypatch.setattr(http_probe, "open_url", open_url)
        answer = urllib_get("http://h/", {}, 1.0, True)
        assert (answer.status, answer.body, answer.content_type) == (503, b"down", "text/plain")

    @pytest.mark.parametrize(
        "error",
        [URLError("refused by https://ops:hunter2@h/"), socket.timeout("timed out"), ConnectionResetError("reset")],
    )
    def test_no_answer_is_unreachable_without_credentials(
        self, monkeypatch: pytest.MonkeyPatch, error: Exception
    ) -> None:
        def open_url(url: str, **kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(http_probe, "open_url", open_url)
        with pytest.raises(HttpUnreachable) as info:
            urllib_get("https://ops:hunter2@h/", {}, 1.0, True)
        assert "hunter2" not in str(info.value)


class TestSendProbe:
    def test_url_latency_is_measured(self) -> None:
        clock = FakeClock()

        def http_get(url: str, headers: Dict[str, str], timeout: float, validate: bool) -> Any:
            clock.advance(0.25)
            return http_probe.HttpResponse(204, b"", "")

        answer = send_probe(HttpTarget(url="http://h/"), 2.0, clock, http_get=http_get)
        assert (answer.status, answer.latency) == (204, 0.25)

    def test_service_and_pod_go_through_the_proxy(self) -> None:
        kube = FakeKube()
        kube.proxy = lambda *a: ProxyResponse(200, b"{}")
        service = HttpTarget(service="user-service", namespace="ns", port=80, path="/api")
        pod = HttpTarget(pod="p-1", namespace="ns", port="3000", path="/health")
        send_probe(service, 2.0, FakeClock(), kube=kube)
        send_probe(pod, 2.0, FakeClock(), kube=kube)
        assert kube.calls == [("service-proxy", "user-service", "80", "/api"), ("proxy", "p-1", "3000", "/health")]
        assert service.describe() == "GET service ns/user-service:80/api"
        assert pod.describe() == "GET pod ns/p-1:3000/health"


class TestJudge:
    def test_answer_is_described_without_its_body(self) -> None:
        assert describe_answer(500, b"secret", "text/html; charset=utf-8") == "HTTP 500 (text/html, 6 bytes)"
        judged = judge_answer(Expectation(), 500, b"token=abc", "text/plain")
        assert judged == {
            "status": 500,
            "ok": False,
            "value": 500,
            "reason": "HTTP 500 (text/plain, 9 bytes), expected 2xx",
        }

    def test_expected_status_replaces_2xx(self) -> None:
        assert judge_answer(Expectation(expected_status=[503]), 503, b"")["ok"] is True
        assert judge_answer(Expectation(expected_status=[204]), 200, b"")["ok"] is False

    def test_json_condition_and_no_data(self) -> None:
        expect = Expectation(json_path="status", value="ok")
        assert judge_answer(expect, 200, b'{"status": "ok"}')["ok"] is True
        bad = judge_answer(expect, 200, b'{"status": "down"}')
        assert bad["ok"] is False and bad["value"] == "down" and "'down' == 'ok' is false" in bad["reason"]
        for body in (b"{}", b'{"status": null}'):
            missing = judge_answer(expect, 200, body)
            assert missing["ok"] is None and missing["no_data"] is True
        assert "body is not JSON" in judge_answer(expect, 200, b"<html>")["reason"]

    def test_numeric_bounds_are_inclusive(self) -> None:
        expect = Expectation(json_path="p99", maximum=0.5)
        assert judge_answer(expect, 200, b'{"p99": 0.5}')["ok"] is True
        assert judge_answer(expect, 200, b'{"p99": 0.51}')["reason"] == "p99: 0.51 > max 0.5"
        assert judge_answer(expect, 200, b'{"p99": "fast"}')["reason"] == "p99 is not a number"
        assert judge_answer(expect, 200, b'{"p99": NaN}')["no_data"] is True

    def test_latency_and_body_regex(self) -> None:
        slow = judge_answer(Expectation(max_latency=0.1), 200, b"", "", 0.3)
        assert slow["ok"] is False and "more than max_latency 0.1s" in slow["reason"] and slow["latency"] == 0.3
        assert judge_answer(Expectation(body_regex="^pong$"), 200, b"pong")["ok"] is True
        assert judge_answer(Expectation(body_regex="^pong$"), 200, b"ping")["reason"].endswith(
            "body does not match '^pong$'"
        )

    def test_expectation_describes_itself(self) -> None:
        expect = Expectation(expected_status=[200], json_path="a", value=1, maximum=2.0, max_latency=0.5)
        assert expect.describe() == {
            "expected_status": [200],
            "json_path": "a",
            "condition": "==",
            "value": 1,
            "max": 2.0,
            "max_latency": 0.5,
        }
        assert json.dumps(Expectation().describe()) == '{"expected_status": "2xx"}'
