# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary releases through the real engine on the simulated cluster: steps, routers, failures, resumes."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_args import BLUEGREEN_OPTIONS
from ansible_collections.userservice.deploy.plugins.module_utils.canary import Canary
from ansible_collections.userservice.deploy.plugins.module_utils.canary_args import CANARY_OPTIONS, validate_params
from ansible_collections.userservice.deploy.plugins.module_utils.capacity import ServingDeploymentError
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    InvalidArgumentError,
    InvalidStateError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LOCK_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import HttpResponse, PrometheusClient
from ansible_collections.userservice.deploy.plugins.module_utils.state import DATA_KEY
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.cluster_sim import Killed, SimKube
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock, prom_vector

NS = "user-service-prod"
TRACK = "deploy.userservice.io/track"
TRAFFIC = "deploy.userservice.io/traffic"
CHECKS = [
    {"name": "good", "type": "prometheus", "query": "good_metric", "max": 0.5, "samples": 1, "interval": 1},
    {"name": "bad", "type": "prometheus", "query": "bad_metric", "max": 0.5, "samples": 1, "interval": 1},
    {
        "name": "quiet",
        "type": "prometheus",
        "query": "quiet_metric",
        "max": 0.5,
        "samples": 1,
        "interval": 1,
        "on_no_data": "inconclusive",
    },
]


def digest(version: str) -> str:
    return "127.0.0.1:5000/user-service@sha256:" + (version.replace(".", "") * 64)[:64].ljust(64, "0")


def params(version: str = "1.0.0", **override: Any) -> Dict[str, Any]:
    out = {key: spec.get("default") for key, spec in CANARY_OPTIONS.items()}
    out.update({key: spec.get("default") for key, spec in LOCK_ARG_SPEC.items()})
    out.update(
        namespace=NS,
        image=digest(version),
        version=version,
        replicas=2,
        pod_template={"metadata": {"labels": {}}, "spec": {"containers": [{"name": "user-service", "image": "x"}]}},
        health={"consecutive": 1, "interval": 1},
        analysis={"checks": CHECKS},
        steps=[{"weight": 25}, {"analysis": ["good"]}, {"weight": 50}, {"analysis": ["good"]}],
    )
    out.update(override)
    return out


class Prometheus:
    """Answers by query: good_metric 0, bad_metric 1, quiet_metric no data."""

    def __init__(self) -> None:
        self.values = {"good_metric": [0], "bad_metric": [1], "quiet_metric": []}
        self.on_query: Optional[Any] = None

    def __call__(self, url: str, headers: Dict[str, str], timeout: float, validate_certs: bool) -> HttpResponse:
        query = parse_qs(urlsplit(url).query)["query"][0]
        if self.on_query:
            self.on_query(query)
        return HttpResponse(200, json.dumps(prom_vector(*self.values[query])).encode())


class Cluster:
    def __init__(self) -> None:
        self.kube = SimKube()
        self.clock = FakeClock()
        self.prometheus = Prometheus()
        self.kube.put(
            "Service",
            NS,
            {
                "metadata": {"name": "user-service"},
                "spec": {"selector": {"app.kubernetes.io/name": "user-service"}, "ports": [{"port": 80}]},
            },
        )

    def engine(self, state: str = "released", version: str = "1.0.0", check: bool = False, **kw: Any) -> Canary:
        p = params(version, state=state, **kw)
        steps = validate_params(p)
        return Canary(
            self.kube,
            p,
            steps,
            check_mode=check,
            holder="tester",
            clock=self.clock,
            prometheus=PrometheusClient("http://prometheus.test:9090", http_get=self.prometheus),
        )

    def run(self, state: str = "released", version: str = "1.0.0", **kw: Any) -> Dict[str, Any]:
        self.kube.revive()
        return self.engine(state, version, **kw).run()

    def fails(self, error: Any, state: str = "released", version: str = "1.0.0", **kw: Any) -> Any:
        self.kube.revive()
        engine = self.engine(state, version, **kw)
        with pytest.raises(error) as info:
            engine.run()
        info.engine = engine
        return info

    def record(self) -> Dict[str, Any]:
        return json.loads(self.kube.objects[("ConfigMap", NS, "user-service-release")]["data"][DATA_KEY])

    def deployment(self, track: str) -> Optional[Dict[str, Any]]:
        return self.kube.objects.get(("Deployment", NS, "user-service-" + track))

    def versions_serving(self) -> List[str]:
        service = self.kube.objects[("Service", NS, "user-service")]
        return sorted(p["metadata"]["labels"]["app.kubernetes.io/version"] for p in self.kube.selected_pods(service))


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_the_first_release_becomes_the_stable_track(cluster: Cluster) -> None:
    result = cluster.run()
    assert result["status"] == "released" and cluster.deployment("canary") is None
    assert cluster.kube.selector(NS) == {"app.kubernetes.io/name": "user-service", TRAFFIC: "on"}
    assert cluster.versions_serving() == ["1.0.0", "1.0.0"]
    assert cluster.record()["slots"]["stable"]["status"] == "served"
    again = cluster.run()
    assert again["changed"] is False and again["status"] == "unchanged"


def test_a_good_canary_walks_every_step_to_promotion(cluster: Cluster) -> None:
    cluster.run()
    shares: List[List[str]] = []
    cluster.prometheus.on_query = lambda query: shares.append(cluster.versions_serving())
    result = cluster.run(version="2.0.0")
    assert result["status"] == "promoted"
    # 2 stable pods: 25% needs 1 canary pod (a 33% share), 50% needs 2 (50%); stable is never inflated.
    assert [(w["weight"], w["share"], w["replicas"]) for w in result["weights"]] == [
        (25, 33, {"stable": 2, "canary": 1}),
        (50, 50, {"stable": 2, "canary": 2}),
    ]
    assert shares[0] == ["1.0.0", "1.0.0", "2.0.0"] and shares[1] == ["1.0.0", "1.0.0", "2.0.0", "2.0.0"]
    assert cluster.deployment("canary") is None
    assert cluster.versions_serving() == ["2.0.0", "2.0.0"]
    state = cluster.record()
    assert state["slots"]["stable"]["version"] == "2.0.0" and state["canary"]["done"] is True
    again = cluster.run(version="2.0.0")
    assert again["changed"] is False


def test_canary_pods_get_no_traffic_before_their_gate(cluster: Cluster) -> None:
    cluster.run()
    seen_at_gate: List[List[str]] = []
    original = cluster.kube.proxy

    def probe(namespace: str, target: str, *rest: Any) -> Any:
        if "canary" in target:
            seen_at_gate.append(cluster.versions_serving())
        return original(namespace, target, *rest)

    cluster.kube.proxy = probe
    cluster.run(version="2.0.0")
    assert seen_at_gate and "2.0.0" not in seen_at_gate[0]


def test_a_bad_canary_is_aborted_and_stable_is_untouched(cluster: Cluster) -> None:
    cluster.run()
    stable_before = json.dumps(cluster.deployment("stable")["spec"], sort_keys=True)
    steps = [{"weight": 25}, {"analysis": ["bad"]}, {"weight": 50}]
    info = cluster.fails(AnalysisFailedError, version="2.0.0", steps=steps)
    assert "aborted at step 1" in info.value.hint
    failure = info.engine.result["failure"]
    assert failure["check"] == "bad" and failure["query"] == "bad_metric" and failure["value"] == 1.0
    assert cluster.deployment("canary")["spec"]["replicas"] == 0
    assert json.dumps(cluster.deployment("stable")["spec"], sort_keys=True) == stable_before
    assert cluster.versions_serving() == ["1.0.0", "1.0.0"]
    assert cluster.record()["slots"]["canary"]["status"] == "failed"


def test_freeze_holds_the_weights_then_promote_ships_it(cluster: Cluster) -> None:
    cluster.run()
    steps = [{"weight": 25}, {"analysis": ["bad"]}, {"weight": 50}]
    info = cluster.fails(AnalysisFailedError, version="2.0.0", steps=steps, on_failure="freeze")
    assert "frozen at weight 25" in info.value.hint
    assert cluster.versions_serving() == ["1.0.0", "1.0.0", "2.0.0"]
    frozen = cluster.fails(InvalidStateError, version="2.0.0", steps=steps, on_failure="freeze")
    assert "frozen" in str(frozen.value)
    assert cluster.run("promoted", steps=steps)["status"] == "promoted"
    assert cluster.versions_serving() == ["2.0.0", "2.0.0"]


def test_an_approval_pause_ends_the_run_and_promote_continues(cluster: Cluster) -> None:
    cluster.run()
    steps = [{"weight": 25}, {"pause": "approval"}, {"weight": 50}, {"analysis": ["good"]}]
    paused = cluster.run(version="2.0.0", steps=steps)
    assert paused["status"] == "paused" and paused["waiting"] == "approval" and paused["step"] == 2
    assert cluster.record()["phase"] == "paused"
    still = cluster.run(version="2.0.0", steps=steps)
    assert still["status"] == "paused" and still["changed"] is False
    promoted = cluster.run("promoted", steps=steps)
    assert promoted["status"] == "promoted" and [w["weight"] for w in promoted["weights"]] == [50]


def test_abort_after_an_approval_pause_takes_the_weight_to_zero(cluster: Cluster) -> None:
    cluster.run()
    steps = [{"weight": 25}, {"pause": "approval"}, {"weight": 50}]
    cluster.run(version="2.0.0", steps=steps)
    aborted = cluster.run("aborted")
    assert aborted["status"] == "aborted"
    assert cluster.versions_serving() == ["1.0.0", "1.0.0"] and cluster.deployment("canary")["spec"]["replicas"] == 0
    assert cluster.run("aborted")["status"] == "unchanged"


def test_no_data_follows_each_policy(cluster: Cluster) -> None:
    cluster.run()
    quiet = [{"weight": 25}, {"analysis": ["quiet"]}, {"weight": 50}]
    info = cluster.fails(AnalysisFailedError, version="2.0.0", steps=quiet)
    assert cluster.record()["canary"]["waiting"] == "inconclusive analysis" and "holds at weight 25" in info.value.hint
    cluster.run("aborted")
    checks = [dict(CHECKS[2], on_no_data="fail")]
    cluster.fails(AnalysisFailedError, version="3.0.0", steps=quiet, analysis={"checks": checks})
    assert cluster.record()["slots"]["canary"]["status"] == "failed"
    checks = [dict(CHECKS[2], on_no_data="pass")]
    assert cluster.run(version="4.0.0", steps=quiet, analysis={"checks": checks})["status"] == "promoted"


def test_a_run_killed_mid_step_resumes_there_with_no_weight_jump(cluster: Cluster) -> None:
    cluster.run()
    steps = [{"weight": 25}, {"pause": 30}, {"weight": 50}, {"analysis": ["good"]}]
    cluster.kube.kill_at = lambda verb, kind, name: verb == "read" and cluster.clock.elapsed > 10
    with pytest.raises(Killed):
        cluster.engine(version="2.0.0", steps=steps).run()
    assert cluster.record()["canary"]["next"] == 1 and cluster.record()["canary"]["weight"] == 25
    canary_pods = [p["metadata"]["name"] for p in cluster.kube.pods if p["metadata"]["labels"].get(TRACK) == "canary"]
    cluster.kube.revive()
    cluster.clock.advance(61)
    watched: List[int] = []
    cluster.prometheus.on_query = lambda q: watched.append(
        len([p for p in cluster.kube.pods if p["metadata"]["labels"].get(TRACK) == "canary"])
    )
    result = cluster.run(version="2.0.0", steps=steps)
    assert result["resumed"] is True and result["status"] == "promoted"
    assert [w["weight"] for w in result["weights"]] == [50]  # from the recorded step, not from 0
    assert watched == [2]  # no duplicate pods: the one canary pod kept, one added for 50%
    assert canary_pods  # the dead run's pod was reused (not deleted and recreated)


def test_stable_follows_its_autoscaler_and_is_never_inflated(cluster: Cluster) -> None:
    cluster.run(autoscaler={"minReplicas": 2, "maxReplicas": 10, "metrics": []})
    hpa = cluster.kube.objects[("HorizontalPodAutoscaler", NS, "user-service-stable")]
    hpa["status"] = {"currentReplicas": 6, "desiredReplicas": 6}
    cluster.kube.patch("Deployment", NS, "user-service-stable", {"spec": {"replicas": 6}})
    result = cluster.run(version="2.0.0", steps=[{"weight": 25}, {"analysis": ["good"]}])
    assert result["weights"][0]["replicas"] == {"stable": 6, "canary": 2}
    assert cluster.deployment("stable")["spec"]["replicas"] == 6


def test_the_guard_refuses_to_scale_down_or_delete_the_stable_track(cluster: Cluster) -> None:
    cluster.run()
    engine = cluster.engine(version="2.0.0")
    with pytest.raises(ServingDeploymentError):
        engine.capacity.scale("user-service-stable", 0)
    with pytest.raises(ServingDeploymentError):
        engine.capacity.delete("user-service-stable")
    with pytest.raises(ServingDeploymentError):
        engine.capacity.promote(engine.stable_from(cluster.deployment("stable")), None)


def test_check_mode_plans_every_step_and_writes_nothing(cluster: Cluster) -> None:
    cluster.run()
    writes = len(cluster.kube.writes())
    steps = [{"weight": 10}, {"pause": 60}, {"analysis": ["good"]}, {"weight": 50}, {"pause": "approval"}]
    plan = cluster.engine(version="2.0.0", check=True, steps=steps).run()
    described = [(s["action"], s["name"]) for s in plan["plan"]]
    assert described[:3] == [
        ("create", "user-service-canary"),
        ("wait", "user-service-canary"),
        ("gate", "user-service-canary"),
    ]
    assert ("route", "step 0: weight 10") in described and ("pause", "step 4: pause for approval") in described
    assert described[-1] == ("delete", "user-service-canary")
    assert plan["diff"]["after"] and len(cluster.kube.writes()) == writes


@pytest.mark.parametrize("router", ["gateway", "istio", "nginx"])
def test_object_routers_carry_the_weight_of_each_step(cluster: Cluster, router: str) -> None:
    options = {"type": router, "port": 80, "header": {"name": "X-Canary", "value": "always"}}
    if router == "gateway":
        options["gateway"] = {"name": "platform", "namespace": "gateway-system"}
    if router == "nginx":
        cluster.kube.put(
            "Ingress",
            NS,
            {
                "metadata": {"name": "user-service"},
                "spec": {
                    "rules": [
                        {
                            "host": "u.example",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": "user-service", "port": {"number": 80}}},
                                    }
                                ]
                            },
                        }
                    ]
                },
            },
        )
    cluster.run(router=options)
    weights: List[Optional[int]] = []
    engine = cluster.engine(version="2.0.0", router=options)
    cluster.prometheus.on_query = lambda q: weights.append(engine.router.observe())
    result = engine.run()
    assert result["status"] == "promoted" and weights == [25, 50]
    assert engine.router.observe() == 0
    route = engine.router.desired(0)
    assert json.dumps(route).count("X-Canary") + json.dumps(route).count("canary-by-header") >= 1
    assert cluster.kube.selector(NS) == {"app.kubernetes.io/name": "user-service", TRACK: "stable"}


BAD = [
    ("steps", {"steps": []}),
    ("steps[0]", {"steps": [{"weight": 10, "pause": 5}]}),
    ("steps[0]", {"steps": [{"speed": 10}]}),
    ("steps[0].weight", {"steps": [{"weight": 0}]}),
    ("steps[0].weight", {"steps": [{"weight": 101}]}),
    ("steps[0].weight", {"steps": [{"weight": "ten"}]}),
    ("steps[1].weight", {"steps": [{"weight": 50}, {"weight": 25}]}),
    ("steps[1].weight", {"steps": [{"weight": 50}, {"weight": 50}]}),
    ("steps[1].pause", {"steps": [{"weight": 5}, {"pause": -1}]}),
    ("steps[1].pause", {"steps": [{"weight": 5}, {"pause": "forever"}]}),
    ("steps[1].pause", {"steps": [{"weight": 5}, {"pause": 90000}]}),
    ("steps[1].analysis", {"steps": [{"weight": 5}, {"analysis": ["nope"]}]}),
    ("steps[1].analysis", {"steps": [{"weight": 5}, {"analysis": []}]}),
    ("steps[1].analysis", {"steps": [{"weight": 5}, {"analysis": ["good", "good"]}]}),
    ("steps", {"steps": [{"pause": 5}, {"analysis": ["good"]}]}),
    ("steps[0].pause", {"steps": [{"pause": "approval"}, {"weight": 5}]}),
    ("router.port", {"router": {"type": "gateway", "gateway": {"name": "g"}}}),
    ("router.gateway", {"router": {"type": "gateway", "port": 80}}),
    ("router.gateway", {"router": {"type": "gateway", "port": 80, "gateway": {"name": "g", "color": "red"}}}),
    ("router.port", {"router": {"type": "istio", "port": "http"}}),
    ("router.header", {"router": {"type": "gateway", "port": 80, "gateway": {"name": "g"}, "header": {"name": "X"}}}),
    ("router.cookie", {"router": {"type": "nginx", "port": 80, "cookie": "bad cookie"}}),
    ("router.header", {"router": {"type": "replicas", "header": {"name": "X", "value": "1"}}}),
    ("image", {"image": "127.0.0.1:5000/user-service:2.0.0"}),
    ("version", {"version": "2.0 beta"}),
    ("namespace", {"namespace": "Prod_NS"}),
    ("skip_steps", {"skip_steps": True}),
    ("replicas", {"replicas": 0}),
    ("post_promotion_analysis", {"state": "monitored"}),
    ("post_promotion_analysis", {"state": "monitored", "post_promotion_analysis": ["nope"]}),
    ("post_promotion_analysis", {"state": "monitored", "post_promotion_analysis": ["good", "good"]}),
]


@pytest.mark.parametrize("option,override", BAD, ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD)])
def test_bad_input_names_the_option_before_any_call(option: str, override: Dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_params(dict(params("2.0.0"), **override))
    assert option in str(info.value)


def test_the_canary_refuses_a_namespace_running_blue_green(cluster: Cluster) -> None:
    cluster.kube.put(
        "Deployment",
        NS,
        {"metadata": {"name": "user-service-blue"}, "spec": {"replicas": 1, "template": {"metadata": {"labels": {}}}}},
    )
    info = cluster.fails(InvalidStateError)
    assert "another strategy" in str(info.value) and "user-service-blue" in str(info.value)


def test_options_shared_with_bluegreen_are_the_same(cluster: Cluster) -> None:
    for option in ("namespace", "app", "image", "version", "pod_template", "replicas", "autoscaler"):
        assert CANARY_OPTIONS[option] == BLUEGREEN_OPTIONS[option], option
    assert issubclass(AnalysisFailedError, ReleaseError)


def test_release_info_shows_canary_progress_and_the_next_command(cluster: Cluster) -> None:
    from ansible_collections.userservice.deploy.plugins.module_utils.release_view import read_release

    def view() -> Dict[str, Any]:
        return read_release(
            cluster.kube, {"namespace": NS, "app": "user-service", "history_limit": 5}, cluster.clock.now()
        )

    cluster.run()
    assert view()["strategy"] == "canary" and view()["canary"]["status"] == "idle" and view()["consistent"]
    steps = [{"weight": 25}, {"pause": "approval"}, {"weight": 50}]
    cluster.run(version="2.0.0", steps=steps)
    progress = view()["canary"]
    assert progress["status"] == "paused" and progress["weight"] == 25 and progress["step"] == 2
    assert progress["next_command"].startswith("promote.yml continues with step 2 (weight 50)")
    assert view()["tracks"]["canary"]["status"] == "unverified"


class Events:
    """A Notifier stand-in at its boundary: records events; one event 'fails' to show it only warns."""

    def __init__(self, failing: str = "") -> None:
        self.sent: List[str] = []
        self.failing = failing

    def send(self, event: str, data: Optional[Dict[str, Any]] = None) -> Optional[str]:
        self.sent.append(event)
        return "webhook http://hooks.test did not answer" if event == self.failing else None


def test_each_event_is_notified_and_a_dead_webhook_only_warns(cluster: Cluster) -> None:
    cluster.run()
    engine = cluster.engine(version="2.0.0")
    engine.notifier = Events(failing="promoted")
    result = engine.run()
    assert result["status"] == "promoted" and engine.notifier.sent == ["step", "step", "step", "step", "promoted"]
    assert any("did not answer" in w for w in engine.warnings)
    bad = cluster.engine(version="3.0.0", steps=[{"weight": 25}, {"analysis": ["bad"]}])
    bad.notifier = Events()
    with pytest.raises(AnalysisFailedError):
        bad.run()
    assert bad.notifier.sent == ["step", "aborted", "failed"]


def prometheus_down(cluster: Cluster) -> List[Dict[str, Any]]:
    """Every query refused from now on; returns checks that give up at the first error."""
    from ansible_collections.userservice.deploy.plugins.module_utils.http_probe import HttpUnreachable

    def down(query: str) -> None:
        raise HttpUnreachable("connection refused")

    cluster.prometheus.on_query = down
    return [dict(CHECKS[0], error_limit=1, samples=1)]


def test_a_prometheus_outage_holds_the_weights_instead_of_judging(cluster: Cluster) -> None:
    cluster.run()
    checks = prometheus_down(cluster)
    info = cluster.fails(
        AnalysisFailedError,
        version="2.0.0",
        steps=[{"weight": 25}, {"analysis": ["good"]}],
        analysis={"checks": checks},
    )
    assert (
        cluster.record()["canary"]["waiting"] == "analysis could not measure"
        and "holds at weight 25" in info.value.hint
    )
    assert cluster.versions_serving() == ["1.0.0", "1.0.0", "2.0.0"]  # nothing rolled back on a measuring outage


def test_the_monitor_judges_the_stable_track_and_never_moves_traffic(cluster: Cluster) -> None:
    cluster.run()
    assert cluster.run(version="2.0.0")["status"] == "promoted"
    spec = json.dumps(cluster.deployment("stable")["spec"], sort_keys=True)
    queries: List[str] = []
    cluster.prometheus.on_query = queries.append
    ok = cluster.run("monitored", post_promotion_analysis=["good"])
    assert ok["status"] == "monitored" and ok["verdicts"]["post-promotion"]["verdict"] == "pass"
    # No data to judge warns, as blue/green's monitor does; only a verdict fails the run.
    engine = cluster.engine("monitored", post_promotion_analysis=["quiet"])
    assert engine.run()["status"] == "monitored" and "inconclusive" in " ".join(engine.warnings)
    info = cluster.fails(AnalysisFailedError, "monitored", post_promotion_analysis=["bad"])
    assert info.engine.result["breach"]["check"] == "bad"
    # The hint names the release the promotion replaced, the way back; nothing was written to the tracks.
    assert "user_service_version=1.0.0" in info.value.hint and digest("1.0.0") in info.value.hint
    assert json.dumps(cluster.deployment("stable")["spec"], sort_keys=True) == spec
    assert cluster.deployment("canary") is None and cluster.versions_serving() == ["2.0.0", "2.0.0"]
    record = cluster.record()
    assert (
        record["slots"]["stable"]["status"] == "failed"
        and "monitor breach" in record["slots"]["stable"]["status_reason"]
    )
    assert record["history"][-1]["outcome"] == "failed" and record["last_failure"]["check"] == "bad"


def test_a_monitor_that_cannot_measure_marks_nothing(cluster: Cluster) -> None:
    cluster.run()
    checks = prometheus_down(cluster)
    info = cluster.fails(
        AnalysisFailedError, "monitored", post_promotion_analysis=["good"], analysis={"checks": checks}
    )
    assert "could not judge" in info.value.hint and "breach" not in info.engine.result
    assert cluster.record()["slots"]["stable"]["status"] == "served"


def test_the_monitor_plans_in_check_mode_and_writes_nothing(cluster: Cluster) -> None:
    cluster.run()
    before = json.dumps(cluster.record(), sort_keys=True)
    plan = cluster.engine("monitored", check=True, post_promotion_analysis=["bad"]).run()
    assert [step["action"] for step in plan["plan"]] == ["analyse"]
    assert json.dumps(cluster.record(), sort_keys=True) == before
