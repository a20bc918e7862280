# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole release sequences through the real engine on a simulated cluster: the bad days.

Each test is a scenario of the engine review (C1-C3, M1-M13) or of issue 9's
own findings: runs that die (twice), resume, roll back (twice), monitor, abort
and lose their lease. The invariant behind most of them is checked after every
run: the Service always selects Ready pods.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen import BlueGreen
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_args import BLUEGREEN_OPTIONS
from ansible_collections.userservice.deploy.plugins.module_utils.capacity import ServingDeploymentError
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    ApiUnreachableError,
    ConflictError,
    GateFailedError,
    InvalidArgumentError,
    InvalidStateError,
    LockHeldError,
    LockLostError,
    ReleaseError,
    RolloutFailedError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import HttpUnreachable
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LOCK_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import PrometheusClient
from ansible_collections.userservice.deploy.plugins.module_utils.state import DATA_KEY
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.cluster_sim import Killed, SimKube
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import (
    FakeClock,
    FakeHttp,
    prom_vector,
)

NS = "user-service-prod"
SERVICE = ("Service", NS, "user-service")
BOOM = {"name": "boom", "type": "prometheus", "query": "vector(1)", "max": 0.5, "samples": 1, "interval": 1}


def digest(version: str) -> str:
    return "127.0.0.1:5000/user-service@sha256:" + (version.replace(".", "") * 64)[:64].ljust(64, "0")


def params(version: str = "1.0.0", **override: Any) -> Dict[str, Any]:
    out = {key: spec.get("default") for key, spec in BLUEGREEN_OPTIONS.items()}
    out.update({key: spec.get("default") for key, spec in LOCK_ARG_SPEC.items()})
    out.update(
        namespace=NS,
        image=digest(version),
        version=version,
        replicas=2,
        pod_template={"metadata": {"labels": {}}, "spec": {"containers": [{"name": "user-service", "image": "x"}]}},
        health={"consecutive": 1, "interval": 1},
        analysis={"checks": [BOOM]},
        scale_down_delay=0,
        post_switch_watch=0,
    )
    out.update(override)
    return out


class Cluster:
    """The simulated cluster plus the operator's commands."""

    def __init__(self) -> None:
        self.kube = SimKube()
        self.clock = FakeClock()
        self.kube.put(
            "Service",
            NS,
            {
                "metadata": {"name": "user-service"},
                "spec": {"selector": {"app.kubernetes.io/name": "user-service"}, "ports": [{"port": 80}]},
            },
        )
        self.prometheus_answers: List[Any] = [(200, prom_vector(1))]

    def engine(self, state: str = "released", version: str = "1.0.0", check: bool = False, **kw: Any) -> BlueGreen:
        prometheus = PrometheusClient("http://prometheus.test:9090", http_get=FakeHttp(self.prometheus_answers))
        return BlueGreen(
            self.kube,
            params(version, state=state, **kw),
            check_mode=check,
            holder="tester",
            clock=self.clock,
            prometheus=prometheus,
        )

    def run(self, state: str = "released", version: str = "1.0.0", **kw: Any) -> Dict[str, Any]:
        self.kube.revive()
        result = self.engine(state, version, **kw).run()
        self.assert_serving()
        return result

    def fails(self, error: Any, state: str = "released", version: str = "1.0.0", **kw: Any) -> Any:
        self.kube.revive()
        engine = self.engine(state, version, **kw)
        with pytest.raises(error) as info:
            engine.run()
        self.assert_serving()
        info.engine = engine
        return info

    def dies(self, state: str = "released", version: str = "1.0.0", **kw: Any) -> None:
        """The run is SIGKILLed where kube.kill_at / kill_on_service_proxy say; then its lease expires."""
        with pytest.raises(Killed):
            self.engine(state, version, **kw).run()
        self.kube.revive()
        self.clock.advance(61)

    def record(self) -> Dict[str, Any]:
        return json.loads(self.kube.objects[("ConfigMap", NS, "user-service-release")]["data"][DATA_KEY])

    def selector_slot(self) -> Optional[str]:
        return self.kube.selector(NS).get("deploy.userservice.io/slot")

    def assert_serving(self) -> None:
        if self.selector_slot() is not None:
            assert self.kube.serving_replicas(NS) > 0, "the Service selects no Ready pod: an outage"

    def status(self, slot: str) -> Optional[str]:
        return ((self.record().get("slots") or {}).get(slot) or {}).get("status")


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def released(cluster: Cluster, *versions: str) -> None:
    for version in versions:
        cluster.run(version=version)


# -- the serving slot is never scaled down (C1-C3) ------------------------------------------------


def test_c1_re_releasing_the_serving_version_after_a_dead_monitor_is_a_no_op(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.prometheus_answers[:] = [Killed("monitor killed while querying")]
    cluster.dies("monitored", post_promotion_analysis=["boom"])
    assert cluster.record()["run"]["action"] == "monitor"
    result = cluster.run(version="2.0.0")
    assert result["changed"] is False and "already serves traffic" in result["message"]
    assert cluster.selector_slot() == "green" and cluster.kube.replicas(NS)["green"] == 2


def test_c2_a_run_resumed_twice_keeps_the_dead_runs_previous_slot(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    cluster.kube.kill_on_service_proxy = True
    cluster.dies(version="3.0.0")  # killed verifying, after the switch to green
    assert cluster.selector_slot() == "green"
    cluster.kube.kill_on_service_proxy = True
    cluster.dies(version="3.0.0")  # the resume dies at the same step
    assert cluster.record()["run"]["previous_slot"] == "blue"
    result = cluster.run(version="3.0.0")
    assert result["scaled_down"]["slot"] == "blue"
    assert cluster.selector_slot() == "green" and cluster.kube.replicas(NS) == {"blue": 0, "green": 2}
    assert cluster.status("green") == "served"


def test_c3_promote_refuses_a_pending_slot_that_already_serves(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    state = cluster.record()
    state["pending_slot"] = "blue"
    cluster.kube.patch("ConfigMap", NS, "user-service-release", {"data": {DATA_KEY: json.dumps(state)}})
    writes = len(cluster.kube.writes())
    info = cluster.fails(InvalidStateError, "promoted")
    assert "already serves traffic" in str(info.value)
    assert len(cluster.kube.writes()) == writes and cluster.kube.replicas(NS)["blue"] == 2


def test_c3_a_monitor_breach_never_rolls_back_onto_a_pending_preview(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    cluster.run("previewed", "3.0.0")
    info = cluster.fails(AnalysisFailedError, "monitored", post_promotion_analysis=["boom"])
    assert "Traffic stays on slot blue" in info.value.hint and "previewed release" in info.value.hint
    assert cluster.selector_slot() == "blue" and cluster.record()["pending_slot"] == "green"
    cluster.prometheus_answers[:] = [(200, prom_vector(0))]
    cluster.run("promoted")
    assert cluster.selector_slot() == "green" and cluster.kube.replicas(NS)["green"] == 2


# -- rollback knows what it ships (M1-M4, M6) ---------------------------------------------------------


def test_m1_after_a_flip_back_rollback_refuses_the_release_that_just_failed(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    info = cluster.fails(AnalysisFailedError, version="2.0.0", post_promotion_analysis=["boom"])
    assert "switched back to slot blue and verified" in info.value.hint
    assert cluster.selector_slot() == "blue"
    assert cluster.status("green") == "failed" and cluster.kube.replicas(NS)["green"] == 0
    assert cluster.record()["history"][-1]["outcome"] == "rolled_back"
    refused = cluster.fails(InvalidStateError, "rolled_back")
    assert "it is failed" in str(refused.value) and cluster.selector_slot() == "blue"


def test_m2_rollback_refuses_an_unapproved_preview(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.run("previewed", "3.0.0")  # into blue, which held 1.0.0
    info = cluster.fails(InvalidStateError, "rolled_back")
    assert "playbooks/promote.yml" in info.value.hint and "playbooks/abort.yml" in info.value.hint
    assert cluster.selector_slot() == "green"


def test_m3_rollback_after_a_release_killed_in_its_gate_refuses_the_ungated_slot(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.kube.kill_at = lambda verb, kind, name: verb == "proxy" or (verb == "read" and kind == "Pod")
    cluster.kube.kill_at = (
        lambda verb, kind, name: kind == "ConfigMap" and verb == "patch" and cluster.status("blue") == "unverified"
    )
    cluster.dies(version="3.0.0")
    assert cluster.status("blue") == "unverified"
    info = cluster.fails(InvalidStateError, "rolled_back")
    assert "it is unverified" in str(info.value) and cluster.selector_slot() == "green"


def test_m3_a_superseded_dead_release_marks_its_slot_failed(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.kube.kill_at = (
        lambda verb, kind, name: kind == "ConfigMap" and verb == "patch" and cluster.status("blue") == "unverified"
    )
    cluster.dies(version="3.0.0")
    cluster.run("previewed", "4.0.0")  # another release supersedes the dead one
    history = cluster.record()["history"]
    assert history[-2]["outcome"] == "failed" and "superseded" in history[-2]["failure"]["reason"]


def test_m4_a_second_rollback_is_a_no_op_not_a_toggle(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    first = cluster.run("rolled_back")
    assert first["changed"] is True and cluster.selector_slot() == "blue"
    assert cluster.status("green") == "rolled_back"
    second = cluster.run("rolled_back")
    assert second["changed"] is False and "no-op" in second["message"]
    assert cluster.selector_slot() == "blue"


def test_m4_rollback_to_names_a_version_on_purpose(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.run("rolled_back")
    cluster.run("rolled_back", rollback_to="2.0.0")
    assert cluster.selector_slot() == "green"
    again = cluster.run("rolled_back", rollback_to="2.0.0")
    assert again["changed"] is False
    bad = cluster.fails(InvalidArgumentError, "rolled_back", rollback_to="0.9.0")
    assert "rollback_to" in str(bad.value) and "version 1.0.0" in str(bad.value)


def test_m6_abort_after_a_dead_rollback_keeps_the_slot_that_served(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.kube.kill_on_service_proxy = True
    cluster.dies("rolled_back")
    result = cluster.run("aborted")
    assert result.get("aborted_slot") is None
    assert cluster.kube.replicas(NS)["blue"] is not None and cluster.kube.replicas(NS)["green"] is not None
    assert cluster.record()["history"][-1]["outcome"] == "aborted"


def test_abort_removes_a_preview_that_never_served(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    cluster.run("previewed", "2.0.0")
    result = cluster.run("aborted")
    assert result["aborted_slot"] == "green" and cluster.kube.replicas(NS)["green"] is None
    assert cluster.record()["pending_slot"] is None


# -- monitor (M5) ----------------------------------------------------------------------------------------


def test_m5_a_monitor_breach_rolls_back_to_the_slot_that_served(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    info = cluster.fails(AnalysisFailedError, "monitored", post_promotion_analysis=["boom"])
    assert "rolled back to slot blue" in info.value.hint and cluster.selector_slot() == "blue"
    assert cluster.status("green") == "failed" and cluster.record()["history"][-1]["outcome"] == "rolled_back"


def test_m5_a_prometheus_outage_leaves_traffic_alone(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.prometheus_answers[:] = [HttpUnreachable("connection refused")]
    writes_before = [w for w in cluster.kube.writes() if w[1] == "Service"]
    info = cluster.fails(ReleaseError, "monitored", post_promotion_analysis=["boom"])
    assert "traffic was left on slot green" in info.value.hint
    assert [w for w in cluster.kube.writes() if w[1] == "Service"] == writes_before
    assert cluster.status("green") == "served"


def test_m5_monitor_never_rolls_back_onto_a_slot_that_failed(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    cluster.fails(AnalysisFailedError, version="2.0.0", pre_promotion_analysis=["boom"], on_failure="keep")
    info = cluster.fails(AnalysisFailedError, "monitored", post_promotion_analysis=["boom"])
    assert "Traffic stays on slot blue" in info.value.hint and cluster.selector_slot() == "blue"


# -- the lock (M7, m4) and the lease lost mid-run (M12) ----------------------------------------------------


def test_m7_check_mode_with_lock_steal_reports_the_holder(cluster: Cluster) -> None:
    released(cluster, "1.0.0", "2.0.0")
    cluster.kube.patch("Lease", NS, "user-service-release", {"spec": {"holderIdentity": "ci job 7 run abc"}})
    with pytest.raises(LockHeldError):
        cluster.engine("rolled_back", check=True).run()
    plan = cluster.engine("rolled_back", check=True, lock_steal=True).run()
    assert plan["lock"]["holder"] == "ci job 7 run abc" and plan["plan"][-0]["action"] in ("steal", "patch", "scale")
    assert any(step["action"] == "steal" for step in plan["plan"])
    cluster.run("rolled_back", lock_steal=True)
    assert cluster.selector_slot() == "blue"


def test_m7_two_runs_with_one_identity_never_share_the_lease(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    first = cluster.engine(version="2.0.0")
    first.job.acquire()
    with pytest.raises(LockHeldError):
        cluster.engine(version="2.0.0").run()


def test_m7_a_rollback_takes_over_the_warm_window(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    raced: Dict[str, Any] = {}

    def rollback_during_the_delay(seconds: float) -> None:
        if not raced and cluster.record().get("draining"):
            raced["result"] = cluster.engine("rolled_back").run()

    cluster.clock.sleep = _hooked_sleep(cluster.clock, rollback_during_the_delay)  # type: ignore[method-assign]
    result = cluster.run(version="2.0.0", scale_down_delay=30)
    assert raced["result"]["instant"] is True and cluster.selector_slot() == "blue"
    assert "scaled_down" not in result and cluster.kube.replicas(NS)["blue"] == 2
    assert cluster.record().get("draining") in (None, {})


def test_m7_a_scale_down_left_by_a_dead_run_is_done_by_the_next(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    cluster.kube.kill_at = lambda verb, kind, name: verb == "patch" and kind == "Deployment"
    cluster.dies(version="2.0.0", scale_down_delay=30)
    assert cluster.record()["draining"]["slot"] == "blue" and cluster.kube.replicas(NS)["blue"] == 2
    cluster.run("previewed", "2.0.0")  # any next run: nothing to preview, but the due scale-down is done
    cluster.run(version="3.0.0")
    assert cluster.selector_slot() == "blue" and cluster.kube.replicas(NS)["green"] == 0


def _hooked_sleep(clock: FakeClock, hook: Any) -> Any:
    original = clock.sleep

    def sleep(seconds: float) -> None:
        hook(seconds)
        original(seconds)

    return sleep


def test_m12_a_lost_lease_says_who_holds_it_and_where_traffic_is(cluster: Cluster) -> None:
    released(cluster, "1.0.0")

    def thief() -> Any:
        cluster.kube.patch("Lease", NS, "user-service-release", {"spec": {"holderIdentity": "thief"}})
        return (200, prom_vector(0))

    cluster.prometheus_answers[:] = [thief]
    slow = {"checks": [dict(BOOM, samples=3, interval=15)]}
    info = cluster.fails(LockLostError, version="2.0.0", post_promotion_analysis=["boom"], analysis=slow)
    assert "thief" in info.value.hint and "green" in info.value.hint
    assert "reverted_at" not in info.engine.result and cluster.selector_slot() == "green"


# -- capacity follows the autoscaler (M8) ---------------------------------------------------------------------

HPA = {"minReplicas": 2, "maxReplicas": 10, "metrics": []}


def test_m8_the_new_slot_starts_at_the_size_that_serves_and_the_hpa_follows(cluster: Cluster) -> None:
    cluster.run(autoscaler=HPA)
    assert ("HorizontalPodAutoscaler", NS, "user-service-blue") in cluster.kube.objects
    hpa = cluster.kube.objects[("HorizontalPodAutoscaler", NS, "user-service-blue")]
    hpa["status"] = {"currentReplicas": 7, "desiredReplicas": 7}
    cluster.kube.patch("Deployment", NS, "user-service-blue", {"spec": {"replicas": 7}})
    result = cluster.run(version="2.0.0", autoscaler=HPA)
    assert result["replicas"] == 7 and cluster.kube.replicas(NS)["green"] == 7
    assert ("HorizontalPodAutoscaler", NS, "user-service-green") in cluster.kube.objects
    assert ("HorizontalPodAutoscaler", NS, "user-service-blue") not in cluster.kube.objects


def test_m8_after_a_flip_back_the_hpa_is_on_the_slot_that_serves(cluster: Cluster) -> None:
    cluster.run(autoscaler=HPA)
    cluster.fails(AnalysisFailedError, version="2.0.0", autoscaler=HPA, post_promotion_analysis=["boom"])
    assert ("HorizontalPodAutoscaler", NS, "user-service-blue") in cluster.kube.objects
    assert ("HorizontalPodAutoscaler", NS, "user-service-green") not in cluster.kube.objects


# -- moving from rolling (M9) -------------------------------------------------------------------------------------


def test_m9_the_first_slot_gets_no_traffic_before_its_gate(cluster: Cluster) -> None:
    rolling = {
        "metadata": {"name": "user-service"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "user-service"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "user-service"}}, "spec": {}},
        },
    }
    cluster.kube.put("Deployment", NS, rolling)
    seen_by_gate: List[Any] = []

    def at_gate(namespace: str, pod: str, *rest: Any) -> Any:
        seen_by_gate.append(
            sorted(p["metadata"]["name"] for p in cluster.kube.selected_pods(cluster.kube.objects[SERVICE]))
        )
        return cluster.kube._proxy(namespace, pod, *rest)

    cluster.kube.proxy = at_gate
    info = cluster.fails(AnalysisFailedError, version="1.0.0", post_promotion_analysis=["boom"])
    assert all(not any("blue" in name for name in names) for names in seen_by_gate[:1])
    assert "pods that served before" in info.value.hint
    selector = cluster.kube.selector(NS)
    assert "deploy.userservice.io/slot" not in selector and "pod-template-hash" in selector
    assert cluster.kube.serving_replicas(NS) == 2


# -- section 4 of issue 9: the plan's Service, the post-switch watch ---------------------------------------------------


def test_a_selector_edited_during_the_gate_stops_the_run_with_a_conflict(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    original = cluster.kube.proxy

    def hand_edit(*args: Any) -> Any:
        # Someone points the Service at every pod of the app by hand during the gate.
        cluster.kube.objects[SERVICE]["spec"]["selector"] = {"app.kubernetes.io/name": "user-service"}
        return original(*args)

    cluster.kube.proxy = hand_edit
    info = cluster.fails(ConflictError, version="2.0.0")
    assert "changed by someone else" in str(info.value)
    assert cluster.kube.selector(NS) == {"app.kubernetes.io/name": "user-service"}, "the hand edit was merged over"


def test_a_version_that_starts_crash_looping_after_the_switch_is_switched_back(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    original = cluster.kube.service_proxy_get

    def crash(namespace: str, service: str, *rest: Any, **kw: Any) -> Any:
        for pod in cluster.kube.pods:
            if pod["metadata"]["labels"].get("app.kubernetes.io/version") == "2.0.0":
                pod["status"]["containerStatuses"][0]["restartCount"] += 1
        return original(namespace, service, *rest, **kw)

    cluster.kube.service_proxy_get = crash  # type: ignore[method-assign]
    info = cluster.fails(GateFailedError, version="2.0.0", post_switch_watch=5)
    assert "unhealthy after the switch" in str(info.value)
    assert cluster.selector_slot() == "blue" and cluster.status("green") == "failed"
    assert info.engine.result["failure"]["check"] == "the serving pods became unhealthy after the switch"


def test_a_version_whose_rollout_fails_is_not_given_traffic_and_the_hint_says_so(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    roll_out = cluster.kube._roll_out

    def past_its_deadline(namespace: str, deployment: Dict[str, Any]) -> None:
        roll_out(namespace, deployment)
        if deployment["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/version") == "2.0.0":
            deployment["status"].update(
                availableReplicas=0,
                conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
            )

    cluster.kube._roll_out = past_its_deadline  # type: ignore[method-assign]
    info = cluster.fails(RolloutFailedError, version="2.0.0")
    assert cluster.selector_slot() == "blue"
    assert info.value.hint.endswith("; traffic was not moved")


def outage_during_the_health_answer(cluster: Cluster, api_server_away: bool) -> List[str]:
    """The post-switch watch's first GET through the Service proxy gets no answer; what the read after it sees
    decides whose silence it was. Returns the calls made, in order."""
    calls: List[str] = []
    proxy, read = cluster.kube.service_proxy_get, cluster.kube.read
    state = {"silent": 1 if api_server_away else 99}

    def silent_proxy(*args: Any, **kw: Any) -> Any:
        calls.append("proxy")
        on_green = cluster.kube.selector(NS).get("deploy.userservice.io/slot") == "green"
        # The endpoint verification's answer comes through; the silence starts with the watch.
        if on_green and calls.count("proxy green") >= 1 and state["silent"] > 0:
            state["silent"] -= 1
            raise ApiUnreachableError("no answer from the Kubernetes API server", seen="ReadTimeoutError")
        if on_green:
            calls.append("proxy green")
        return proxy(*args, **kw)

    def read_after(kind: str, namespace: str, name: str) -> Any:
        if kind == "Service" and calls and calls[-1] == "proxy" and state["silent"] == 0 and api_server_away:
            calls.append("slow read")
            cluster.clock.advance(6)  # the read waited for the API server to come back
            state["silent"] = -1
        return read(kind, namespace, name)

    cluster.kube.service_proxy_get = silent_proxy  # type: ignore[method-assign]
    cluster.kube.read = read_after  # type: ignore[method-assign]
    return calls


def test_m13_an_api_server_outage_during_the_post_switch_health_answer_is_not_a_verdict(cluster: Cluster) -> None:
    """The watch's GET through the Service proxy times out because the API server is gone (the read after it
    needs its retries): the GET is asked again once the API server is back, and the release completes."""
    released(cluster, "1.0.0")
    calls = outage_during_the_health_answer(cluster, api_server_away=True)
    result = cluster.run(version="2.0.0", post_switch_watch=3)
    assert "slow read" in calls and calls[calls.index("slow read") + 1 :][:2] == ["proxy", "proxy green"]
    assert result["active_slot"] == "green" and cluster.selector_slot() == "green"
    assert cluster.status("green") == "served"


def test_a_service_that_stops_answering_after_the_switch_is_switched_back(cluster: Cluster) -> None:
    """The same silence while the API server answers reads at once is the app's: two in a row fail the watch."""
    released(cluster, "1.0.0")
    outage_during_the_health_answer(cluster, api_server_away=False)
    info = cluster.fails(GateFailedError, version="2.0.0", post_switch_watch=5)
    assert "none within" in info.value.seen
    assert cluster.selector_slot() == "blue" and cluster.status("green") == "failed"


# -- one guard for every capacity write: a test per action ------------------------------------------------------------


@pytest.mark.parametrize(
    "action,setup,kwargs",
    [
        ("released", ("1.0.0",), {"version": "2.0.0"}),
        ("released", ("1.0.0",), {"version": "bad"}),
        ("promoted", ("1.0.0", "preview:2.0.0"), {}),
        ("rolled_back", ("1.0.0", "2.0.0"), {}),
        ("monitored", ("1.0.0", "2.0.0"), {"post_promotion_analysis": ["boom"]}),
        ("aborted", ("1.0.0", "preview:2.0.0"), {}),
        ("resume", ("1.0.0", "dies:2.0.0"), {"version": "2.0.0"}),
    ],
)
def test_no_action_scales_down_or_deletes_the_slot_the_service_selects(
    cluster: Cluster, action: str, setup: Any, kwargs: Dict[str, Any]
) -> None:
    """Each action's own capacity write meets a Service that (by a concurrent edit) selects that very slot."""
    for step in setup:
        if step.startswith("preview:"):
            cluster.run("previewed", step.split(":")[1])
        elif step.startswith("dies:"):
            cluster.kube.kill_on_service_proxy = True
            cluster.dies(version=step.split(":")[1])
        else:
            cluster.run(version=step)
    if kwargs.get("version") == "bad":
        cluster.kube.bad_versions.add("bad")
    engine = cluster.engine("released" if action == "resume" else action, **kwargs)
    guard = engine.capacity.refuse_if_serving
    flipped: List[Any] = []

    def worst_moment(name: str, deployment: Any, what: str) -> None:
        slot = name.rsplit("-", 1)[1]
        cluster.kube.objects[SERVICE]["spec"]["selector"] = {
            "app.kubernetes.io/name": "user-service",
            "deploy.userservice.io/slot": slot,
        }
        flipped.append((slot, cluster.kube.replicas(NS)[slot], what))
        guard(name, deployment, what)

    engine.capacity.refuse_if_serving = worst_moment  # type: ignore[method-assign]
    with pytest.raises(ReleaseError) as info:
        engine.run()
    assert flipped, "the action made no guarded write"
    slot, replicas, what = flipped[0]
    refused = (
        isinstance(info.value, ServingDeploymentError)
        or isinstance(info.value.__cause__, ServingDeploymentError)
        or any("refused to" in w for w in engine.warnings)
    )
    assert refused, "the guard did not refuse to %s slot %s" % (what, slot)
    assert cluster.kube.replicas(NS)[slot] == replicas, "the slot the Service selects lost capacity"


def test_the_guard_refuses_directly(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    engine = cluster.engine()
    with pytest.raises(ServingDeploymentError) as info:
        engine.capacity.scale("user-service-blue", 0)
    assert "serves traffic" in str(info.value) and "deploy.userservice.io/slot" in str(info.value)
    with pytest.raises(ServingDeploymentError):
        engine.capacity.delete("user-service-blue")
    assert cluster.kube.replicas(NS)["blue"] == 2


def test_a_lease_lost_before_the_scale_down_leaves_it_to_the_next_run(cluster: Cluster) -> None:
    released(cluster, "1.0.0")
    cluster.kube.kill_at = None
    engine = cluster.engine(version="2.0.0")
    real = engine.drain

    def thief_then_drain(slot: str, switched: float) -> None:
        cluster.kube.patch("Lease", NS, "user-service-release", {"spec": {"holderIdentity": "thief"}})
        real(slot, switched)

    engine.drain = thief_then_drain  # type: ignore[method-assign]
    result = engine.run()
    assert cluster.selector_slot() == "green" and cluster.kube.replicas(NS)["blue"] == 2
    assert "scaled_down" not in result and any("thief" in w for w in engine.warnings)
    assert cluster.record()["draining"]["slot"] == "blue"


def test_m8_a_rollback_moves_the_existing_hpa_with_traffic(cluster: Cluster) -> None:
    cluster.run(autoscaler=HPA)
    cluster.run(version="2.0.0", autoscaler=HPA)
    cluster.run("rolled_back")  # a rollback renders no spec: the live HPA's own spec follows
    assert ("HorizontalPodAutoscaler", NS, "user-service-blue") in cluster.kube.objects
    assert ("HorizontalPodAutoscaler", NS, "user-service-green") not in cluster.kube.objects
    target = cluster.kube.objects[("HorizontalPodAutoscaler", NS, "user-service-blue")]["spec"]["scaleTargetRef"]
    assert target["name"] == "user-service-blue"


def test_release_info_says_what_a_rollback_would_do(cluster: Cluster) -> None:
    from ansible_collections.userservice.deploy.plugins.module_utils.release_view import read_release

    def view() -> Dict[str, Any]:
        return read_release(
            cluster.kube, {"namespace": NS, "app": "user-service", "history_limit": 5}, cluster.clock.now()
        )

    released(cluster, "1.0.0")
    assert view()["next_rollback"] == "refused: no previous slot to roll back to"
    cluster.run(version="2.0.0", scale_down_delay=-1)
    assert view()["next_rollback"] == "switch to slot blue (version 1.0.0), instant: it is warm"
    assert view()["slots"]["green"]["status"] == "served"
    cluster.run("rolled_back")
    assert view()["next_rollback"].startswith("no-op: slot green (version 2.0.0) was already rolled back from")
    cluster.run("previewed", "3.0.0")
    assert "previewed release" in view()["next_rollback"]


def test_a_new_template_with_the_same_image_must_prove_itself_again(cluster: Cluster) -> None:
    """Same digest, other labels or env: the slot's earlier status does not carry over (abort may remove it)."""
    cluster.run(version="1.0.0")
    cluster.run(version="2.0.0", scale_down_delay=-1)
    cluster.run("rolled_back", scale_down_delay=-1)
    cluster.run("previewed", "3.0.0", image=digest("2.0.0"))
    assert cluster.status("green") == "unverified"
    assert cluster.run("aborted")["aborted_slot"] == "green"
