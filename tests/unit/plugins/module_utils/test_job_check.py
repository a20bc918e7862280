# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Job check: one Job per sample, the exit code decides, logs kept (redacted), the Job deleted."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import (
    AnalysisContext,
    CheckSpec,
    analysis_error,
    parse_checks,
    run_analysis,
    verdict_summary,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisMeasurementError,
    ApiError,
    ForbiddenError,
    InvalidArgumentError,
    LockLostError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.job_check import (
    JOB_LABEL,
    JobOptions,
    RenderedJob,
    build_job,
    job_name,
    label_value,
    render_plain,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import (
    FakeClock,
    FakeHttp,
    prom_vector,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes_jobs import FakeJobKube, JobScript

NS = "user-service-prod"
SMOKE_IMAGE = "registry.local/smoke@sha256:" + "a" * 64


def job_check(**overrides: Any) -> Dict[str, Any]:
    job = {"image": SMOKE_IMAGE, "args": ["--target", "http://${app}-canary.${namespace}.svc:8080"], "timeout": 60}
    job.update(overrides.pop("job", {}))
    params = {"name": "smoke", "type": "job", "job": job, "interval": 10, "samples": 1}
    params.update(overrides)
    return params


def context(clock: FakeClock, kube: Optional[FakeJobKube], **kwargs: Any) -> AnalysisContext:
    values: Dict[str, Any] = dict(
        namespace=NS, app="user-service", version="1.4.2", track="canary", kube=kube, clock=clock, run_id="3f9c2a1b7d"
    )
    values.update(kwargs)
    return AnalysisContext(**values)


def run(checks: List[Dict[str, Any]], kube: Optional[FakeJobKube], clock: FakeClock, **kwargs: Any) -> Dict[str, Any]:
    return run_analysis(parse_checks(checks), context(clock, kube, **kwargs))


class TestManifest:
    def options(self, **job: Any) -> JobOptions:
        return JobOptions(dict({"image": SMOKE_IMAGE}, **job), "analysis.checks[0].job", "smoke")

    def build(self, **job: Any) -> Dict[str, Any]:
        rendered = RenderedJob(self.options(**job), {"app": "user-service", "namespace": NS, "version": "1.4.2"})
        return build_job(
            rendered,
            namespace=NS,
            name="user-service-smoke-3f9c2a1b-1",
            app="user-service",
            check="smoke",
            run_id="3f9c2a1b",
        )

    def test_restricted_pod_security_and_one_attempt(self) -> None:
        job = self.build(timeout=90.5)
        spec = job["spec"]
        assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (0, 91, 600)
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never" and pod["terminationGracePeriodSeconds"] == 5
        assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod

    def test_labels_never_make_the_pod_an_endpoint_of_the_app(self) -> None:
        job = self.build()
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert "app.kubernetes.io/name" not in labels and "app" not in labels
        assert labels["app.kubernetes.io/managed-by"] == "userservice.deploy"
        assert labels["app.kubernetes.io/part-of"] == "user-service"
        assert labels[JOB_LABEL] == job["metadata"]["name"]
        assert job["metadata"]["labels"] == labels

    def test_placeholders_and_env(self) -> None:
        job = self.build(
            command=["/smoke"],
            args=["--version=${version}", "--ns", "${namespace}"],
            env={
                "TARGET": "http://${app}:8080",
                "RETRIES": 3,
                "VERBOSE": True,
                "TOKEN": {"secret": "smoke", "key": "token"},
            },
        )
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["/smoke"]
        assert container["args"] == ["--version=1.4.2", "--ns", NS]
        assert container["env"] == [
            {"name": "RETRIES", "value": "3"},
            {"name": "TARGET", "value": "http://user-service:8080"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "smoke", "key": "token"}}},
            {"name": "VERBOSE", "value": "true"},
        ]

    def test_image_defaults_stay_when_no_command(self) -> None:
        (container,) = self.build()["spec"]["template"]["spec"]["containers"]
        assert "command" not in container and "args" not in container and "env" not in container

    def test_service_account_user_and_resources(self) -> None:
        job = self.build(service_account="smoke-runner", run_as_user=10001, resources={"limits": {"memory": "64Mi"}})
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "smoke-runner" and pod["automountServiceAccountToken"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["containers"][0]["securityContext"]["runAsUser"] == 10001
        assert pod["containers"][0]["resources"] == {"limits": {"memory": "64Mi"}}

    def test_unknown_placeholder_names_the_option(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            RenderedJob(self.options(args=["ok", "${missing}"]), {"app": "a", "slot": None})
        assert info.value.option == "analysis.checks[0].job.args[1]"
        assert "${missing}" in str(info.value) and "app" in str(info.value)

    def test_render_plain_leaves_text_alone(self) -> None:
        assert render_plain("a ${x} 'b' \"c\" $y", {"x": 1.5}, "o") == "a 1.5 'b' \"c\" $y"

    def test_job_names_fit_a_label_and_stay_distinct(self) -> None:
        assert job_name("user-service", "smoke", "3f9c2a1b7d", 2) == "user-service-smoke-3f9c2a1b-2"
        long_a = job_name("a" * 50, "Check_With.Odd chars" + "x" * 40, "RUN", 12)
        long_b = job_name("a" * 50, "Check_With.Odd chars" + "y" * 40, "RUN", 12)
        for name in (long_a, long_b):
            assert len(name) <= 63 and name.endswith("-run-12") and name == name.lower()
        assert long_a != long_b
        assert label_value("-Smoke test!-") == "Smoke-test"


class TestVerdicts:
    def test_exit_zero_passes_and_the_job_is_deleted(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=0, runs_for=7, logs="checking\nall 12 requests ok\n")])
        beats: List[float] = []
        result = run([job_check()], kube, clock, heartbeat=lambda: beats.append(clock.monotonic()))
        check = result["checks"][0]
        assert result["verdict"] == check["verdict"] == "pass"
        assert check["value"] == 0 and check["bound"] == {"exit_code": 0}
        (sample,) = check["samples"]
        assert (
            sample["outcome"] == "ok" and sample["exit_code"] == 0 and sample["job"] == "user-service-smoke-3f9c2a1b-1"
        )
        assert "logs" not in sample  # an ok Job's log lives only in the check's last logs
        assert check["logs"] == ["checking", "all 12 requests ok"]
        assert check["job"]["last"] == "user-service-smoke-3f9c2a1b-1" and check["job"]["started"] == 1
        assert check["query"].startswith(
            "job image %s run --target http://user-service-canary.%s.svc:8080" % (SMOKE_IMAGE, NS)
        )
        assert kube.running_jobs() == []
        assert [c[0] for c in kube.writes()] == ["create", "delete"]
        assert 7 <= clock.elapsed <= 12 and beats  # polled until it ended, with heartbeats between

    def test_non_zero_exit_fails_with_the_logs_in_the_failure(self, clock: FakeClock) -> None:
        logs = "\n".join(
            [
                "GET https://ops:hunter2@api.internal/users -> 500",
                "Authorization: Bearer abc.def-ghi",
                "token=s3cr3t-value and more",
                "FAILED 3 of 12",
            ]
        )
        kube = FakeJobKube(clock, [JobScript(exit_code=3, runs_for=4, logs=logs)])
        result = run([job_check()], kube, clock)
        check = result["checks"][0]
        assert result["verdict"] == "fail" and result["decided_by"] == "smoke"
        (sample,) = check["samples"]
        assert sample["outcome"] == "failed" and sample["exit_code"] == 3 and check["value"] == 3
        assert "exit code 3" in check["reason"]
        assert (
            sample["logs"]
            == check["logs"]
            == [
                "GET https://***@api.internal/users -> 500",
                "Authorization: ***",
                "token=*** and more",
                "FAILED 3 of 12",
            ]
        )
        text = json.dumps(result)
        for secret in ("hunter2", "abc.def-ghi", "s3cr3t"):
            assert secret not in text
        error = analysis_error(result, "step 2")
        assert "step 2 analysis failed: check smoke" in str(error) and "exit_code" in str(error)
        summary = verdict_summary(result)
        assert summary["check"] == "smoke" and summary["logs"][-1] == "FAILED 3 of 12"
        assert kube.running_jobs() == []

    def test_log_lines_keeps_the_last_lines_cut_to_length(self, clock: FakeClock) -> None:
        logs = "\n".join(["line %d" % i for i in range(50)] + ["x" * 1000])
        kube = FakeJobKube(clock, [JobScript(exit_code=1, logs=logs)])
        result = run([job_check(job={"log_lines": 3})], kube, clock)
        assert result["checks"][0]["logs"] == ["line 48", "line 49", "x" * 300]
        assert kube.log_requests == [("user-service-smoke-3f9c2a1b-1-abcde", 3)]

    def test_log_lines_zero_reads_no_log(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=1, logs="x")])
        result = run([job_check(job={"log_lines": 0})], kube, clock)
        assert result["checks"][0]["logs"] == [] and kube.log_requests == []

    def test_unreadable_logs_do_not_change_the_verdict(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=2)])
        kube.log_error = ForbiddenError("get", "pods/log", NS, "p", "no")
        result = run([job_check()], kube, clock)
        assert result["verdict"] == "fail"
        assert result["checks"][0]["logs"][0].startswith("(logs of pod user-service-smoke-3f9c2a1b-1-abcde unavailable")

    def test_failure_limit_and_interval_from_end_to_start(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=1, runs_for=5), JobScript(exit_code=0, runs_for=5)])
        result = run([job_check(samples=2, failure_limit=1, interval=30)], kube, clock)
        check = result["checks"][0]
        assert result["verdict"] == "pass" and check["failures"] == 1 and check["job"]["started"] == 2
        first, second = check["samples"]
        assert (first["outcome"], second["outcome"]) == ("failed", "ok")
        assert [j["metadata"]["name"] for j in kube.created] == [
            "user-service-smoke-3f9c2a1b-1",
            "user-service-smoke-3f9c2a1b-2",
        ]
        # Second Job created 30 s after the first one ended (which was seen within a poll of its end).
        assert 40 <= clock.elapsed <= 50


class TestErrors:
    """A Job that cannot run or finish is an error sample: no verdict on the release."""

    def test_image_pull_error_is_an_error_at_once(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(waiting="ImagePullBackOff")])
        result = run([job_check(error_limit=0)], kube, clock)
        check = result["checks"][0]
        assert result["verdict"] == check["verdict"] == "error"
        assert check["failures"] == 0 and check["errors"] == 1
        assert "ImagePullBackOff" in check["samples"][0]["error"]
        assert check["samples"][0]["logs"] == [] and kube.log_requests == []  # the container never ran
        assert clock.elapsed < 10  # not held until the 60 s timeout
        error = analysis_error(result, "step 1")
        assert isinstance(error, AnalysisMeasurementError) and "make the check's Job able to run" in str(error)
        assert kube.running_jobs() == []

    def test_error_does_not_count_as_a_sample_and_is_retried(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(waiting="ErrImagePull"), JobScript(exit_code=0)])
        result = run([job_check()], kube, clock)
        check = result["checks"][0]
        assert result["verdict"] == "pass" and check["errors"] == 1 and check["measured"] == 1

    def test_timeout_is_an_error(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(never_ends=True, logs="still waiting for the canary")])
        result = run([job_check(job={"timeout": 20}, error_limit=0)], kube, clock)
        sample = result["checks"][0]["samples"][0]
        assert result["verdict"] == "error" and sample["outcome"] == "error"
        assert "did not finish within timeout 20s" in sample["error"]
        assert sample["logs"] == ["still waiting for the canary"]
        assert 20 <= clock.elapsed <= 21

    def test_controller_deadline_kill_is_not_a_failed_check(self, clock: FakeClock) -> None:
        # The cluster's deadline strikes before our own clock says timeout: the pod dies with exit 137.
        kube = FakeJobKube(clock, [JobScript(never_ends=True, deadline=12)])
        result = run([job_check(job={"timeout": 60}, error_limit=0)], kube, clock)
        sample = result["checks"][0]["samples"][0]
        assert result["verdict"] == "error" and sample["exit_code"] is None and sample["outcome"] == "error"
        assert "did not finish within timeout 60s" in sample["error"]
        assert clock.elapsed < 20

    def test_no_pod_within_timeout_says_so(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(pod_after=1000)])
        result = run([job_check(job={"timeout": 5}, error_limit=0)], kube, clock)
        assert "no pod started" in result["checks"][0]["samples"][0]["error"]

    @pytest.mark.parametrize("reason", ["OOMKilled", "ContainerCannotRun"])
    def test_container_that_did_not_run_to_its_end(self, clock: FakeClock, reason: str) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=137, reason=reason)])
        result = run([job_check(error_limit=0)], kube, clock)
        assert result["verdict"] == "error" and reason in result["checks"][0]["samples"][0]["error"]

    def test_evicted_pod_is_an_error(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(pod_phase_failure="Evicted")])
        result = run([job_check(error_limit=0)], kube, clock)
        assert result["verdict"] == "error" and "Evicted" in result["checks"][0]["samples"][0]["error"]

    def test_refused_job_is_an_error_and_nothing_to_delete(self, clock: FakeClock) -> None:
        refusal = ForbiddenError("create", "jobs", NS, None, 'jobs.batch is forbidden: User "deployer" cannot create')
        kube = FakeJobKube(clock, [JobScript(refuse=refusal)])
        result = run([job_check(error_limit=1)], kube, clock)
        check = result["checks"][0]
        assert result["verdict"] == "error" and check["errors"] == 2
        assert "forbidden to create jobs" in check["samples"][0]["error"]
        assert [c[0] for c in kube.writes()] == ["create", "create"]

    def test_job_deleted_by_someone_else(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(runs_for=30)])
        original = kube.read

        def read(kind: str, namespace: str, name: str) -> Dict[str, Any]:
            if kind == "Job" and clock.elapsed > 3:
                kube.objects.pop((kind, namespace, name), None)
            return original(kind, namespace, name)

        kube.read = read  # type: ignore[method-assign]
        result = run([job_check(error_limit=0)], kube, clock)
        assert "disappeared" in result["checks"][0]["samples"][0]["error"]

    def test_failed_delete_is_a_warning_not_a_verdict(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=0)])
        kube.delete_error = ApiError("delete failed with HTTP 500", status=500)
        result = run([job_check()], kube, clock)
        check = result["checks"][0]
        assert result["verdict"] == "pass"
        assert "removes it 600s after it ends" in check["samples"][0]["cleanup"]
        assert check["job"]["cleanup_warnings"] == [check["samples"][0]["cleanup"]]

    def test_no_client_and_check_mode_are_errors(self, clock: FakeClock) -> None:
        result = run([job_check(error_limit=0)], None, clock)
        assert "no Kubernetes client" in result["checks"][0]["samples"][0]["error"]
        kube = FakeJobKube(clock)
        kube.dry_run = True
        result = run([job_check(error_limit=0)], kube, FakeClock())
        assert "check mode" in result["checks"][0]["samples"][0]["error"] and kube.writes() == []


class TestSideBySide:
    def test_other_checks_keep_their_interval_while_a_job_runs(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=0, runs_for=45)])
        http = FakeHttp([(200, prom_vector(0.0))])
        prometheus = AnalysisContext.prometheus_from_params({}, http_get=http)
        prom = {
            "name": "errors",
            "type": "prometheus",
            "metric": "error_ratio",
            "max": 0.05,
            "interval": 10,
            "samples": 4,
        }
        result = run([job_check(), prom], kube, clock, prometheus=prometheus)
        assert result["verdict"] == "pass"
        times = [s["time"][17:19] for s in result["checks"][1]["samples"]]
        assert times == ["05", "15", "25", "35"]  # every 10 s from 03:04:05, not after the Job

    def test_a_failing_check_stops_and_deletes_the_running_job(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=0, runs_for=300)])
        http = FakeHttp([(200, prom_vector(0.0)), (200, prom_vector(0.5))])
        prometheus = AnalysisContext.prometheus_from_params({}, http_get=http)
        prom = {
            "name": "errors",
            "type": "prometheus",
            "metric": "error_ratio",
            "max": 0.05,
            "interval": 10,
            "samples": 5,
        }
        result = run([job_check(job={"timeout": 600}), prom], kube, clock, prometheus=prometheus)
        by_name = {c["check"]: c for c in result["checks"]}
        assert result["verdict"] == "fail" and result["decided_by"] == "errors"
        assert by_name["smoke"]["verdict"] == "inconclusive" and by_name["smoke"]["samples"] == []
        assert kube.running_jobs() == [] and clock.elapsed == 10

    def test_lost_lease_during_a_job_deletes_it(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock, [JobScript(exit_code=0, runs_for=300)])

        def heartbeat() -> None:
            if clock.elapsed > 20:
                raise LockLostError(NS, "user-service-release", "someone", None)

        with pytest.raises(LockLostError):
            run([job_check(job={"timeout": 600})], kube, clock, heartbeat=heartbeat)
        assert kube.running_jobs() == [] and ("delete", "Job", "user-service-smoke-3f9c2a1b-1") in kube.calls


class TestArguments:
    @pytest.mark.parametrize(
        "params, option",
        [
            ({"name": "j", "type": "job"}, "analysis.checks[0].job"),
            (job_check(job={"image": ""}), "analysis.checks[0].job.image"),
            (job_check(job={"image": "a b"}), "analysis.checks[0].job.image"),
            (job_check(job={"timeout": 0}), "analysis.checks[0].job.timeout"),
            (job_check(job={"log_lines": -1}), "analysis.checks[0].job.log_lines"),
            (job_check(job={"log_lines": 5000}), "analysis.checks[0].job.log_lines"),
            (job_check(job={"env": {"1BAD": "x"}}), "analysis.checks[0].job.env"),
            (job_check(job={"env": {"T": {"secret": "s"}}}), "analysis.checks[0].job.env.T"),
            (job_check(job={"env": {"T": ["a"]}}), "analysis.checks[0].job.env.T"),
            (job_check(job={"args": "--one-string"}), "analysis.checks[0].job.args"),
            (job_check(job={"command": [{"a": 1}]}), "analysis.checks[0].job.command[0]"),
            (job_check(job={"run_as_user": 0}), "analysis.checks[0].job.run_as_user"),
            (job_check(job={"service_account": "Not_Valid"}), "analysis.checks[0].job.service_account"),
            (job_check(job={"resources": {"cpu": "1"}}), "analysis.checks[0].job.resources"),
            (job_check(job={"resources": {"limits": "1"}}), "analysis.checks[0].job.resources.limits"),
            (job_check(job={"imagePullPolicy": "Always"}), "analysis.checks[0].job.imagePullPolicy"),
            (job_check(query="up"), "analysis.checks[0].query"),
            (job_check(max=1.0), "analysis.checks[0].max"),
            (job_check(url="http://x"), "analysis.checks[0].url"),
            (
                {"name": "p", "type": "prometheus", "query": "up", "max": 1.0, "job": {"image": "x"}},
                "analysis.checks[0].job",
            ),
        ],
    )
    def test_bad_job_check_names_the_option(self, params: Dict[str, Any], option: str) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            CheckSpec(params, 0)
        assert info.value.option == option
        assert "Fix check" in str(info.value)

    def test_bad_placeholder_fails_before_any_job(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock)
        with pytest.raises(InvalidArgumentError) as info:
            run([job_check(job={"env": {"URL": "http://${preview_host}/"}})], kube, clock)
        assert info.value.option == "analysis.checks[0].job.env.URL" and kube.writes() == []

    def test_user_variables_fill_placeholders(self, clock: FakeClock) -> None:
        kube = FakeJobKube(clock)
        run([job_check(job={"args": ["${route}"]})], kube, clock, variables={"route": "/api/users"})
        assert kube.created[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["/api/users"]


def test_a_name_taken_by_an_earlier_phase_is_skipped(clock: FakeClock) -> None:
    kube = FakeJobKube(clock)
    kube.put("Job", NS, {"metadata": {"name": "user-service-smoke-3f9c2a1b-1"}})
    result = run([job_check()], kube, clock)
    assert result["verdict"] == "pass"
    assert result["checks"][0]["job"]["last"] == "user-service-smoke-3f9c2a1b-2"
    assert "conflict" not in json.dumps(result["checks"][0]["samples"])
    # Three names in a row taken: an error sample naming the conflict.
    for taken in (2, 3):
        kube.put("Job", NS, {"metadata": {"name": "user-service-smoke-3f9c2a1b-%d" % taken}})
    result = run([job_check(error_limit=0)], kube, clock)
    assert result["verdict"] == "error" and "already exists" in result["checks"][0]["samples"][0]["error"]
