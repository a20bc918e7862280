# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""http_check through its main(): URLs answered at open_url, Services at the KubeClient's transport."""

from __future__ import annotations

import io
import json
from email.message import Message
from typing import Any, Dict, List, Optional, Tuple
from urllib.error import HTTPError, URLError

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.userservice.deploy.plugins.module_utils import http_check as http_check_utils
from ansible_collections.userservice.deploy.plugins.module_utils import http_probe
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient, Response
from ansible_collections.userservice.deploy.plugins.modules import http_check
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.test_doc_fragments import differences

NS = "user-service-staging"
HEALTHY = (200, {"status": "ok"}, "application/json")
STARTING = (503, {"status": "starting", "db": "postgres://app:hunter2@db"}, "application/json")

Answer = Tuple[int, Any, str]


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


class FakeWeb:
    """Stands in for ansible's open_url: scripted answers per URL, the last one repeats."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.answers: Dict[str, List[Any]] = {}
        self.requests: List[Tuple[str, bool]] = []
        self.latency = 0.0

    def __call__(self, url: str, method: str = "GET", validate_certs: bool = True, **kwargs: Any) -> Any:
        self.requests.append((url, validate_certs))
        self.clock.advance(self.latency)
        queue = self.answers[url]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        status, body, content_type = answer
        headers = Message()
        headers["Content-Type"] = content_type
        if status >= 400:
            raise HTTPError(url, status, "error", headers, io.BytesIO(encode(body)))
        response = io.BytesIO(encode(body))
        response.getcode = lambda: status  # type: ignore[attr-defined]
        response.headers = headers  # type: ignore[attr-defined]
        return response


class FakeApiServer:
    """The KubeClient's transport: relays service-proxy GETs to scripted answers."""

    def __init__(self) -> None:
        self.answers: List[Answer] = [HEALTHY]
        self.paths: List[str] = []
        self.dry_runs: List[bool] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        self.paths.append(path)
        status, body, content_type = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return Response(status, encode(body), content_type)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(http_check_utils, "SystemClock", lambda: fake)
    return fake


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeWeb:
    fake = FakeWeb(clock)
    monkeypatch.setattr(http_probe, "open_url", fake)
    return fake


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApiServer:
    server = FakeApiServer()

    def from_params(cls: Any, params: Dict[str, Any], dry_run: bool = False) -> KubeClient:
        server.dry_runs.append(dry_run)
        return KubeClient(server, dry_run=dry_run)

    monkeypatch.setattr(KubeClient, "from_params", classmethod(from_params))
    return server


def run_module(capsys: pytest.CaptureFixture[str], **args: Any) -> Dict[str, Any]:
    """The module's result, with its exit code as ``rc`` and everything it printed as ``stdout``."""
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        http_check.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    result["rc"] = exit_info.value.code
    result["stdout"] = out
    return result


URL = "https://user-service.staging.example/api/health/status"


class TestUrls:
    def test_consecutive_expected_answers_pass(
        self, web: FakeWeb, clock: FakeClock, capsys: pytest.CaptureFixture[str]
    ) -> None:
        web.answers[URL] = [HEALTHY]
        result = run_module(capsys, url=[URL], json_path="status", value="ok", consecutive=3, interval=2)
        assert result["rc"] == 0 and result["passed"] is True and result["changed"] is False
        target = result["targets"][0]
        assert target["target"] == "GET " + URL
        assert (target["attempts"], target["failures"], target["consecutive_successes"]) == (3, 0, 3)
        assert target["value"] == "ok" and target["status"] == 200
        assert clock.elapsed == 4  # three probes, two intervals
        assert web.requests == [(URL, True)] * 3

    def test_retries_cover_a_slow_start(self, web: FakeWeb, capsys: pytest.CaptureFixture[str]) -> None:
        web.answers[URL] = [STARTING, URLError(ConnectionRefusedError(111, "Connection refused")), HEALTHY]
        result = run_module(capsys, url=[URL], retries=2, consecutive=2)
        target = result["targets"][0]
        assert result["passed"] and target["attempts"] == 4 and target["failures"] == 2
        assert "no answer: URLError" in target["probes"][1]["reason"]
        assert target["probes"][0]["reason"] == "HTTP 503 (application/json, 57 bytes), expected 2xx"

    def test_failure_names_the_target_and_never_leaks_body_or_password(
        self, web: FakeWeb, capsys: pytest.CaptureFixture[str]
    ) -> None:
        url = "https://smoke:s3cr3t-pw@user-service.staging.example/api/users"
        web.answers[url] = [STARTING]
        result = run_module(capsys, url=[url], retries=1)
        assert result["rc"] == 1 and result["passed"] is False
        assert result["msg"].startswith(
            "1 of 1 targets did not pass: GET https://***@user-service.staging.example/api/users failed 2 of 2 probes"
        )
        assert "s3cr3t-pw" not in result["stdout"] and "hunter2" not in result["stdout"]
        assert web.requests[0][0] == url  # the credentials did go to the target

    def test_latency_bound(self, web: FakeWeb, capsys: pytest.CaptureFixture[str]) -> None:
        web.answers[URL] = [HEALTHY]
        web.latency = 0.8
        result = run_module(capsys, url=[URL], max_latency=0.5)
        assert result["rc"] == 1
        assert "in 0.800s, more than max_latency 0.5s" in result["targets"][0]["reason"]
        assert result["targets"][0]["latency"] == 0.8

    def test_body_regex_and_numeric_bounds(self, web: FakeWeb, capsys: pytest.CaptureFixture[str]) -> None:
        web.answers[URL] = [(200, {"status": "ok", "pool": {"free": 3}}, "application/json")]
        passed = run_module(capsys, url=[URL], body_regex='"status": "ok"', json_path="pool.free", min=3)
        assert passed["rc"] == 0 and passed["targets"][0]["value"] == 3.0
        failed = run_module(capsys, url=[URL], json_path="pool.free", min=4)
        assert failed["rc"] == 1 and failed["targets"][0]["reason"] == "pool.free: 3 < min 4"
        missing = run_module(capsys, url=[URL], body_regex="degraded")
        assert missing["rc"] == 1 and "body does not match 'degraded'" in missing["targets"][0]["reason"]

    def test_url_certificate_validation_can_be_turned_off(
        self, web: FakeWeb, capsys: pytest.CaptureFixture[str]
    ) -> None:
        web.answers[URL] = [HEALTHY]
        run_module(capsys, url=[URL], url_validate_certs=False)
        assert web.requests == [(URL, False)]

    def test_every_target_is_decided(self, web: FakeWeb, capsys: pytest.CaptureFixture[str]) -> None:
        good, bad = URL, "http://127.0.0.1:9/"
        web.answers[good] = [HEALTHY]
        web.answers[bad] = [URLError("refused")]
        result = run_module(capsys, url=[bad, good], consecutive=2, retries=3)
        by_target = {t["target"]: t for t in result["targets"]}
        assert by_target["GET " + good]["passed"] and not by_target["GET " + bad]["passed"]
        assert by_target["GET " + bad]["attempts"] == 4
        assert result["msg"].startswith("1 of 2 targets did not pass: GET http://127.0.0.1:9/ failed 4 of 4")


class TestServices:
    def test_probe_goes_through_the_service_proxy(
        self, api: FakeApiServer, clock: FakeClock, capsys: pytest.CaptureFixture[str]
    ) -> None:
        result = run_module(
            capsys, namespace=NS, service=["user-service"], port="http", path="/api/health/status", consecutive=2
        )
        assert result["rc"] == 0 and result["passed"]
        assert api.paths == ["/api/v1/namespaces/%s/services/user-service:http/proxy/api/health/status" % NS] * 2
        assert result["targets"][0]["target"] == "GET service %s/user-service:http/api/health/status" % NS

    def test_check_mode_sends_the_same_probes(self, api: FakeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
        api.answers = [STARTING]
        result = run_module(capsys, namespace=NS, service=["user-service"], port="80", _ansible_check_mode=True)
        assert result["rc"] == 1 and result["changed"] is False and len(api.paths) == 1
        assert api.dry_runs == [True]

    def test_no_endpoints_is_a_failed_probe(self, api: FakeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
        status = {"kind": "Status", "status": "Failure", "message": "no endpoints available", "code": 503}
        api.answers = [(503, status, "application/json"), HEALTHY]
        result = run_module(capsys, namespace=NS, service=["user-service"], port="80", retries=1)
        assert result["rc"] == 0 and result["targets"][0]["failures"] == 1

    def test_forbidden_proxy_names_the_permission(self, api: FakeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
        status = {"kind": "Status", "status": "Failure", "message": "cannot get services/proxy", "code": 403}
        api.answers = [(403, status, "application/json")]
        result = run_module(capsys, namespace=NS, service=["user-service"], port="80")
        assert result["rc"] == 1 and "forbidden to get services/proxy in namespace %s" % NS in result["msg"]

    def test_urls_and_services_together(
        self, api: FakeApiServer, web: FakeWeb, capsys: pytest.CaptureFixture[str]
    ) -> None:
        web.answers[URL] = [HEALTHY]
        result = run_module(
            capsys, url=[URL], namespace=NS, service=["user-service", "user-service-preview"], port="80"
        )
        assert result["passed"] and [t["target"].split(" ")[1] for t in result["targets"]] == [
            URL,
            "service",
            "service",
        ]


class TestArguments:
    @pytest.mark.parametrize(
        "args, option",
        [
            ({}, "url"),
            ({"url": ["ftp://x"]}, "url"),
            ({"service": ["s"], "port": "80"}, "namespace"),
            ({"service": ["s"], "namespace": NS}, "port"),
            ({"url": [URL], "path": "x"}, "path"),
            ({"url": [URL], "value": "ok"}, "json_path"),
            ({"url": [URL], "json_path": "a", "condition": "in", "value": "ok"}, "value"),
            ({"url": [URL], "expected_status": [99]}, "expected_status"),
            ({"url": [URL], "body_regex": "("}, "body_regex"),
            ({"url": [URL], "consecutive": 0}, "consecutive"),
            ({"url": [URL], "retries": -1}, "retries"),
            ({"url": [URL], "interval": 0}, "interval"),
            ({"url": [URL], "max_latency": 0}, "max_latency"),
            ({"url": [URL], "json_path": "a", "min": 2, "max": 1}, "min"),
        ],
    )
    def test_bad_option_is_named(self, args: Dict[str, Any], option: str, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_module(capsys, **args)
        assert result["rc"] == 1 and result["error"]["data"]["option"] == option
        assert "invalid value for option %s" % option in result["msg"]

    def test_bad_url_is_shown_without_its_password(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_module(capsys, url=["ftp://u:pa55word@host/"])
        assert "pa55word" not in result["stdout"] and "ftp://***@host/" in result["msg"]


def test_documentation_matches_the_argspec() -> None:
    documented = yaml.safe_load(http_check.DOCUMENTATION)["options"]
    assert differences(documented, http_check_utils.HTTP_CHECK_OPTIONS, "") == []


def test_examples_use_only_documented_options() -> None:
    documented = set(yaml.safe_load(http_check.DOCUMENTATION)["options"])
    for task in yaml.safe_load(http_check.EXAMPLES):
        args: Optional[Dict[str, Any]] = task.get("userservice.deploy.http_check")
        if args is not None:
            assert set(args) <= documented, task["name"]
