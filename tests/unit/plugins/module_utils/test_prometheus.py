# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidArgumentError,
    PrometheusQueryError,
    PrometheusUnreachableError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import (
    BUILTIN_METRICS,
    NOT_TRAFFIC,
    HttpUnreachable,
    PrometheusClient,
    builtin_query,
    render_query,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeHttp, prom_vector

VARS: Dict[str, Any] = {
    "namespace": "user-service-prod",
    "app": "user-service",
    "version": "1.4.2",
    "window": "1m",
    "quantile": 0.99,
    "slot": "green",
}


class TestRender:
    def test_builtin_error_ratio_selects_version_and_slot(self) -> None:
        query = render_query(builtin_query("error_ratio", ["version", "slot"]), VARS)
        # Probes and scrapes are not traffic: they would dilute the ratio and make "no users" read 0.
        selector = 'namespace="user-service-prod",app="user-service",version="1.4.2",slot="green",' + NOT_TRAFFIC
        assert query == (
            '(sum(rate(http_requests_total{%s,status_code=~"5.."}[1m])) or vector(0))'
            " / sum(rate(http_requests_total{%s}[1m]))" % (selector, selector)
        )

    def test_builtin_error_ratio_for_a_track(self) -> None:
        query = render_query(builtin_query("error_ratio", ["track"]), dict(VARS, track="canary"))
        assert 'track="canary"' in query and "slot=" not in query and "version=" not in query

    def test_builtin_latency_quantile(self) -> None:
        query = render_query(builtin_query("latency_quantile", ["version", "slot"]), VARS)
        assert query == (
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
            '{namespace="user-service-prod",app="user-service",version="1.4.2",slot="green",%s}[1m])))' % NOT_TRAFFIC
        )

    def test_builtins_keep_placeholders(self) -> None:
        for name in BUILTIN_METRICS:
            template = builtin_query(name, ["version", "slot", "track"])
            assert '"${slot}"' in template and '"${track}"' in template and "[${window}]" in template

    def test_whitespace_in_placeholder_is_optional(self) -> None:
        assert render_query('x{slot="${slot}"}', VARS) == 'x{slot="green"}'

    @pytest.mark.parametrize(
        "value, rendered",
        [
            ('1"} or vector(1) #', 'm{version="1\\"} or vector(1) #"}'),
            ("a\\b", 'm{version="a\\\\b"}'),
            ("line\nbreak", 'm{version="line\\nbreak"}'),
        ],
    )
    def test_values_in_double_quotes_are_escaped(self, value: str, rendered: str) -> None:
        assert render_query('m{version="${version}"}', dict(VARS, version=value)) == rendered

    def test_single_quoted_context_escapes_single_quote(self) -> None:
        assert render_query("m{version='${version}'}", dict(VARS, version="a'b")) == "m{version='a\\'b'}"

    def test_backtick_in_raw_string_is_refused(self) -> None:
        with pytest.raises(InvalidArgumentError):
            render_query("m{version=`${version}`}", dict(VARS, version="a`b"))

    def test_unquoted_placeholder_accepts_only_plain_tokens(self) -> None:
        assert render_query("rate(m[${window}])", VARS) == "rate(m[1m])"
        with pytest.raises(InvalidArgumentError) as info:
            render_query("rate(m[${window}])", dict(VARS, window="1m]) or vector(1"))
        assert "outside quotes" in str(info.value)

    def test_escaped_quote_in_template_keeps_string_context(self) -> None:
        # The \" does not close the string, so the placeholder is still inside quotes.
        rendered = render_query('m{a="x\\"${version}"}', dict(VARS, version='"'))
        assert rendered == 'm{a="x\\"\\""}'

    def test_unknown_placeholder_names_option_and_known_names(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            render_query('m{x="${colour}"}', VARS, "analysis.checks[0].query")
        assert info.value.option == "analysis.checks[0].query"
        assert "${colour}" in str(info.value) and "version" in str(info.value)

    def test_unbalanced_quotes_are_refused(self) -> None:
        with pytest.raises(InvalidArgumentError):
            render_query('m{x="${version}}', VARS)


class TestClient:
    def test_instant_query_url_and_value(self) -> None:
        http = FakeHttp([(200, prom_vector(0.25))])
        result = PrometheusClient("http://prom:9090/", timeout=7, http_get=http).query("up")
        assert result.value == 0.25 and not result.no_data
        parsed = urlparse(http.urls[0])
        assert parsed.path == "/api/v1/query"
        assert parse_qs(parsed.query)["query"] == ["up"]
        assert parse_qs(parsed.query)["timeout"] == ["7s"]

    def test_empty_vector_is_no_data_not_error(self) -> None:
        result = PrometheusClient("http://p", http_get=FakeHttp([(200, prom_vector())])).query("up")
        assert result.no_data and result.series == 0

    def test_nan_is_no_data(self) -> None:
        result = PrometheusClient("http://p", http_get=FakeHttp([(200, prom_vector("NaN"))])).query("up")
        assert result.no_data

    def test_inf_is_a_value(self) -> None:
        assert PrometheusClient("http://p", http_get=FakeHttp([(200, prom_vector("+Inf"))])).query("x").value == float(
            "inf"
        )

    def test_scalar_result(self) -> None:
        body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
        assert PrometheusClient("http://p", http_get=FakeHttp([(200, body)])).query("scalar(1)").value == 3.0

    def test_bad_query_is_query_error(self) -> None:
        body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
        with pytest.raises(PrometheusQueryError) as info:
            PrometheusClient("http://p", http_get=FakeHttp([(400, body)])).query("sum(")
        assert "parse error at char 5" in str(info.value)

    def test_execution_error_422_is_query_error(self) -> None:
        body = {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"}
        with pytest.raises(PrometheusQueryError):
            PrometheusClient("http://p", http_get=FakeHttp([(422, body)])).query("a / b")

    def test_several_series_is_query_error_naming_the_query(self) -> None:
        with pytest.raises(PrometheusQueryError) as info:
            PrometheusClient("http://p", http_get=FakeHttp([(200, prom_vector(1, 2))])).query("rate(x[1m])")
        assert "query rate(x[1m]) returned 2 series" in str(info.value)
        assert "aggregate with sum or max" in str(info.value)

    def test_rejected_query_is_named(self) -> None:
        body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
        with pytest.raises(PrometheusQueryError) as info:
            PrometheusClient("http://p", http_get=FakeHttp([(400, body)])).query("sum(")
        assert "rejected the query sum(" in str(info.value)

    def test_credentials_in_the_url_never_reach_errors(self) -> None:
        http = FakeHttp([HttpUnreachable("URLError: refused")])
        with pytest.raises(PrometheusUnreachableError) as info:
            PrometheusClient("https://ops:hunter2@prom.example:9090", http_get=http).query("up")
        assert "hunter2" not in str(info.value) and "hunter2" not in str(info.value.to_dict())
        assert "https://***@prom.example:9090" in str(info.value)
        assert http.urls[0].startswith("https://ops:hunter2@prom.example:9090/api/v1/query?")

    def test_http_error_page_is_described_not_quoted(self) -> None:
        body = b"<html>upstream secret-token=abc</html>"
        with pytest.raises(PrometheusUnreachableError) as info:
            PrometheusClient("http://p", http_get=FakeHttp([(502, body)])).query("up")
        assert "secret-token" not in str(info.value)
        assert "HTTP 502 (no content type, %d bytes)" % len(body) in str(info.value)

    def test_connection_refused_is_unreachable(self) -> None:
        http = FakeHttp([HttpUnreachable("URLError: [Errno 111] Connection refused")])
        with pytest.raises(PrometheusUnreachableError) as info:
            PrometheusClient("http://127.0.0.1:9", http_get=http).query("up")
        assert "Connection refused" in str(info.value)

    def test_non_json_5xx_is_unreachable(self) -> None:
        with pytest.raises(PrometheusUnreachableError):
            PrometheusClient("http://p", http_get=FakeHttp([(502, b"<html>bad gateway</html>")])).query("up")

    def test_prometheus_timeout_is_unreachable(self) -> None:
        body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
        with pytest.raises(PrometheusUnreachableError):
            PrometheusClient("http://p", http_get=FakeHttp([(503, body)])).query("up")

    def test_bearer_token_header(self) -> None:
        seen = {}

        def http_get(url: str, headers: Dict[str, str], timeout: float, validate: bool) -> Any:
            seen.update(headers)
            return FakeHttp([(200, prom_vector(1))])(url, headers, timeout, validate)

        PrometheusClient("http://p", bearer_token="s3cret", http_get=http_get).query("up")
        assert seen["Authorization"] == "Bearer s3cret"


# PromQL semantics checked by Prometheus itself: promtool evaluates the built-ins over
# synthetic series (15 s scrapes, counters as the User Service exports them).
PROMTOOL = shutil.which("promtool")
RATE_VARS = dict(VARS, namespace="ns", app="app", version="1", slot="green", window="1m")


def series(slot: str, status: str, per_scrape: int) -> Dict[str, str]:
    labels = 'namespace="ns",app="app",version="1",slot="%s",status_code="%s"' % (slot, status)
    return {"series": "http_requests_total{%s}" % labels, "values": "0+%dx40" % per_scrape}


def promtool_eval(tmp_path: Path, inputs: List[Dict[str, str]], expr: str, expected: List[Dict[str, Any]]) -> str:
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "15s",
                "input_series": inputs,
                "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": expected}],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test))
    run = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, check=False)
    return "" if run.returncode == 0 else run.stdout + run.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")
class TestBuiltinsOnPrometheus:
    def error_ratio(self, slot: str = "green") -> str:
        return render_query(builtin_query("error_ratio", ["version", "slot"]), dict(RATE_VARS, slot=slot))

    def test_traffic_without_any_5xx_series_is_zero(self, tmp_path: Path) -> None:
        inputs = [series("green", "200", 30), series("green", "404", 3)]
        assert promtool_eval(tmp_path, inputs, self.error_ratio(), [{"labels": "{}", "value": 0}]) == ""

    def test_errors_give_their_share(self, tmp_path: Path) -> None:
        inputs = [series("green", "200", 27), series("green", "503", 2), series("green", "500", 1)]
        assert promtool_eval(tmp_path, inputs, self.error_ratio(), [{"labels": "{}", "value": 0.1}]) == ""

    def test_no_series_is_no_data(self, tmp_path: Path) -> None:
        inputs = [series("blue", "200", 30)]
        assert promtool_eval(tmp_path, inputs, self.error_ratio("green"), []) == ""

    def test_idle_series_are_nan_which_the_client_reads_as_no_data(self, tmp_path: Path) -> None:
        # NaN never equals NaN, so ask Prometheus whether the value is NaN (x != x).
        expr = "(%s) != bool (%s)" % (self.error_ratio(), self.error_ratio())
        assert promtool_eval(tmp_path, [series("green", "200", 0)], expr, [{"labels": "{}", "value": 1}]) == ""

    def test_the_other_slot_of_the_same_version_is_not_measured(self, tmp_path: Path) -> None:
        # A config-only release: both slots run version 1; only the old (blue) slot has errors.
        inputs = [series("blue", "200", 20), series("blue", "500", 20), series("green", "200", 10)]
        assert promtool_eval(tmp_path, inputs, self.error_ratio("green"), [{"labels": "{}", "value": 0}]) == ""

    def test_the_check_would_see_a_failing_expectation(self, tmp_path: Path) -> None:
        # The harness itself can fail: a wrong expected value is reported.
        inputs = [series("green", "200", 30)]
        assert "FAILED" in promtool_eval(tmp_path, inputs, self.error_ratio(), [{"labels": "{}", "value": 0.5}])
