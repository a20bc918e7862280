# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import (
    AnalysisContext,
    CheckSpec,
    analysis_error,
    parse_checks,
    run_analysis,
    select_checks,
    verdict_summary,
)
from ansible_collections.userservice.deploy.plugins.module_utils.client import ProxyResponse
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    AnalysisMeasurementError,
    ApiUnreachableError,
    InvalidArgumentError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import HttpUnreachable
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import (
    FakeClock,
    FakeHttp,
    FakeKube,
    prom_vector,
)

NO_DATA = prom_vector()
NAN = prom_vector("NaN")


def prom_check(**overrides: Any) -> Dict[str, Any]:
    params = {
        "name": "errors",
        "type": "prometheus",
        "metric": "error_ratio",
        "max": 0.05,
        "interval": 10,
        "samples": 3,
    }
    params.update(overrides)
    return params


def run(
    checks: List[Dict[str, Any]], answers: List[Any], clock: FakeClock, kube: Optional[FakeKube] = None, **kwargs: Any
) -> Dict[str, Any]:
    http = FakeHttp(answers)
    context = AnalysisContext(
        namespace="user-service-prod",
        app="user-service",
        version="1.4.2",
        slot="green",
        prometheus=AnalysisContext.prometheus_from_params({"url": "http://prom:9090"}, http_get=http),
        kube=kube,
        http_get=http,
        clock=clock,
    )
    return run_analysis(parse_checks(checks), context, **kwargs)


def values(result: Dict[str, Any], index: int = 0) -> List[Any]:
    return [s["value"] for s in result["checks"][index]["samples"]]


class TestPrometheusVerdicts:
    def test_all_within_bound_passes_after_all_samples(self, clock: FakeClock) -> None:
        result = run([prom_check()], [(200, prom_vector(0.01))], clock)
        check = result["checks"][0]
        assert result["verdict"] == check["verdict"] == "pass"
        assert len(check["samples"]) == 3
        assert clock.elapsed == 20  # samples at 0, 10, 20
        assert check["bound"] == {"max": 0.05}
        assert 'version="1.4.2"' in check["query"] and "{{" not in check["query"]
        assert [s["time"] for s in check["samples"]] == [
            "2026-01-02T03:04:05.000000Z",
            "2026-01-02T03:04:15.000000Z",
            "2026-01-02T03:04:25.000000Z",
        ]

    def test_first_breach_fails_with_default_failure_limit(self, clock: FakeClock) -> None:
        result = run([prom_check()], [(200, prom_vector(0.01)), (200, prom_vector(0.2))], clock)
        check = result["checks"][0]
        assert check["verdict"] == "fail"
        assert check["value"] == 0.2 and check["failures"] == 1
        assert "0.2 > max 0.05" in check["reason"]
        assert len(check["samples"]) == 2  # stopped at once, no third sample

    def test_failure_limit_tolerates_that_many(self, clock: FakeClock) -> None:
        bad, good = (200, prom_vector(0.2)), (200, prom_vector(0.0))
        result = run([prom_check(failure_limit=1, samples=4)], [bad, good, good, good], clock)
        assert result["verdict"] == "pass"
        assert result["checks"][0]["failures"] == 1
        result = run([prom_check(failure_limit=1, samples=4)], [bad, good, bad, good], FakeClock())
        assert result["verdict"] == "fail"
        assert result["checks"][0]["failures"] == 2

    def test_min_bound(self, clock: FakeClock) -> None:
        result = run(
            [prom_check(max=None, min=10.0, query="sum(rate(x[1m]))", metric=None)], [(200, prom_vector(3))], clock
        )
        assert result["verdict"] == "fail" and "3 < min 10" in result["checks"][0]["reason"]

    @pytest.mark.parametrize("answer", [NO_DATA, NAN], ids=["empty", "nan"])
    def test_no_data_fail_policy(self, clock: FakeClock, answer: Any) -> None:
        result = run([prom_check(on_no_data="fail")], [(200, answer)], clock)
        check = result["checks"][0]
        assert check["verdict"] == "fail"
        assert check["samples"][0]["no_data"] is True and check["samples"][0]["value"] is None
        assert "no data" in check["reason"]

    @pytest.mark.parametrize("answer", [NO_DATA, NAN], ids=["empty", "nan"])
    def test_no_data_pass_policy(self, clock: FakeClock, answer: Any) -> None:
        result = run([prom_check(on_no_data="pass")], [(200, answer)], clock)
        assert result["verdict"] == "pass"
        assert all(s["ok"] is True and s["no_data"] for s in result["checks"][0]["samples"])

    def test_no_data_inconclusive_policy(self, clock: FakeClock) -> None:
        result = run(
            [prom_check(on_no_data="inconclusive")],
            [(200, prom_vector(0.0)), (200, NO_DATA), (200, prom_vector(0.0))],
            clock,
        )
        check = result["checks"][0]
        assert check["verdict"] == result["verdict"] == "inconclusive"
        assert check["failures"] == 0
        assert [s["ok"] for s in check["samples"]] == [True, None, True]
        assert "1 of 3 samples had no data" in check["reason"]

    def test_inconclusive_policy_still_fails_on_breach(self, clock: FakeClock) -> None:
        result = run([prom_check(on_no_data="inconclusive")], [(200, NO_DATA), (200, prom_vector(0.9))], clock)
        assert result["verdict"] == "fail"

    def test_consecutive_success_passes_early(self, clock: FakeClock) -> None:
        good = (200, prom_vector(0.0))
        result = run(
            [prom_check(samples=10, consecutive_success=2, failure_limit=3)],
            [(200, prom_vector(0.5)), good, good],
            clock,
        )
        check = result["checks"][0]
        assert check["verdict"] == "pass" and len(check["samples"]) == 3
        assert "2 consecutive" in check["reason"]

    def test_consecutive_success_not_reached_is_inconclusive(self, clock: FakeClock) -> None:
        good, bad = (200, prom_vector(0.0)), (200, prom_vector(0.5))
        result = run([prom_check(samples=4, consecutive_success=3, failure_limit=5)], [good, bad, good, bad], clock)
        assert result["checks"][0]["verdict"] == "inconclusive"

    def test_value_equal_to_a_bound_is_ok(self, clock: FakeClock) -> None:
        assert run([prom_check(max=0.05)], [(200, prom_vector(0.05))], clock)["verdict"] == "pass"
        check = prom_check(max=None, min=2.0, query="sum(x)", metric=None)
        assert run([check], [(200, prom_vector(2))], FakeClock())["verdict"] == "pass"

    def test_builtin_measures_the_slot_and_the_version(self, clock: FakeClock) -> None:
        result = run([prom_check()], [(200, prom_vector(0.0))], clock)
        query = result["checks"][0]["query"]
        assert 'version="1.4.2",slot="green"' in query and "or vector(0)" in query

    def test_builtin_needs_something_to_scope_it(self, clock: FakeClock) -> None:
        context = AnalysisContext(namespace="ns", app="a", clock=clock)
        with pytest.raises(InvalidArgumentError) as info:
            run_analysis(parse_checks([prom_check()]), context)
        assert info.value.option == "analysis.checks[0].metric"

    def test_builtin_for_a_track(self, clock: FakeClock) -> None:
        http = FakeHttp([(200, prom_vector(0.0))])
        context = AnalysisContext(
            namespace="ns",
            app="a",
            track="canary",
            clock=clock,
            prometheus=AnalysisContext.prometheus_from_params({}, http_get=http),
        )
        result = run_analysis(parse_checks([prom_check(samples=1)]), context)
        assert result["verdict"] == "pass"
        assert 'track="canary"' in result["checks"][0]["query"] and "slot=" not in result["checks"][0]["query"]

    def test_initial_delay_and_interval(self, clock: FakeClock) -> None:
        run([prom_check(initial_delay=30, interval=15)], [(200, prom_vector(0.0))], clock)
        assert clock.elapsed == 60


class TestErrors:
    """A sample that could not be taken is an error, with its own limit; it is never a failed sample."""

    REJECTED = (400, {"status": "error", "errorType": "bad_data", "error": "unexpected end of input"})

    def test_unreachable_prometheus_is_an_error_that_does_not_count_as_a_sample(self, clock: FakeClock) -> None:
        good = (200, prom_vector(0.0))
        result = run([prom_check()], [HttpUnreachable("refused"), good, good, good], clock)
        check = result["checks"][0]
        assert check["verdict"] == "pass"
        assert (check["failures"], check["errors"], check["measured"], len(check["samples"])) == (0, 1, 3, 4)
        first = check["samples"][0]
        assert first["outcome"] == "error" and first["ok"] is None and "refused" in first["error"]

    def test_errors_beyond_error_limit_end_the_check_error(self, clock: FakeClock) -> None:
        result = run([prom_check(samples=5, failure_limit=3)], [HttpUnreachable("refused")], clock)
        check = result["checks"][0]
        assert result["verdict"] == check["verdict"] == "error"
        assert check["errors"] == 5 and check["failures"] == 0 and check["error_limit"] == 4
        assert "5 errors in a row exceed error_limit 4" in check["reason"]
        assert result["decided_by"] == "errors"

    def test_error_limit_zero_ends_on_the_first_error(self, clock: FakeClock) -> None:
        result = run([prom_check(error_limit=0)], [HttpUnreachable("refused")], clock)
        assert result["verdict"] == "error" and len(result["checks"][0]["samples"]) == 1

    def test_a_measured_sample_resets_the_error_count(self, clock: FakeClock) -> None:
        err, good = HttpUnreachable("refused"), (200, prom_vector(0.0))
        result = run([prom_check(error_limit=1)], [err, good, err, good, err, good], clock)
        check = result["checks"][0]
        assert check["verdict"] == "pass" and check["errors"] == 3

    def test_errors_do_not_break_a_run_of_ok_samples(self, clock: FakeClock) -> None:
        good = (200, prom_vector(0.0))
        result = run([prom_check(samples=5, consecutive_success=2)], [good, HttpUnreachable("timeout"), good], clock)
        assert result["verdict"] == "pass" and "2 consecutive ok samples" in result["checks"][0]["reason"]

    def test_rejected_query_is_an_error_not_a_failure(self, clock: FakeClock) -> None:
        result = run([prom_check(samples=5, failure_limit=3, error_limit=1)], [self.REJECTED], clock)
        check = result["checks"][0]
        assert check["verdict"] == "error" and check["failures"] == 0 and check["errors"] == 2
        assert "unexpected end of input" in check["reason"]

    def test_several_series_is_an_error_naming_the_query(self, clock: FakeClock) -> None:
        check = prom_check(metric=None, query="sum by (pod) (up)", error_limit=0)
        result = run([check], [(200, prom_vector(1, 1))], clock)
        assert result["verdict"] == "error"
        assert "query sum by (pod) (up) returned 2 series" in result["checks"][0]["reason"]

    def test_prometheus_http_error_is_an_error(self, clock: FakeClock) -> None:
        result = run([prom_check(error_limit=0)], [(503, b"Service Unavailable")], clock)
        assert result["verdict"] == "error" and "HTTP 503" in result["reason"]

    def test_error_verdict_raises_its_own_error_class(self, clock: FakeClock) -> None:
        result = run([prom_check(error_limit=0)], [HttpUnreachable("refused")], clock)
        for inconclusive_fails in (False, True):
            error = analysis_error(result, "post-promotion", inconclusive_fails=inconclusive_fails)
            assert isinstance(error, AnalysisMeasurementError) and isinstance(error, AnalysisFailedError)
        assert "post-promotion analysis could not measure: check errors" in str(error)
        assert "no verdict on the release" in str(error)
        failed = run([prom_check()], [(200, prom_vector(0.3))], FakeClock())
        failure = analysis_error(failed, "post-promotion")
        assert isinstance(failure, AnalysisFailedError) and not isinstance(failure, AnalysisMeasurementError)

    def test_fail_outranks_error(self, clock: FakeClock) -> None:
        checks = [
            prom_check(name="down", query="down", metric=None, error_limit=0, interval=1),
            prom_check(name="bad", query="bad", metric=None, interval=1),
        ]

        def answer(url: str, headers: Dict[str, str], timeout: float, validate: bool) -> Any:
            if "query=down" in url:
                raise HttpUnreachable("refused")
            return FakeHttp([(200, prom_vector(0.9))])(url, headers, timeout, validate)

        context = AnalysisContext(
            namespace="ns", app="a", clock=clock, prometheus=AnalysisContext.prometheus_from_params({}, answer)
        )
        result = run_analysis(parse_checks(checks), context)
        assert result["verdict"] == "fail" and result["decided_by"] == "bad"
        assert result["counts"] == {"pass": 0, "fail": 1, "error": 1, "inconclusive": 0}


class TestNoDataAndStreaks:
    def test_no_data_counted_as_pass_never_makes_a_streak(self, clock: FakeClock) -> None:
        result = run([prom_check(on_no_data="pass", samples=4, consecutive_success=2)], [(200, NO_DATA)], clock)
        check = result["checks"][0]
        assert check["verdict"] == "inconclusive" and check["no_data"] == 4
        assert "4 had no data" in check["reason"]

    def test_no_data_counted_as_pass_keeps_a_streak(self, clock: FakeClock) -> None:
        good = (200, prom_vector(0.0))
        result = run(
            [prom_check(on_no_data="pass", samples=4, consecutive_success=2)], [good, (200, NO_DATA), good], clock
        )
        assert result["verdict"] == "pass" and len(result["checks"][0]["samples"]) == 3


class TestSeveralChecks:
    def test_failure_stops_the_others_as_inconclusive(self, clock: FakeClock) -> None:
        checks = [
            prom_check(name="slow", interval=100, samples=5),
            prom_check(name="fast", interval=1, samples=5, query="errs", metric=None),
        ]

        def answer(url: str, headers: Dict[str, str], timeout: float, validate: bool) -> Any:
            fast = "query=errs" in url
            value = 0.9 if fast and clock.elapsed >= 2 else 0.0
            return FakeHttp([(200, prom_vector(value))])(url, headers, timeout, validate)

        context = AnalysisContext(
            namespace="ns",
            app="a",
            version="v",
            clock=clock,
            prometheus=AnalysisContext.prometheus_from_params({}, http_get=answer),
        )
        result = run_analysis(parse_checks(checks), context)
        by_name = {c["check"]: c for c in result["checks"]}
        assert by_name["fast"]["verdict"] == "fail"
        assert by_name["slow"]["verdict"] == "inconclusive"
        assert "stopped because check 'fast' failed" in by_name["slow"]["reason"]
        assert result["verdict"] == "fail" and clock.elapsed == 2
        # The stopped check comes first in the list; the result still names the one that failed.
        assert result["decided_by"] == "fast"
        assert analysis_error(result, "pre-promotion").message == "pre-promotion analysis failed: check fast"

    def test_all_pass_decided_by_none(self, clock: FakeClock) -> None:
        result = run([prom_check(name="a"), prom_check(name="b")], [(200, prom_vector(0.0))], clock)
        assert result["verdict"] == "pass" and result["decided_by"] is None
        assert result["counts"]["pass"] == 2

    def test_heartbeat_called_during_long_intervals(self, clock: FakeClock) -> None:
        beats: List[float] = []
        context = AnalysisContext(
            namespace="ns",
            app="a",
            version="v",
            clock=clock,
            heartbeat=lambda: beats.append(clock.monotonic()),
            prometheus=AnalysisContext.prometheus_from_params({}, http_get=FakeHttp([(200, prom_vector(0))])),
        )
        run_analysis(parse_checks([prom_check(interval=60, samples=2)]), context)
        assert len(beats) >= 12  # every 5 s while waiting 60 s

    def test_error_for_result(self, clock: FakeClock) -> None:
        result = run([prom_check()], [(200, prom_vector(0.3))], clock)
        error = analysis_error(result, "pre-promotion")
        assert isinstance(error, AnalysisFailedError)
        assert "check errors within {'max': 0.05}" in str(error) and "value 0.3" in str(error)
        assert error.data["checks"][0]["samples"][0]["value"] == 0.3
        inconclusive = dict(result, verdict="inconclusive")
        assert analysis_error(inconclusive, "x") is None
        assert analysis_error(inconclusive, "x", inconclusive_fails=True) is not None


class TestHttpChecks:
    def test_url_with_json_condition(self, clock: FakeClock) -> None:
        check = {
            "name": "version",
            "type": "http",
            "url": "http://127.0.0.1:8080/api/version",
            "json_path": "version",
            "value": "1.4.2",
            "interval": 1,
            "samples": 2,
        }
        result = run([check], [(200, {"version": "1.4.2"})], clock)
        assert result["verdict"] == "pass"
        assert values(result) == ["1.4.2", "1.4.2"]
        assert result["checks"][0]["query"] == "GET http://127.0.0.1:8080/api/version"

    def test_service_proxy_status_failure(self, clock: FakeClock, kube: FakeKube) -> None:
        kube.proxy = lambda *a: ProxyResponse(500, b"boom password=hunter2")
        check = {
            "name": "smoke",
            "type": "http",
            "service": "user-service-preview",
            "port": "http",
            "path": "/api/users",
            "interval": 1,
        }
        result = run([check], [(200, {})], clock, kube=kube)
        assert result["verdict"] == "fail"
        assert ("service-proxy", "user-service-preview", "http", "/api/users") in kube.calls
        assert "HTTP 500 (no content type, 21 bytes), expected 2xx" in result["checks"][0]["reason"]
        assert "hunter2" not in json.dumps(result)

    def test_pod_proxy_numeric_bound_on_json_field(self, clock: FakeClock, kube: FakeKube) -> None:
        kube.proxy = lambda *a: ProxyResponse(200, json.dumps({"latency": {"p99": 0.7}}).encode())
        check = {
            "name": "lat",
            "type": "http",
            "pod": "p-1",
            "port": "3000",
            "path": "/stats",
            "json_path": "latency.p99",
            "max": 0.5,
            "interval": 1,
        }
        result = run([check], [(200, {})], clock, kube=kube)
        assert result["verdict"] == "fail" and "0.7 > max 0.5" in result["checks"][0]["reason"]

    def test_missing_json_field_is_no_data(self, clock: FakeClock) -> None:
        check = {
            "name": "v",
            "type": "http",
            "url": "http://x/",
            "json_path": "version",
            "value": "1",
            "on_no_data": "inconclusive",
            "interval": 1,
            "samples": 2,
        }
        result = run([check], [(200, {"other": 1})], clock)
        assert result["verdict"] == "inconclusive"

    def test_credentials_in_a_url_are_redacted_everywhere(self, clock: FakeClock) -> None:
        check = {"name": "smoke", "type": "http", "url": "https://ops:hunter2@app.example/api", "interval": 1}
        http = FakeHttp([HttpUnreachable("URLError: cannot reach https://ops:hunter2@app.example/api")])
        context = AnalysisContext(namespace="ns", app="a", version="v", http_get=http, clock=clock)
        result = run_analysis(parse_checks([check]), context)
        assert http.urls == ["https://ops:hunter2@app.example/api"]
        assert result["checks"][0]["query"] == "GET https://***@app.example/api"
        assert result["verdict"] == "fail" and "hunter2" not in json.dumps(result)
        assert "hunter2" not in str(analysis_error(result, "pre-promotion"))

    def test_unanswered_url_is_a_failed_sample(self, clock: FakeClock) -> None:
        check = {"name": "smoke", "type": "http", "url": "http://x/", "interval": 1, "failure_limit": 1}
        result = run([check], [HttpUnreachable("refused"), (200, {})], clock)
        check_result = result["checks"][0]
        assert check_result["verdict"] == "pass" and check_result["failures"] == 1 and check_result["errors"] == 0

    def test_api_server_not_answering_is_an_error(self, clock: FakeClock, kube: FakeKube) -> None:
        def proxy(*args: Any) -> ProxyResponse:
            raise ApiUnreachableError("no answer", seen="read timeout")

        kube.proxy = proxy
        check = {"name": "smoke", "type": "http", "service": "s", "port": "80", "interval": 1, "error_limit": 1}
        result = run([check], [(200, {})], clock, kube=kube)
        assert result["verdict"] == "error" and result["checks"][0]["failures"] == 0
        assert result["checks"][0]["samples"][0]["error"] == "read timeout"

    def test_in_condition(self, clock: FakeClock) -> None:
        check = {
            "name": "v",
            "type": "http",
            "url": "http://x/",
            "json_path": "status",
            "condition": "in",
            "value": ["ok", "degraded"],
            "interval": 1,
            "samples": 1,
        }
        assert run([check], [(200, {"status": "degraded"})], clock)["verdict"] == "pass"


class TestArguments:
    @pytest.mark.parametrize(
        "params, option",
        [
            (prom_check(metric=None), "analysis.checks[0].query"),
            (prom_check(query="up"), "analysis.checks[0].query"),
            (prom_check(max=None), "analysis.checks[0].max"),
            (prom_check(window="1 minute"), "analysis.checks[0].window"),
            (prom_check(quantile=1.5), "analysis.checks[0].quantile"),
            (prom_check(samples=0), "analysis.checks[0].samples"),
            (prom_check(interval=0), "analysis.checks[0].interval"),
            (prom_check(failure_limit=-1), "analysis.checks[0].failure_limit"),
            (prom_check(error_limit=-1), "analysis.checks[0].error_limit"),
            (prom_check(consecutive_success=4), "analysis.checks[0].consecutive_success"),
            (prom_check(min=1.0, max=0.5), "analysis.checks[0].min"),
            (prom_check(on_no_data="ignore"), "analysis.checks[0].on_no_data"),
            (prom_check(url="http://x"), "analysis.checks[0].url"),
            ({"name": "h", "type": "http"}, "analysis.checks[0].url"),
            ({"name": "h", "type": "http", "url": "ftp://x"}, "analysis.checks[0].url"),
            ({"name": "h", "type": "http", "service": "s"}, "analysis.checks[0].port"),
            ({"name": "h", "type": "http", "url": "http://x", "max": 1.0}, "analysis.checks[0].json_path"),
            ({"name": "h", "type": "http", "url": "http://x", "json_path": "a"}, "analysis.checks[0].value"),
            (
                {"name": "h", "type": "http", "url": "http://x", "expected_status": [700]},
                "analysis.checks[0].expected_status",
            ),
        ],
    )
    def test_bad_check_names_the_option(self, params: Dict[str, Any], option: str) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            CheckSpec(params, 0)
        assert info.value.option == option

    def test_duplicate_names(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            parse_checks([prom_check(), prom_check()])
        assert info.value.option == "analysis.checks[1].name"

    def test_select_unknown_name(self) -> None:
        checks = parse_checks([prom_check()])
        assert select_checks(checks, ["errors"], "pre_promotion_analysis")[0].name == "errors"
        with pytest.raises(InvalidArgumentError) as info:
            select_checks(checks, ["latency"], "pre_promotion_analysis")
        assert info.value.option == "pre_promotion_analysis" and "errors" in str(info.value)

    def test_engine_variables_cannot_be_overridden(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            AnalysisContext(namespace="ns", app="a", variables={"version": "evil"})
        assert info.value.option == "analysis.variables.version"

    def test_user_variable_in_query(self, clock: FakeClock) -> None:
        http = FakeHttp([(200, prom_vector(0.0))])
        context = AnalysisContext(
            namespace="ns",
            app="a",
            version="v",
            variables={"route": "/api/users"},
            clock=clock,
            prometheus=AnalysisContext.prometheus_from_params({}, http_get=http),
        )
        check = prom_check(metric=None, query='sum(rate(x{route="${route}"}[1m]))', samples=1)
        result = run_analysis(parse_checks([check]), context)
        assert result["checks"][0]["query"] == 'sum(rate(x{route="/api/users"}[1m]))'

    def test_prometheus_url_validated(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            AnalysisContext.prometheus_from_params({"url": "prom:9090"})
        assert info.value.option == "analysis.prometheus.url"


# ---------------------------------------------------------------------------
# Comparative checks: the canary track against the baseline track, Mann-Whitney U
# ---------------------------------------------------------------------------


class TrackAnswers:
    """Prometheus answers by track: each query's ``track="..."`` picks the series; records the query times."""

    def __init__(self, canary: List[Any], stable: List[Any]) -> None:
        self.series = {"canary": list(canary), "stable": list(stable)}
        self.times: List[Any] = []
        self.queries: List[str] = []

    def __call__(self, url: str, headers: Dict[str, str], timeout: float, validate: bool) -> Any:
        query = parse_qs(urlsplit(url).query)
        promql = query["query"][0]
        self.queries.append(promql)
        self.times.append(query.get("time", [None])[0])
        track = "canary" if 'track="canary"' in promql else "stable"
        values = self.series[track]
        value = values.pop(0) if len(values) > 1 else values[0]
        if isinstance(value, BaseException):
            raise value
        if value is None:
            return FakeHttp([(200, NO_DATA)])(url, headers, timeout, validate)
        return FakeHttp([(200, prom_vector(value))])(url, headers, timeout, validate)


def compare_check(**overrides: Any) -> Dict[str, Any]:
    params = {"name": "errors-vs-stable", "type": "compare", "metric": "error_ratio", "interval": 60, "samples": 5}
    params.update(overrides)
    return params


def run_compare(
    check: Dict[str, Any], answers: TrackAnswers, clock: FakeClock, track: Optional[str] = "canary"
) -> Dict[str, Any]:
    context = AnalysisContext(
        namespace="user-service-prod",
        app="user-service",
        version="1.5.0",
        track=track,
        clock=clock,
        prometheus=AnalysisContext.prometheus_from_params({}, http_get=answers),
    )
    return run_analysis(parse_checks([check]), context)


CANARY_BAD = [0.031, 0.042, 0.027, 0.055, 0.039]
STABLE_OK = [0.012, 0.020, 0.025, 0.018, 0.030]


class TestCompareChecks:
    def test_canary_clearly_worse_fails_with_the_test_in_the_result(self, clock: FakeClock) -> None:
        answers = TrackAnswers(CANARY_BAD, STABLE_OK)
        result = run_compare(compare_check(), answers, clock)
        check = result["checks"][0]
        assert result["verdict"] == check["verdict"] == "fail" and result["decided_by"] == "errors-vs-stable"
        comparison = check["comparison"]
        # scipy.stats.mannwhitneyu(CANARY_BAD, STABLE_OK, alternative="greater", method="exact")
        assert comparison["u"] == 24.0 and comparison["method"] == "exact"
        assert comparison["p_value"] == pytest.approx(0.007936507936507936)
        assert comparison["canary"] == CANARY_BAD and comparison["baseline"] == STABLE_OK
        assert comparison["canary_median"] == 0.039 and comparison["baseline_median"] == 0.020
        assert comparison["difference"] == pytest.approx(0.019)
        assert check["value"] == 0.039
        assert check["bound"] == {
            "baseline_track": "stable",
            "direction": "higher_is_worse",
            "alpha": 0.05,
            "baseline_median": 0.020,
        }
        assert "canary is higher than stable (p 0.007937 < alpha 0.05)" in check["reason"]
        assert 'track="canary"' in check["query"] and 'track="stable"' in check["baseline_query"]
        assert "version=" not in check["query"] and "version=" not in check["baseline_query"]
        error = analysis_error(result, "step 1")
        assert isinstance(error, AnalysisFailedError) and "p 0.007937" in str(error)
        assert verdict_summary(result)["p_value"] == pytest.approx(0.007936507936507936)

    def test_both_series_are_read_at_the_same_instant(self, clock: FakeClock) -> None:
        answers = TrackAnswers(CANARY_BAD, STABLE_OK)
        run_compare(compare_check(), answers, clock)
        assert len(answers.times) == 10
        pairs = list(zip(answers.times[::2], answers.times[1::2]))
        assert all(a == b and a is not None for a, b in pairs)
        assert [float(a) - float(pairs[0][0]) for a, _b in pairs] == [0.0, 60.0, 120.0, 180.0, 240.0]

    def test_similar_tracks_pass_with_the_p_value(self, clock: FakeClock) -> None:
        # Overlapping series: the canary is no worse in any way the test can tell.
        answers = TrackAnswers([0.012, 0.034, 0.022, 0.051, 0.007], [0.019, 0.025, 0.004, 0.030, 0.011])
        result = run_compare(compare_check(), answers, clock)
        check = result["checks"][0]
        assert result["verdict"] == "pass" and check["comparison"]["p_value"] > 0.05
        assert "no evidence that canary is higher than stable" in check["reason"]

    def test_lower_is_worse(self, clock: FakeClock) -> None:
        throughput = TrackAnswers([80, 82, 79, 85, 81], [100, 98, 103, 99, 101])
        result = run_compare(
            compare_check(metric=None, query='sum(rate(x{track="${track}"}[1m]))', direction="lower_is_worse"),
            throughput,
            clock,
        )
        check = result["checks"][0]
        assert check["verdict"] == "fail" and check["comparison"]["p_value"] == pytest.approx(1 / 252)
        assert check["comparison"]["difference"] == 19 and "canary is lower than stable" in check["reason"]
        # The same numbers, the other way round: higher is no worse when lower is worse.
        higher = TrackAnswers([100, 98, 103, 99, 101], [80, 82, 79, 85, 81])
        query = 'sum(rate(x{track="${track}"}[1m]))'
        assert (
            run_compare(compare_check(metric=None, query=query, direction="lower_is_worse"), higher, FakeClock())[
                "verdict"
            ]
            == "pass"
        )

    @pytest.mark.parametrize(
        "min_difference, verdict", [(0.25, "fail"), (0.3125, "pass"), (0.5, "pass")], ids=["below", "equal", "above"]
    )
    def test_min_difference(self, clock: FakeClock, min_difference: float, verdict: str) -> None:
        # Binary fractions, so the difference of the medians (0.625 - 0.3125) is exact.
        canary = [0.5, 0.75, 0.625, 1.0, 0.5625]
        stable = [0.25, 0.375, 0.3125, 0.4375, 0.125]
        result = run_compare(compare_check(min_difference=min_difference), TrackAnswers(canary, stable), clock)
        check = result["checks"][0]
        assert check["comparison"]["difference"] == 0.3125 and check["comparison"]["p_value"] == pytest.approx(1 / 252)
        # A difference equal to min_difference passes, like a value equal to a bound.
        assert check["verdict"] == verdict
        if verdict == "pass":
            assert "not more than min_difference %g" % min_difference in check["reason"]
        else:
            assert "by 0.3125 > min_difference 0.25" in check["reason"]

    def test_custom_track_and_baseline(self, clock: FakeClock) -> None:
        answers = TrackAnswers(CANARY_BAD, STABLE_OK)
        query = 'sum(rate(errors{track="${track}"}[${window}])) / sum(rate(requests{track="${track}"}[${window}]))'
        check = compare_check(metric=None, query=query, baseline_track="primary", window="2m")
        result = run_compare(check, answers, clock, track=None)
        first = result["checks"][0]
        assert 'track="canary"' in first["query"] and 'track="primary"' in first["baseline_query"]
        assert "[2m]" in first["query"]

    def test_baseline_must_differ_from_the_judged_track(self, clock: FakeClock) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            run_compare(compare_check(baseline_track="canary"), TrackAnswers([0.0], [0.0]), clock)
        assert info.value.option == "analysis.checks[0].baseline_track"


class TestCompareNoDataAndErrors:
    def test_no_data_fail_policy_fails_at_once(self, clock: FakeClock) -> None:
        answers = TrackAnswers([None], STABLE_OK)
        result = run_compare(compare_check(on_no_data="fail"), answers, clock)
        check = result["checks"][0]
        assert check["verdict"] == "fail" and len(check["samples"]) == 1
        assert "no data for track canary" in check["reason"]
        assert check["comparison"]["p_value"] is None

    def test_no_data_pass_policy_passes_without_a_test(self, clock: FakeClock) -> None:
        result = run_compare(compare_check(on_no_data="pass"), TrackAnswers([None], [None]), clock)
        check = result["checks"][0]
        assert check["verdict"] == "pass" and check["no_data"] == 5
        assert "0 samples had data in both series: too few for the test" in check["reason"]
        assert "on_no_data: pass" in check["reason"]

    def test_no_data_inconclusive_policy(self, clock: FakeClock) -> None:
        result = run_compare(compare_check(on_no_data="inconclusive"), TrackAnswers([None], [0.01]), clock)
        assert result["checks"][0]["verdict"] == "inconclusive"

    def test_some_no_data_inconclusive_still_fails_a_clearly_worse_canary(self, clock: FakeClock) -> None:
        canary = [0.031, None, 0.042, 0.027, 0.055, 0.039]
        stable = [0.012, 0.011, 0.020, 0.025, 0.018, 0.030]
        # One no-data sample counts neither way: the five with data decide, and fail outranks inconclusive.
        check = compare_check(on_no_data="inconclusive", samples=6)
        result = run_compare(check, TrackAnswers(canary, stable), clock)
        assert result["checks"][0]["verdict"] == "fail"
        assert result["checks"][0]["comparison"]["canary"] == [0.031, 0.042, 0.027, 0.055, 0.039]

    def test_some_no_data_inconclusive_with_no_difference(self, clock: FakeClock) -> None:
        canary = [0.01, None, 0.02, 0.01, 0.02, 0.01]
        stable = [0.02, 0.01, 0.01, 0.02, 0.01, 0.02]
        result = run_compare(compare_check(on_no_data="inconclusive", samples=6), TrackAnswers(canary, stable), clock)
        check = result["checks"][0]
        assert check["verdict"] == "inconclusive" and "1 of 6 samples had no data" in check["reason"]

    def test_too_few_samples_with_data_is_inconclusive(self, clock: FakeClock) -> None:
        canary = [0.05, None, None, 0.06, 0.07]
        result = run_compare(compare_check(on_no_data="pass", failure_limit=0), TrackAnswers(canary, STABLE_OK), clock)
        assert "3 samples had data in both series" in result["checks"][0]["reason"]
        assert result["checks"][0]["verdict"] == "pass"
        result = run_compare(
            compare_check(on_no_data="fail", failure_limit=2), TrackAnswers(canary, STABLE_OK), FakeClock()
        )
        assert result["checks"][0]["verdict"] == "inconclusive"

    def test_prometheus_errors_do_not_count_as_samples(self, clock: FakeClock) -> None:
        canary = [HttpUnreachable("refused")] + CANARY_BAD
        result = run_compare(compare_check(), TrackAnswers(canary, STABLE_OK), clock)
        check = result["checks"][0]
        assert check["verdict"] == "fail" and check["errors"] == 1 and check["measured"] == 5

    def test_errors_beyond_the_limit_end_in_error(self, clock: FakeClock) -> None:
        result = run_compare(compare_check(error_limit=0), TrackAnswers(STABLE_OK, [HttpUnreachable("refused")]), clock)
        assert result["verdict"] == "error"


class TestNewOptions:
    @pytest.mark.parametrize(
        "params, option, says",
        [
            (compare_check(metric=None, query="sum(rate(x[1m]))"), "analysis.checks[0].query", "${track}"),
            (compare_check(metric=None), "analysis.checks[0].query", "exactly one"),
            (compare_check(samples=3), "analysis.checks[0].samples", "at least 4 samples for alpha 0.05"),
            (compare_check(samples=4, alpha=0.01), "analysis.checks[0].samples", "at least 5 samples for alpha 0.01"),
            (compare_check(alpha=0.0), "analysis.checks[0].alpha", "between 0 and 1"),
            (compare_check(alpha=1.0), "analysis.checks[0].alpha", "between 0 and 1"),
            (compare_check(min_difference=-0.1), "analysis.checks[0].min_difference", ">= 0"),
            (compare_check(max=0.05), "analysis.checks[0].max", "no max on a compare check"),
            (compare_check(consecutive_success=2), "analysis.checks[0].consecutive_success", "no consecutive_success"),
            (compare_check(direction="up"), "analysis.checks[0].direction", "higher_is_worse"),
            (compare_check(baseline_track=""), "analysis.checks[0].baseline_track", "track label"),
            (compare_check(window="5 minutes"), "analysis.checks[0].window", "duration"),
            (compare_check(url="http://x"), "analysis.checks[0].url", "no url"),
            (prom_check(min_difference=0.01), "analysis.checks[0].min_difference", "only type compare"),
            ({"name": "x", "type": "datadog"}, "analysis.checks[0].type", "compare | http | job | prometheus"),
        ],
    )
    def test_bad_option_names_it_with_expected_and_seen(self, params: Dict[str, Any], option: str, says: str) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            CheckSpec(params, 0)
        assert info.value.option == option
        assert says in str(info.value) and "saw " in str(info.value)

    def test_enough_samples_are_accepted(self) -> None:
        assert CheckSpec(compare_check(samples=4), 0).samples == 4
        assert CheckSpec(compare_check(samples=10, alpha=0.01, min_difference=0.0), 0).alpha == 0.01

    def test_run_id_defaults_and_is_kept(self) -> None:
        assert len(AnalysisContext(namespace="n", app="a").run_id) == 8
        assert AnalysisContext(namespace="n", app="a", run_id="abc").run_id == "abc"

    def test_verdict_summary_of_a_pass_is_small(self, clock: FakeClock) -> None:
        result = run([prom_check()], [(200, prom_vector(0.01))], clock)
        assert verdict_summary(result) == {
            "verdict": "pass",
            "reason": "1 checks passed",
            "decided_by": None,
            "counts": {"pass": 1, "fail": 0, "error": 0, "inconclusive": 0},
        }
