"""Bad releases under load: each one must leave traffic on the old version, fail with the reason in the output
and in the state record, and (before the switch) cost zero failed requests."""

from __future__ import annotations

from conftest import kubectl_json, release_state
from test_bluegreen_release import record, settle

PROMETHEUS = {"url": "http://127.0.0.1:9090", "timeout": 5}


def baseline(release) -> None:
    first = release(version="1.0.0")
    assert first.rc == 0, first.output[-3000:]


def assert_failed_and_untouched(run, stream, namespace, words) -> dict:
    assert run.rc != 0, run.output[-2000:]
    message = run.result.get("msg", "")
    for word in words:
        assert word in message, message
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    assert set(summary["by_version"]) == {"1.0.0"}, summary
    state = release_state(namespace)
    assert state["active_slot"] == "blue"
    assert state["last_failure"], state
    service = kubectl_json("-n", namespace, "get", "service", "user-service")
    assert service["spec"]["selector"]["deploy.userservice.io/slot"] == "blue"
    return state["last_failure"]


def test_new_pods_never_ready(release, load, namespace):
    baseline(release)
    with load(rate=10, max_seconds=200) as stream:
        settle(stream)
        run = release(version="2.0.0", env={"FAULT_READY_FAIL": "true"}, progress_deadline=15, rollout_timeout=90)
        settle(stream)
    failure = assert_failed_and_untouched(run, stream, namespace, ["progress deadline"])
    assert "ProgressDeadlineExceeded" in str(failure) or "progress deadline" in failure["reason"]
    green = kubectl_json("-n", namespace, "get", "deployment", "user-service-green")
    assert green["spec"]["replicas"] == 0  # on_failure: scale_down
    # A rollback must not send traffic to the slot that just failed.
    back = release(state="rolled_back")
    assert back.rc != 0 and "it is failed" in back.result["msg"], back.result.get("msg")
    assert release_state(namespace)["active_slot"] == "blue"
    record(
        "bluegreen_bad_never_ready",
        seconds=round(run.seconds, 1),
        requests=stream.summary()["requests"],
        failed=stream.summary()["failed"],
    )


def test_ready_but_health_endpoint_fails(release, load, namespace):
    baseline(release)
    with load(rate=10, max_seconds=200) as stream:
        settle(stream)
        # Health fails 6 s after start: the startup and readiness probes have passed by then and a lenient
        # liveness probe (30 failures) has not restarted the pods, so they are Ready while the gate, which wants
        # 10 good answers in a row, is still probing them.
        run = release(
            version="2.0.0",
            env={"FAULT_HEALTH_FAIL": "true", "FAULT_FAIL_AFTER_SECONDS": "6"},
            workload_liveness_failure_threshold=30,
            workload_startup_period_seconds=1,
            health={"consecutive": 10, "interval": 1, "timeout": 90},
        )
        settle(stream)
    failure = assert_failed_and_untouched(run, stream, namespace, ["health gate failed"])
    assert "500" in failure["reason"] or "500" in str(failure.get("detail")), failure
    assert run.result["error"]["data"]["pods"], run.result["error"]
    record(
        "bluegreen_bad_health",
        seconds=round(run.seconds, 1),
        requests=stream.summary()["requests"],
        failed=stream.summary()["failed"],
    )


def test_error_share_caught_by_pre_promotion_analysis(release, load, namespace):
    baseline(release)
    analysis = {
        "checks": [
            {
                "name": "users-api",
                "type": "http",
                "service": "user-service-preview",
                "port": "80",
                "path": "/api/users",
                "expected_status": [200],
                "samples": 10,
                "interval": 0.5,
                "failure_limit": 1,
            }
        ]
    }
    with load(rate=10, max_seconds=200) as stream:
        settle(stream)
        run = release(
            version="2.0.0",
            env={"FAULT_ERROR_RATE": "0.3"},
            analysis=analysis,
            pre=["users-api"],
            preview_service="user-service-preview",
        )
        settle(stream)
    failure = assert_failed_and_untouched(run, stream, namespace, ["pre-promotion analysis failed"])
    assert failure["check"] == "users-api"
    assert failure["samples"] and any(not s["ok"] for s in failure["samples"])
    assert run.result["verdicts"]["pre-promotion"]["verdict"] == "fail"
    record(
        "bluegreen_bad_error_share",
        seconds=round(run.seconds, 1),
        requests=stream.summary()["requests"],
        failed=stream.summary()["failed"],
    )


def test_failure_after_switch_is_reverted_by_post_promotion_analysis(release, load, namespace):
    baseline(release)
    analysis = {
        "prometheus": PROMETHEUS,
        "checks": [
            {
                "name": "error-ratio",
                "type": "prometheus",
                "metric": "error_ratio",
                "window": "20s",
                "max": 0.05,
                "samples": 12,
                "interval": 5,
                "failure_limit": 0,
                "on_no_data": "pass",
            }
        ],
    }
    with load(rate=20, max_seconds=300) as stream:
        settle(stream)
        run = release(
            version="2.0.0",
            env={"FAULT_ERROR_RATE": "0.5", "FAULT_FAIL_AFTER_SECONDS": "25"},
            analysis=analysis,
            post=["error-ratio"],
            scale_down_delay=-1,
        )
        settle(stream, 3)
    assert run.rc != 0, run.output[-3000:]
    assert "post-promotion analysis failed" in run.result["msg"]
    assert "switched back" in run.result["msg"] or "back to slot blue" in run.result["msg"], run.result["msg"]
    state = release_state(namespace)
    assert state["active_slot"] == "blue"
    failure = state["last_failure"]
    assert failure["check"] == "error-ratio" and failure["value"] > 0.05, failure
    # Clients saw v2 for a while and some of its errors; the last answers come from v1 again.
    summary = stream.summary()
    assert "2.0.0" in summary["by_version"] and stream.snapshot()[-1].version == "1.0.0"
    breach = next(s["time"] for s in failure["samples"] if not s["ok"])
    reverted = run.result["reverted_at"]
    from datetime import datetime

    from test_bluegreen_release import _seconds_between

    first_failed = stream.wall(stream.failures()[0].started)
    reverted_epoch = datetime.fromisoformat(reverted.replace("Z", "+00:00")).timestamp()
    record(
        "bluegreen_post_promotion_revert",
        failed_requests=summary["failed"],
        requests=summary["requests"],
        failing_sample_to_revert_seconds=round(_seconds_between(breach, reverted), 2),
        first_failed_request_to_revert_seconds=round(reverted_epoch - first_failed, 2),
    )


def test_no_data_policies(release, namespace):
    baseline(release)
    query = 'sum(http_requests_total{namespace="${namespace}",version="${version}",route="/api/users"})'

    def analysis(policy):
        return {
            "prometheus": PROMETHEUS,
            "checks": [
                {
                    "name": "no-traffic",
                    "type": "prometheus",
                    "query": query,
                    "max": 100,
                    "samples": 2,
                    "interval": 1,
                    "on_no_data": policy,
                }
            ],
        }

    failed = release(version="2.0.0", analysis=analysis("fail"), pre=["no-traffic"])
    assert failed.rc != 0 and "pre-promotion analysis failed" in failed.result["msg"], failed.result.get("msg")
    assert release_state(namespace)["active_slot"] == "blue"

    paused = release(version="2.1.0", analysis=analysis("inconclusive"), pre=["no-traffic"])
    assert paused.rc != 0 and "inconclusive" in paused.result["msg"], paused.result.get("msg")
    state = release_state(namespace)
    assert state["active_slot"] == "blue" and state["pending_slot"] == "green"

    passed = release(version="2.2.0", analysis=analysis("pass"), pre=["no-traffic"])
    assert passed.rc == 0, passed.output[-2000:]
    assert passed.result["verdicts"]["pre-promotion"]["verdict"] == "pass"
    assert release_state(namespace)["active_slot"] == "green"
