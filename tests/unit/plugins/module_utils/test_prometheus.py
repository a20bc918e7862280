# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Dict
from urllib.parse import parse_qs, urlparse

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidArgumentError,
    PrometheusQueryError,
    PrometheusUnreachableError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import (
    BUILTIN_QUERIES,
    HttpUnreachable,
    PrometheusClient,
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
    def test_builtin_error_ratio(self) -> None:
        query = render_query(BUILTIN_QUERIES["error_ratio"], VARS)
        assert 'version="1.4.2"' in query
        assert 'status_code=~"5.."' in query
        assert "[1m]" in query
        assert "{{" not in query

    def test_builtin_latency_quantile(self) -> None:
        query = render_query(BUILTIN_QUERIES["latency_quantile"], VARS)
        assert query.startswith("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{")

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

    def test_several_series_is_query_error(self) -> None:
        with pytest.raises(PrometheusQueryError) as info:
            PrometheusClient("http://p", http_get=FakeHttp([(200, prom_vector(1, 2))])).query("up")
        assert "2 series" in str(info.value)

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
