# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.userservice.deploy.plugins.module_utils.plan import Plan, PlanStep


def blue_to_green() -> Plan:
    plan = Plan()
    plan.change(
        "patch",
        "Deployment",
        "user-service-green",
        "ns",
        {"spec.replicas": 3, "image": "reg/us@sha256:2"},
        {"spec.replicas": 0, "image": "reg/us@sha256:1"},
    )
    plan.add(PlanStep("wait", "Deployment", "user-service-green", namespace="ns", gate={"timeout": 300}))
    plan.add(PlanStep("gate", "Deployment", "user-service-green", namespace="ns", gate={"consecutive": 3}))
    plan.change(
        "patch",
        "Service",
        "user-service",
        "ns",
        {"spec.selector.deploy.userservice.io/slot": "green"},
        {"spec.selector.deploy.userservice.io/slot": "blue"},
    )
    plan.change(
        "patch", "Deployment", "user-service-blue", "ns", {"spec.replicas": 0}, {"spec.replicas": 3}, note="after 30 s"
    )
    return plan


def test_plan_lists_ordered_steps_with_before_after() -> None:
    steps = blue_to_green().as_list()
    assert [s["action"] for s in steps] == ["patch", "wait", "gate", "patch", "patch"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5]
    assert steps[0]["changes"][0] == {"field": "spec.replicas", "before": 0, "after": 3}
    assert steps[2]["gate"] == {"consecutive": 3}
    assert steps[4]["note"] == "after 30 s"


def test_diff_shows_selector_and_replicas() -> None:
    diff = blue_to_green().diff()
    assert diff["before"]["Service/user-service"] == {"spec.selector.deploy.userservice.io/slot": "blue"}
    assert diff["after"]["Service/user-service"] == {"spec.selector.deploy.userservice.io/slot": "green"}
    assert diff["after"]["Deployment/user-service-blue"] == {"spec.replicas": 0}


def test_field_moved_there_and_back_is_not_in_diff() -> None:
    plan = Plan()
    plan.change("patch", "Deployment", "d", "ns", {"spec.replicas": 3}, {"spec.replicas": 0})
    plan.change("patch", "Deployment", "d", "ns", {"spec.replicas": 0}, {"spec.replicas": 3})
    assert plan.diff() == {"before": {}, "after": {}}
    assert plan.changed


def test_no_difference_means_no_step_and_not_changed() -> None:
    plan = Plan()
    assert (
        plan.change("patch", "Service", "s", "ns", {"spec.selector.slot": "blue"}, {"spec.selector.slot": "blue"})
        is None
    )
    plan.add(PlanStep("gate", "Deployment", "d"))
    assert not plan.changed
    assert plan.diff() == {"before": {}, "after": {}}
