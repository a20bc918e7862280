# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blue/green plan: every step a run will take, read from what the cluster holds, before any write.

Check mode returns exactly this plan; a real run takes the same steps. Each
step compares desired with actual, so a no-op plan is empty and ``changed`` is
false.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    POD_TEMPLATE_HASH_LABEL,
    SLOT_LABEL,
    image_of,
    is_warm,
    replicas_of,
    slot_selector,
    template_hash_of,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidStateError
from ansible_collections.userservice.deploy.plugins.module_utils.plan import FieldChange
from ansible_collections.userservice.deploy.plugins.module_utils.state import SLOTS
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import pod_ready

# The pod-template-hash a Service is pinned to when nothing serves yet: it selects no pod.
NO_POD = "none"


class BlueGreenPlan:
    """Planning steps of :class:`BlueGreen` (which provides ``job``, ``params``, ``router``, ``autoscaler``...)."""

    job: Any
    params: Dict[str, Any]
    router: Any
    autoscaler: Any
    health: Any
    client: Any
    ns: str
    app: str
    container: str
    service_name: str
    result: Dict[str, Any]
    pin: Any

    def name(self, slot: str) -> str:
        raise NotImplementedError

    def plan_first_switch_pin(self, seen: Any) -> Dict[str, str]:
        """The selector before the first switch; a name-only selector is first pinned to what serves now.

        A rolling Service selects ``app.kubernetes.io/name`` only, which the slot pods carry too: they
        would get traffic as soon as they are Ready, before any gate. It is pinned to the rolling pods'
        ReplicaSet (or to no pod at all when nothing runs) before the first slot is created.
        """
        selector = dict(seen.selector)
        if not selector or SLOT_LABEL in selector or POD_TEMPLATE_HASH_LABEL in selector:
            return selector
        hashes = set()
        for pod in self.client.list("Pod", self.ns, selector):
            labels = (pod.get("metadata") or {}).get("labels") or {}
            if SLOT_LABEL not in labels and pod_ready(pod):
                hashes.add(labels.get(POD_TEMPLATE_HASH_LABEL))
        if len(hashes) > 1:
            raise InvalidStateError(
                "the rolling Deployment is in the middle of a rollout",
                kind="Service",
                namespace=self.ns,
                name=self.service_name,
                expected="the pods the Service selects from one ReplicaSet",
                seen="pod-template-hash %s" % ", ".join(sorted(str(h) for h in hashes)),
                hint="Wait for the rolling update to finish, then release",
            )
        pinned = dict(selector, **{POD_TEMPLATE_HASH_LABEL: hashes.pop() if hashes else NO_POD})
        self.job.add_step(
            "patch",
            "Service",
            self.service_name,
            changes=[FieldChange("spec.selector", selector, pinned)],
            note="pin traffic to the pods serving now, so the new slot gets none before its gates",
        )
        self.pin = (selector, pinned)
        return pinned

    def plan_deployment(self, seen: Any, target: str, desired: Dict[str, Any]) -> None:
        current = seen.slots[target]
        name = self.name(target)
        replicas = desired["spec"]["replicas"]
        if current is None:
            self.job.add_step(
                "create",
                "Deployment",
                name,
                changes=[
                    FieldChange("spec.template.image", None, self.params["image"]),
                    FieldChange("spec.replicas", None, replicas),
                ],
            )
            return
        changes = []
        if template_hash_of(current) != template_hash_of(desired):
            changes.append(FieldChange("spec.template.image", image_of(current, self.container), self.params["image"]))
            changes.append(
                FieldChange("metadata.annotations.template-hash", template_hash_of(current), template_hash_of(desired))
            )
        if replicas_of(current) != replicas:
            changes.append(FieldChange("spec.replicas", replicas_of(current), replicas))
        if changes:
            self.job.add_step("update", "Deployment", name, changes=changes)

    def plan_gates(self, target: str, pre_analysis: List[str]) -> None:
        name = self.name(target)
        self.job.add_step(
            "wait",
            "Deployment",
            name,
            gate={"rollout_timeout": self.params["rollout_timeout"]},
            note="rollout complete: observedGeneration, available replicas, no ProgressDeadlineExceeded",
        )
        self.job.add_step(
            "gate",
            "Deployment",
            name,
            gate=self.health.describe(),
            note="each new pod answers the health endpoint through the API server pod proxy",
        )
        if pre_analysis:
            self.job.add_step("analyse", "Deployment", name, gate={"phase": "pre-promotion", "checks": pre_analysis})

    def plan_switch(self, expected: Dict[str, str], target: str, rolling_back: bool = False) -> None:
        after = self.router.selector_for(expected, target)
        if after != expected:
            self.job.add_step(
                "patch",
                "Service",
                self.service_name,
                changes=[FieldChange("spec.selector", expected, after)],
                note="only if the selector is still what this plan saw; otherwise the run stops with a conflict",
            )
        self.job.add_step(
            "verify",
            "Service",
            self.service_name,
            gate={"timeout": self.params["verify_timeout"]},
            note="the Service's endpoints are exactly the new slot's ready pods and answer through the service proxy",
        )
        if self.autoscaler.manage and self.autoscaler.spec_to_follow([self.name(slot) for slot in SLOTS]) is not None:
            self.job.add_step(
                "apply",
                "HorizontalPodAutoscaler",
                self.name(target),
                note="the autoscaler follows traffic right after the switch",
            )
        if rolling_back:
            return
        if float(self.params.get("post_switch_watch") or 0) > 0:
            self.job.add_step(
                "watch",
                "Deployment",
                self.name(target),
                gate={"seconds": self.params["post_switch_watch"]},
                note="serving pods stay Ready, do not restart and answer; otherwise switch back",
            )
        if self.params["post_promotion_analysis"]:
            self.job.add_step(
                "analyse",
                "Service",
                self.service_name,
                gate={
                    "phase": "post-promotion",
                    "checks": self.params["post_promotion_analysis"],
                    "on_failure": "switch the selector back",
                },
            )

    def plan_scale_down(self, seen: Any, slot: Optional[str]) -> None:
        if slot is None or seen.slots.get(slot) is None or self.params["scale_down_delay"] < 0:
            return
        current = replicas_of(seen.slots[slot])
        if current:
            self.job.add_step(
                "scale",
                "Deployment",
                self.name(slot),
                changes=[FieldChange("spec.replicas", current, 0)],
                note="after scale_down_delay=%ss, kept warm until then without the lease (a rollback may pre-empt it)"
                % self.params["scale_down_delay"],
            )

    def plan_preview_service(self, seen: Any, target: str) -> None:
        name = self.params["preview_service"]
        before = ((seen.preview or {}).get("spec") or {}).get("selector")
        after = slot_selector(self.app, target)
        if before != after:
            self.job.add_step(
                "create" if seen.preview is None else "patch",
                "Service",
                name,
                changes=[FieldChange("spec.selector", before, after)],
            )

    def plan_rollback(self, seen: Any, target: str, active: Optional[str]) -> int:
        deployment = seen.slots[target]
        warm = is_warm(deployment)
        size = self.autoscaler.size_for(self.params["replicas"], seen.slots.get(active) if active else None)
        if not warm or (replicas_of(deployment) or 0) < size:
            self.job.add_step(
                "scale",
                "Deployment",
                self.name(target),
                changes=[FieldChange("spec.replicas", replicas_of(deployment), size)],
                note="to the size that serves now, then gate before switching",
            )
            self.plan_gates(target, [])
        self.plan_switch(dict(seen.selector), target, rolling_back=True)
        self.plan_scale_down(seen, active)
        self.result.update(active_slot=active, target_slot=target, previous_slot=active, instant=warm, replicas=size)
        return size
