# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""release_info through its main(), with the KubeClient replaced by the in-memory fake."""

from __future__ import annotations

import datetime
import json
from typing import Any, Dict, Optional

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.userservice.deploy.plugins.module_utils import state as release_state
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import isoformat
from ansible_collections.userservice.deploy.plugins.modules import release_info
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeKube

NS = "user-service-prod"
APP = "user-service"
IMAGE_V1 = "registry.example/user-service@sha256:" + "1" * 64
IMAGE_V2 = "registry.example/user-service@sha256:" + "2" * 64
T0 = "2026-01-02T03:04:05.000000Z"


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    fake = FakeKube()
    monkeypatch.setattr(KubeClient, "from_params", classmethod(lambda cls, params, dry_run=False: fake))
    return fake


def run_module(capsys: pytest.CaptureFixture[str], **args: Any) -> Dict[str, Any]:
    params = dict({"namespace": NS}, **args)
    with patch_module_args(params), pytest.raises(SystemExit) as exit_info:
        release_info.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = exit_info.value.code
    return result


def add_service(kube: FakeKube, slot: Optional[str], name: str = APP) -> None:
    selector = {"app.kubernetes.io/name": APP}
    if slot:
        selector["deploy.userservice.io/slot"] = slot
    kube.put("Service", NS, {"metadata": {"name": name}, "spec": {"selector": selector}})


def add_deployment(kube: FakeKube, slot: str, image: str, version: str, replicas: int, ready: int) -> None:
    kube.put(
        "Deployment",
        NS,
        {
            "metadata": {"name": "%s-%s" % (APP, slot), "labels": {"app.kubernetes.io/version": version}},
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": APP, "image": image}]}},
            },
            "status": {"readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": replicas},
        },
    )


def released(slot: str, image: str, version: str, previous: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A record after a finished release to ``slot``, built with the engine's own transitions."""
    state = previous or release_state.new_state(APP)
    state = release_state.begin_run(
        state, run_id="run-" + slot, action="release", holder="ci", now=T0, target_slot=slot
    )
    state = release_state.set_slot(state, slot, image=image, now=T0, version=version, config_refs=["cfg-" + version])
    state = release_state.record_switch(state, slot, now=T0)
    return release_state.finish_run(state, "done", now=T0)


def add_record(kube: FakeKube, state: Dict[str, Any]) -> None:
    kube.put("ConfigMap", NS, {"metadata": {"name": APP + "-release"}, "data": {"state.json": json.dumps(state)}})


def add_lease(kube: FakeKube, holder: Optional[str], renewed_seconds_ago: float, duration: int = 60) -> None:
    renewed = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=renewed_seconds_ago)
    spec: Dict[str, Any] = {"leaseDurationSeconds": duration, "renewTime": isoformat(renewed), "acquireTime": T0}
    if holder:
        spec["holderIdentity"] = holder
    kube.put("Lease", NS, {"metadata": {"name": APP + "-release"}, "spec": spec})


def two_releases(kube: FakeKube) -> None:
    add_service(kube, "green")
    add_deployment(kube, "blue", IMAGE_V1, "1.0.0", 0, 0)
    add_deployment(kube, "green", IMAGE_V2, "2.0.0", 3, 2)
    add_record(kube, released("green", IMAGE_V2, "2.0.0", released("blue", IMAGE_V1, "1.0.0")))


def test_empty_namespace_reports_nothing_released(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys)
    assert result["rc"] == 0
    assert result["changed"] is False
    assert result["exists"] is False
    assert result["active_slot"] is None
    assert result["consistent"] is True
    assert result["service"]["exists"] is False
    assert result["lock"] == {
        "name": APP + "-release",
        "exists": False,
        "holder": None,
        "held": False,
        "expired": False,
    }
    assert result["slots"]["blue"]["exists"] is False
    assert kube.writes() == []


def test_two_releases_describe_slots_images_and_history(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    result = run_module(capsys)
    assert result["active_slot"] == "green"
    assert result["recorded_active_slot"] == "green"
    assert result["consistent"] is True, result["problems"]
    assert result["images"] == {"blue": IMAGE_V1, "green": IMAGE_V2}
    green = result["slots"]["green"]
    assert (green["active"], green["digest"], green["version"], green["replicas"], green["ready"]) == (
        True,
        "sha256:" + "2" * 64,
        "2.0.0",
        3,
        2,
    )
    assert green["config_refs"] == ["cfg-2.0.0"]
    assert result["slots"]["blue"]["active"] is False
    assert result["revision"] == 2
    assert result["phase"] == "done"
    assert result["in_flight"] is False and result["run"] is None
    assert [entry["active_slot"] for entry in result["history"]] == ["blue", "green"]
    assert kube.writes() == []


def test_history_is_bounded_by_history_limit(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    assert [e["active_slot"] for e in run_module(capsys, history_limit=1)["history"]] == ["green"]
    assert run_module(capsys, history_limit=0)["history"] == []


def test_selector_and_record_disagree(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    kube.patch("Service", NS, APP, {"spec": {"selector": {"deploy.userservice.io/slot": "blue"}}})
    result = run_module(capsys)
    assert result["active_slot"] == "blue"
    assert result["recorded_active_slot"] == "green"
    assert result["consistent"] is False
    assert "the Service selects slot blue but the state record says green" in result["problems"]
    assert "the active slot blue is scaled to 0" in result["problems"]


def test_deployment_image_differs_from_record(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    add_deployment(kube, "green", IMAGE_V1, "1.0.0", 3, 3)
    result = run_module(capsys)
    assert result["consistent"] is False
    assert result["problems"] == [
        "slot green runs sha256:%s but the state record says sha256:%s" % ("1" * 64, "2" * 64)
    ]


def test_in_flight_run_is_returned_and_not_a_disagreement(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    state, _version = release_state.StateStore(kube, NS, APP).read()
    state = release_state.begin_run(
        state, run_id="r3", action="release", holder="awx job 7", now=T0, target_slot="blue"
    )
    add_record(kube, state)
    # The run died between its selector patch and recording the switch: the next run resumes it.
    kube.patch("Service", NS, APP, {"spec": {"selector": {"deploy.userservice.io/slot": "blue"}}})
    add_deployment(kube, "blue", IMAGE_V1, "1.0.0", 3, 3)
    result = run_module(capsys)
    assert result["active_slot"] == "blue"
    assert result["in_flight"] is True
    assert result["phase"] == "deploying"
    assert (result["run"]["id"], result["run"]["holder"], result["run"]["target_slot"]) == ("r3", "awx job 7", "blue")
    assert result["consistent"] is True


def test_pending_slot_and_preview_service(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    state, _version = release_state.StateStore(kube, NS, APP).read()
    add_record(kube, release_state.set_pending(state, "blue", now=T0))
    add_service(kube, "blue", name=APP + "-preview")
    result = run_module(capsys)
    assert result["pending_slot"] == "blue"
    assert result["slots"]["blue"]["pending"] is True
    assert result["preview"] == {
        "name": APP + "-preview",
        "slot": "blue",
        "selector": {"app.kubernetes.io/name": APP, "deploy.userservice.io/slot": "blue"},
    }


def test_live_lock_names_holder_and_time_left(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    add_lease(kube, "https://ci.example/run/9", renewed_seconds_ago=10, duration=60)
    lock = run_module(capsys)["lock"]
    assert (lock["holder"], lock["held"], lock["expired"]) == ("https://ci.example/run/9", True, False)
    assert 45 < lock["seconds_left"] <= 50
    assert lock["duration_seconds"] == 60


def test_lock_of_a_dead_run_is_expired(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    add_lease(kube, "root@laptop pid 1", renewed_seconds_ago=120, duration=60)
    lock = run_module(capsys)["lock"]
    assert (lock["held"], lock["expired"], lock["seconds_left"]) == (False, True, 0)


def test_released_lock_is_free(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    add_lease(kube, None, renewed_seconds_ago=5)
    lock = run_module(capsys)["lock"]
    assert (lock["exists"], lock["holder"], lock["held"], lock["expired"], lock["expires_at"]) == (
        True,
        None,
        False,
        False,
        None,
    )


def test_check_mode_reads_the_same_and_writes_nothing(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    two_releases(kube)
    normal = run_module(capsys)
    checked = run_module(capsys, _ansible_check_mode=True)
    assert checked["changed"] is False
    assert {k: v for k, v in checked.items() if k != "lock"} == {k: v for k, v in normal.items() if k != "lock"}
    assert kube.writes() == []


def test_negative_history_limit_fails_before_reading(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, history_limit=-1)
    assert result["rc"] == 1
    assert result["failed"] is True
    assert "history_limit" in result["msg"]
    assert kube.calls == []


def test_unreadable_record_fails_naming_the_configmap(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    kube.put("ConfigMap", NS, {"metadata": {"name": APP + "-release"}, "data": {"state.json": "{not json"}})
    result = run_module(capsys)
    assert result["failed"] is True
    assert "ConfigMap %s/%s-release" % (NS, APP) in result["msg"]
    assert result["error"]["type"] == "InvalidStateError"
