# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen import BlueGreen
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_args import (
    BLUEGREEN_OPTIONS,
    validate_params,
)
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import build_deployment
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidArgumentError,
    InvalidStateError,
    LockHeldError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LOCK_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.state import DATA_KEY, new_state

NS = "user-service-dev"
IMAGE = "127.0.0.1:5000/user-service@sha256:" + "a" * 64


def params(**override: Any) -> Dict[str, Any]:
    out = {key: spec.get("default") for key, spec in BLUEGREEN_OPTIONS.items()}
    out.update({key: spec.get("default") for key, spec in LOCK_ARG_SPEC.items()})
    out.update(
        namespace=NS,
        image=IMAGE,
        version="1.0.0",
        pod_template={"spec": {"containers": [{"name": "user-service", "image": "placeholder"}]}},
        health={},
        analysis={},
    )
    out.update(override)
    return out


def service(kube: Any, selector: Dict[str, str]) -> None:
    kube.put(
        "Service", NS, {"metadata": {"name": "user-service"}, "spec": {"selector": selector, "ports": [{"port": 80}]}}
    )


def engine(kube: Any, clock: Any, check_mode: bool, **override: Any) -> BlueGreen:
    return BlueGreen(kube, params(**override), check_mode=check_mode, holder="tester", clock=clock)


@pytest.mark.parametrize(
    "option,override",
    [
        ("namespace", {"namespace": "Bad_NS"}),
        ("image", {"image": "repo:1.0"}),
        ("version", {"version": "1.0 beta"}),
        ("container_name", {"container_name": "sidecar"}),
        ("replicas", {"replicas": 0}),
        ("scale_down_delay", {"scale_down_delay": -2}),
        ("preview_service", {"preview_service": "user-service"}),
        ("pre_promotion_analysis", {"pre_promotion_analysis": ["missing"]}),
    ],
)
def test_bad_arguments_name_the_option(option: str, override: Dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_params(params(**override))
    assert option in str(info.value)


def test_check_mode_plans_a_first_release_and_writes_nothing(kube: Any, clock: Any) -> None:
    service(kube, {"app.kubernetes.io/name": "user-service"})
    result = engine(kube, clock, check_mode=True).run()
    actions = [(step["action"], step["kind"]) for step in result["plan"]]
    assert actions == [
        # The name-only Service is first pinned, so the new slot's pods get no traffic before the gate.
        ("patch", "Service"),
        ("create", "Deployment"),
        ("wait", "Deployment"),
        ("gate", "Deployment"),
        ("patch", "Service"),
        ("verify", "Service"),
        ("watch", "Deployment"),
    ]
    assert result["changed"] is True and result["target_slot"] == "blue"
    after = result["diff"]["after"]["Service/user-service"]["spec.selector"]
    assert after["deploy.userservice.io/slot"] == "blue"
    assert kube.writes() == []


def test_releasing_the_serving_template_is_a_no_op(kube: Any, clock: Any) -> None:
    service(kube, {"app.kubernetes.io/name": "user-service", "deploy.userservice.io/slot": "blue"})
    live = build_deployment(params(), "blue")
    live["spec"]["replicas"] = 5  # an autoscaler's choice must not count as a difference
    kube.put("Deployment", NS, live)
    result = engine(kube, clock, check_mode=False).run()
    assert result["changed"] is False and "already serves traffic from slot blue" in result["message"]
    assert kube.writes() == []


def test_a_new_version_targets_the_inactive_slot_and_scales_the_old_one_later(kube: Any, clock: Any) -> None:
    service(kube, {"app.kubernetes.io/name": "user-service", "deploy.userservice.io/slot": "blue"})
    kube.put("Deployment", NS, build_deployment(params(), "blue"))
    result = engine(kube, clock, check_mode=True, version="2.0.0").run()
    assert result["target_slot"] == "green" and result["previous_slot"] == "blue"
    scale = [step for step in result["plan"] if step["action"] == "scale"]
    assert scale and scale[0]["name"] == "user-service-blue" and scale[0]["changes"][0]["after"] == 0


def test_check_mode_fails_fast_when_another_run_holds_the_lock(kube: Any, clock: Any) -> None:
    service(kube, {"app.kubernetes.io/name": "user-service"})
    kube.put(
        "Lease",
        NS,
        {
            "metadata": {"name": "user-service-release"},
            "spec": {
                "holderIdentity": "awx job 42 on node-1",
                "leaseDurationSeconds": 600,
                "renewTime": clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        },
    )
    with pytest.raises(LockHeldError) as info:
        engine(kube, clock, check_mode=True).run()
    assert "awx job 42 on node-1" in str(info.value)


def test_rollback_refuses_a_slot_whose_release_failed_before_the_switch(kube: Any, clock: Any) -> None:
    service(kube, {"app.kubernetes.io/name": "user-service", "deploy.userservice.io/slot": "blue"})
    kube.put("Deployment", NS, build_deployment(params(), "blue"))
    kube.put("Deployment", NS, build_deployment(params(version="2.0.0"), "green"))
    state = new_state("user-service")
    state["active_slot"] = "blue"
    state["slots"] = {"green": {"image": IMAGE, "version": "2.0.0", "failed_at": "2026-11-27T00:00:00Z"}}
    kube.put("ConfigMap", NS, {"metadata": {"name": "user-service-release"}, "data": {DATA_KEY: json.dumps(state)}})
    with pytest.raises(InvalidStateError) as info:
        engine(kube, clock, check_mode=True, state="rolled_back").run()
    assert "it is failed" in str(info.value) and "2026-11-27" in str(info.value)
