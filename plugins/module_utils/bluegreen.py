# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue/green releases: two slot Deployments, one active Service, one selector patch.

A :class:`BlueGreen` first *plans* (reads only: state record, lease, Service,
both slot Deployments) and then *executes* the same plan under the lease. Every
step compares desired with actual, so a re-run of a release that died half way
continues where it stopped, and a release of the digest that already serves
traffic is a no-op.

Failure semantics:

* before the switch (rollout, health gate, pre-promotion analysis): traffic is
  untouched, the new slot is scaled to 0 (``on_failure: scale_down``) or kept;
* after the switch (verification, post-promotion analysis): the selector is
  flipped back to the previous slot, then the run fails;
* every failure is returned and stored in the state record as data.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import (
    AnalysisContext,
    analysis_error,
    parse_checks,
    run_analysis,
    select_checks,
)
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_slots import (
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    SLOT_LABEL,
    VERSION_LABEL,
    build_deployment,
    deployment_name,
    image_of,
    is_warm,
    replicas_of,
    slot_selector,
    template_hash_of,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    InvalidArgumentError,
    InvalidStateError,
    LockLostError,
    NotFoundError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.health import HealthSpec, run_health_gate
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LeaseHeartbeat, LeaseLock
from ansible_collections.userservice.deploy.plugins.module_utils.plan import FieldChange, Plan, PlanStep
from ansible_collections.userservice.deploy.plugins.module_utils.state import (
    ACTIVE_PHASES,
    SLOTS,
    StateStore,
    begin_run,
    finish_run,
    other_slot,
    record_switch,
    set_pending,
    set_phase,
    set_slot,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import (
    SystemClock,
    current_pods,
    isoformat,
    pod_ready,
    poll,
    wait_for_rollout,
)


class AnalysisInconclusive(AnalysisFailedError):
    """Pre-promotion analysis could not decide: the release pauses as a preview."""

    def __init__(self, error: AnalysisFailedError) -> None:
        super().__init__(
            error.message,
            expected=error.expected,
            seen=error.seen,
            data=error.data,
            hint="Traffic was not moved and the new slot is kept as a preview: promote it "
            "(state=promoted, playbooks/promote.yml) or abort it (state=aborted, playbooks/abort.yml)",
        )


def record_replicas(state: Dict[str, Any], slot: str, replicas: int) -> Dict[str, Any]:
    """Remember the slot's size, so a rollback to it after its scale-down restores it."""
    new = json.loads(json.dumps(state))
    new["slots"][slot]["replicas"] = replicas
    return new


def mark_slot_failed(state: Dict[str, Any], slot: str, *, now: str) -> Dict[str, Any]:
    """The slot holds a release that never got traffic: a rollback must not send traffic there."""
    new = json.loads(json.dumps(state))
    if slot in (new.get("slots") or {}):
        new["slots"][slot]["failed_at"] = now
    return new


def record_revert(state: Dict[str, Any], slot: str, *, now: str) -> Dict[str, Any]:
    """Traffic went back to ``slot`` within the same run (the run then ends rolled back)."""
    new = json.loads(json.dumps(state))
    new["active_slot"] = slot
    if new.get("run"):
        new["run"]["reverted_at"] = now
    new["updated_at"] = now
    return new


class Observed:
    """What the cluster holds now (read-only snapshot taken by the planner)."""

    def __init__(self, client: Any, params: Dict[str, Any], store: StateStore) -> None:
        app, ns = params["app"], params["namespace"]
        self.service_name = params.get("service") or app
        self.service = client.read_optional("Service", ns, self.service_name)
        if self.service is None:
            raise NotFoundError(
                "the active Service does not exist",
                kind="Service",
                namespace=ns,
                name=self.service_name,
                status=404,
                hint="Apply the shared objects first (playbooks/deploy.yml, role workload) or set option service",
            )
        self.preview = (
            client.read_optional("Service", ns, params["preview_service"]) if params.get("preview_service") else None
        )
        self.slots = {slot: client.read_optional("Deployment", ns, deployment_name(app, slot)) for slot in SLOTS}
        self.state, self.state_version = store.read()
        self.selector = dict((self.service.get("spec") or {}).get("selector") or {})

    @property
    def active_slot(self) -> Optional[str]:
        """The slot the Service selects: the truth for traffic, whatever the record says."""
        slot = self.selector.get(SLOT_LABEL)
        return slot if slot in SLOTS else None


class BlueGreen:
    """Plans and runs one blue/green action."""

    def __init__(
        self,
        client: Any,
        params: Dict[str, Any],
        *,
        check_mode: bool,
        holder: str,
        clock: Optional[Any] = None,
        prometheus: Optional[Any] = None,
        log: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.app = params["app"]
        self.ns = params["namespace"]
        self.container = params.get("container_name") or self.app
        self.clock = clock or SystemClock()
        self.store = StateStore(client, self.ns, self.app)
        self.lock = LeaseLock(client, self.ns, self.app, holder, ttl=params.get("lock_ttl") or 60, clock=self.clock)
        self.heartbeat: Optional[LeaseHeartbeat] = None
        self.prometheus = prometheus
        self.log = log or (lambda message: None)
        self.plan = Plan()
        self.result: Dict[str, Any] = {"verdicts": {}}
        self.state: Dict[str, Any] = {}
        self.state_version: Optional[str] = None
        self.run_id = uuid.uuid4().hex[:12]
        self.switched_monotonic = 0.0
        self.warnings: List[str] = []
        self.lock_lost = False

    # -- time and state ---------------------------------------------------------

    def now(self) -> str:
        return isoformat(self.clock.now())

    def save(self, change: Callable[[Dict[str, Any]], Dict[str, Any]]) -> None:
        """Apply a pure transition to the record and write it (guarded by resourceVersion)."""
        if self.lock_lost:
            return
        if self.check_mode:
            self.state = change(self.state)
            return
        self.state, self.state_version = self.store.update(change, self.state_version)

    def confirm_lock(self) -> None:
        """Renew the lease right before a write that moves traffic or capacity (fails if it was taken)."""
        if self.check_mode or self.heartbeat is None:
            return
        try:
            self.lock.renew()
        except LockLostError:
            self.lock_lost = True
            raise

    def beat(self) -> None:
        if self.heartbeat is None:
            return
        try:
            self.heartbeat()
        except LockLostError:
            # Another run owns the release now: from here on this run must not write anything.
            self.lock_lost = True
            raise

    # -- planning ---------------------------------------------------------------

    def add_step(self, action: str, kind: str, name: str, **details: Any) -> None:
        self.plan.add(PlanStep(action, kind, name, namespace=self.ns, **details))

    def observe(self) -> Observed:
        return Observed(self.client, self.params, self.store)

    def plan_release(self, seen: Observed, target: str, desired: Dict[str, Any]) -> None:
        current = seen.slots[target]
        name = deployment_name(self.app, target)
        if current is None:
            self.add_step(
                "create",
                "Deployment",
                name,
                changes=[
                    FieldChange("spec.template.image", None, self.params["image"]),
                    FieldChange("spec.replicas", None, self.params["replicas"]),
                ],
            )
        else:
            changes = []
            if template_hash_of(current) != template_hash_of(desired):
                changes.append(
                    FieldChange("spec.template.image", image_of(current, self.container), self.params["image"])
                )
                changes.append(
                    FieldChange(
                        "metadata.annotations.template-hash", template_hash_of(current), template_hash_of(desired)
                    )
                )
            if replicas_of(current) != self.params["replicas"]:
                changes.append(FieldChange("spec.replicas", replicas_of(current), self.params["replicas"]))
            if changes:
                self.add_step("update", "Deployment", name, changes=changes)
        self.plan_gates(target)

    def plan_gates(self, target: str) -> None:
        name = deployment_name(self.app, target)
        self.add_step(
            "wait",
            "Deployment",
            name,
            gate={"rollout_timeout": self.params["rollout_timeout"]},
            note="rollout complete: observedGeneration, available replicas, no ProgressDeadlineExceeded",
        )
        self.add_step(
            "gate",
            "Deployment",
            name,
            gate=HealthSpec(self.params.get("health")).describe(),
            note="each new pod answers the health endpoint through the API server pod proxy",
        )
        if self.params["pre_promotion_analysis"]:
            self.add_step(
                "analyse",
                "Deployment",
                name,
                gate={"phase": "pre-promotion", "checks": self.params["pre_promotion_analysis"]},
            )

    def plan_switch(self, seen: Observed, target: str) -> None:
        selector = dict(seen.selector)
        after = dict(selector, **slot_selector(self.app, target))
        if after != selector:
            self.add_step(
                "patch",
                "Service",
                seen.service_name,
                changes=[FieldChange("spec.selector", selector, after)],
                note="guarded by resourceVersion %s" % seen.service["metadata"].get("resourceVersion"),
            )
        self.add_step(
            "verify",
            "Service",
            seen.service_name,
            gate={"timeout": self.params["verify_timeout"]},
            note="the Service's endpoints are exactly the new slot's ready pods and answer through the service proxy",
        )
        if self.params["post_promotion_analysis"]:
            self.add_step(
                "analyse",
                "Service",
                seen.service_name,
                gate={
                    "phase": "post-promotion",
                    "checks": self.params["post_promotion_analysis"],
                    "on_failure": "flip the selector back",
                },
            )

    def plan_scale_down(self, seen: Observed, slot: Optional[str]) -> None:
        if slot is None or seen.slots.get(slot) is None or self.params["scale_down_delay"] < 0:
            return
        current = replicas_of(seen.slots[slot])
        if current:
            self.add_step(
                "scale",
                "Deployment",
                deployment_name(self.app, slot),
                changes=[FieldChange("spec.replicas", current, 0)],
                note="after scale_down_delay=%ss (kept warm for instant rollback until then)"
                % self.params["scale_down_delay"],
            )

    # -- steps --------------------------------------------------------------------

    def apply_deployment(self, seen: Observed, target: str, desired: Dict[str, Any]) -> Dict[str, Any]:
        self.confirm_lock()
        current = seen.slots[target]
        if current is None:
            self.log("create Deployment %s" % desired["metadata"]["name"])
            return self.client.create("Deployment", self.ns, desired)
        if (
            template_hash_of(current) == template_hash_of(desired)
            and replicas_of(current) == desired["spec"]["replicas"]
        ):
            return current
        body = json.loads(json.dumps(desired))
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.log("update Deployment %s" % desired["metadata"]["name"])
        return self.client.replace("Deployment", self.ns, body)

    def scale(self, slot: str, replicas: int) -> None:
        if self.lock_lost:
            return
        self.confirm_lock()
        name = deployment_name(self.app, slot)
        current = self.client.read_optional("Deployment", self.ns, name)
        if current is None or replicas_of(current) == replicas:
            return
        self.log("scale Deployment %s to %d" % (name, replicas))
        self.client.patch(
            "Deployment",
            self.ns,
            name,
            {"spec": {"replicas": replicas}},
            resource_version=current["metadata"]["resourceVersion"],
        )

    def gate(self, target: str) -> None:
        name = deployment_name(self.app, target)
        deployment = wait_for_rollout(
            self.client,
            self.ns,
            name,
            timeout=self.params["rollout_timeout"],
            interval=1.0,
            clock=self.clock,
            heartbeat=self.beat,
        )
        # A gate inside a rollback after a breach belongs to that phase; only a deploy moves on to gating.
        self.save(lambda s: set_phase(s, "gating", now=self.now()) if s.get("phase") == "deploying" else s)
        self.result["health"] = run_health_gate(
            self.client, deployment, HealthSpec(self.params.get("health")), clock=self.clock, heartbeat=self.beat
        )

    def analyse(self, phase: str, names: List[str], slot: str) -> None:
        if not names:
            return
        checks = select_checks(
            parse_checks((self.params.get("analysis") or {}).get("checks")),
            names,
            "%s_analysis" % phase.replace("-", "_"),
        )
        context = AnalysisContext(
            namespace=self.ns,
            app=self.app,
            version=self.params.get("version") or self.slot_version(slot),
            slot=slot,
            variables=(self.params.get("analysis") or {}).get("variables"),
            prometheus=self.prometheus,
            kube=self.client,
            clock=self.clock,
            heartbeat=self.beat,
        )
        # Pre-promotion analysis is a phase of its own; after the switch it refines the current phase.
        self.save(
            lambda s: set_phase(
                s, "analysing" if phase == "pre-promotion" else s["phase"], now=self.now(), step="%s analysis" % phase
            )
        )
        verdict = run_analysis(checks, context)
        self.result["verdicts"][phase] = verdict
        error = analysis_error(verdict, phase, inconclusive_fails=True)
        if error is None:
            return
        if verdict["verdict"] == "inconclusive":
            if phase == "post-promotion":
                self.warnings.append(str(error))
                return
            raise AnalysisInconclusive(error)
        raise error

    def slot_version(self, slot: str) -> Optional[str]:
        return ((self.state.get("slots") or {}).get(slot) or {}).get("version")

    def switch(self, seen: Observed, target: str, revert: bool = False) -> None:
        if self.lock_lost:
            return
        self.confirm_lock()
        service = self.client.read("Service", self.ns, seen.service_name)
        selector = dict((service.get("spec") or {}).get("selector") or {})
        after = dict(selector, **slot_selector(self.app, target))
        if after != selector:
            self.log("switch Service %s to slot %s" % (seen.service_name, target))
            self.client.patch(
                "Service",
                self.ns,
                seen.service_name,
                {"spec": {"selector": after}},
                resource_version=service["metadata"]["resourceVersion"],
            )
        self.switched_monotonic = self.clock.monotonic()
        self.result["switched_at"] = self.now()
        if revert:
            self.save(lambda s: record_revert(s, target, now=self.result["switched_at"]))
        else:
            self.save(lambda s: record_switch(s, target, now=self.result["switched_at"]))

    def verify(self, seen: Observed, target: str) -> None:
        """The Service's endpoints are exactly the target slot's ready pods, and it answers."""
        self.save(lambda s: set_phase(s, "verifying", now=self.now()) if s.get("phase") == "switched" else s)
        deployment = self.client.read("Deployment", self.ns, deployment_name(self.app, target))
        health = HealthSpec(self.params.get("health"))

        def step() -> Tuple[bool, Any]:
            want = {p["status"].get("podIP") for p in current_pods(self.client, deployment) if pod_ready(p)}
            have = set()
            for slice_ in self.client.list("EndpointSlice", self.ns, {"kubernetes.io/service-name": seen.service_name}):
                for endpoint in slice_.get("endpoints") or []:
                    if (endpoint.get("conditions") or {}).get("ready"):
                        have.update(endpoint.get("addresses") or [])
            if not want or want != have:
                return False, {"endpoints": sorted(have), "new_slot_pods": sorted(want)}
            return True, sorted(have)

        endpoints = poll(
            step,
            timeout=self.params["verify_timeout"],
            interval=0.5,
            what="Service %s endpoints to be the %s slot's pods" % (seen.service_name, target),
            clock=self.clock,
            heartbeat=self.beat,
        )
        port = ((seen.service.get("spec") or {}).get("ports") or [{}])[0].get("port", 80)
        response = self.client.service_proxy_get(self.ns, seen.service_name, port, health.path, health.request_timeout)
        if not 200 <= response.status < 300:
            raise ReleaseError(
                "the active Service does not answer after the switch",
                kind="Service",
                namespace=self.ns,
                name=seen.service_name,
                expected="2xx on %s" % health.path,
                seen="HTTP %s" % response.status,
            )
        self.result["verified_endpoints"] = endpoints

    def flip_back(self, seen: Observed, previous: Optional[str]) -> bool:
        """After a failed verification or analysis: traffic back to the warm previous slot."""
        if previous is None or seen.slots.get(previous) is None:
            return False
        self.log("flip Service %s back to slot %s" % (seen.service_name, previous))
        switched_at = self.result.get("switched_at")
        self.switch(seen, previous, revert=True)
        self.result["switched_at"] = switched_at
        self.result["reverted_at"] = self.now()
        return True

    def wait_scale_down(self, slot: str, switched_at: float) -> None:
        delay = self.params["scale_down_delay"]
        if delay < 0:
            return
        remaining = switched_at + delay - self.clock.monotonic()
        if remaining > 0:
            self.log("keeping slot %s warm for %.0fs" % (slot, remaining))
            poll(
                lambda: (self.clock.monotonic() >= switched_at + delay, None),
                timeout=None,
                interval=lambda: max(0.0, min(5.0, switched_at + delay - self.clock.monotonic())),
                what="scale-down delay",
                clock=self.clock,
                heartbeat=self.beat,
            )
        self.scale(slot, 0)
        self.result["scaled_down"] = {"slot": slot, "at": self.now()}

    # -- runs -----------------------------------------------------------------------

    def start_run(self, action: str, target: Optional[str], phase: str = "deploying") -> None:
        """Take the lease, then record the run; a run the record shows in flight died with its holder."""
        if self.check_mode:
            self.lock.check()
            self.state = dict(self.state or {})
            return
        info = self.lock.acquire(steal=bool(self.params.get("lock_steal")))
        self.result["lock"] = info.as_dict()
        self.heartbeat = LeaseHeartbeat(self.lock)
        state, version = self.store.read_or_initialise()
        self.state, self.state_version = state, version
        if state.get("phase") in ACTIVE_PHASES and state.get("run"):
            dead = state["run"]
            self.result["interrupted_run"] = dead
            same = dead.get("action") == action and dead.get("target_slot") == target
            if not same:
                self.save(
                    lambda s: finish_run(
                        s,
                        "failed",
                        now=self.now(),
                        failure={
                            "check": "run interrupted",
                            "reason": "the run died (lease lost or process killed) and was superseded by run %s"
                            % self.run_id,
                        },
                        history_limit=self.params["history_limit"],
                    )
                )
        resume = self.state.get("phase") in ACTIVE_PHASES
        self.save(
            lambda s: begin_run(
                s,
                run_id=self.run_id,
                action=action,
                holder=self.lock.holder,
                now=self.now(),
                target_slot=target,
                resume=resume,
                phase=phase,
            )
        )

    def end_run(self, outcome: str, failure: Optional[Dict[str, Any]] = None) -> None:
        if self.check_mode or not self.state.get("run"):
            return
        self.save(
            lambda s: finish_run(
                s, outcome, now=self.now(), failure=failure, history_limit=self.params["history_limit"]
            )
        )

    def release_lock(self) -> None:
        if not self.check_mode and self.heartbeat is not None and not self.lock_lost:
            self.lock.release()

    # -- entry points ------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        state = self.params["state"]
        seen = self.observe()
        self.state = seen.state or {}
        self.state_version = seen.state_version
        handler = {
            "released": self.do_release,
            "previewed": self.do_release,
            "promoted": self.do_promote,
            "rolled_back": self.do_rollback,
            "aborted": self.do_abort,
            "monitored": self.do_monitor,
        }[state]
        try:
            handler(seen)
        finally:
            self.release_lock()
            self.result["plan"] = self.plan.as_list()
            self.result["changed"] = self.plan.changed
            self.result["diff"] = self.plan.diff()
            self.result["state"] = self.state if not self.check_mode else (seen.state or {})
        return self.result

    def do_release(self, seen: Observed) -> None:
        active = seen.active_slot
        target = other_slot(active) if active else "blue"
        preview_only = self.params["state"] == "previewed"
        # Releasing what already serves traffic is a no-op (also what a resumed, finished run sees).
        # Replicas are not compared: an autoscaler may own them on the active slot.
        if (
            active
            and template_hash_of(seen.slots[active]) == template_hash_of(build_deployment(self.params, active))
            and not self._in_flight(seen)
        ):
            self.result.update(
                active_slot=active,
                message="version %s (%s) already serves traffic from slot %s"
                % (self.params["version"], self.params["image"], active),
            )
            return
        # A run that died after switching to the slot we would deploy again is resumed at verification.
        resumed_after_switch = (
            self._in_flight(seen)
            and (seen.state or {}).get("run", {}).get("target_slot") == active
            and template_hash_of(seen.slots[active]) == template_hash_of(build_deployment(self.params, active))
        )
        if resumed_after_switch:
            target = active
            previous = (seen.state or {}).get("run", {}).get("previous_slot")
        else:
            previous = active
        desired = build_deployment(self.params, target)
        if not resumed_after_switch:
            self.plan_release(seen, target, desired)
        if self.params.get("preview_service"):
            self.plan_preview_service(seen, target)
        if not preview_only:
            self.plan_switch(seen, target)
            self.plan_scale_down(seen, previous)
        self.result.update(active_slot=active, target_slot=target, previous_slot=previous)
        if self.check_mode:
            self.start_run("preview" if preview_only else "release", target)
            return
        self.start_run("preview" if preview_only else "release", target)
        self.execute_release(seen, target, previous, desired, preview_only, resumed_after_switch)

    def _in_flight(self, seen: Observed) -> bool:
        return bool(seen.state and seen.state.get("phase") in ACTIVE_PHASES and seen.state.get("run"))

    def execute_release(
        self,
        seen: Observed,
        target: str,
        previous: Optional[str],
        desired: Dict[str, Any],
        preview_only: bool,
        resumed_after_switch: bool,
    ) -> None:
        try:
            if not resumed_after_switch:
                self.apply_deployment(seen, target, desired)
                self.save(
                    lambda s: record_replicas(
                        set_slot(
                            s,
                            target,
                            image=self.params["image"],
                            now=self.now(),
                            version=self.params["version"],
                            config_refs=self.params["config_refs"],
                        ),
                        target,
                        self.params["replicas"],
                    )
                )
                self.gate(target)
                if self.params.get("preview_service"):
                    self.ensure_preview_service(seen, target)
                self.analyse("pre-promotion", self.params["pre_promotion_analysis"], target)
        except AnalysisInconclusive as exc:
            # Like a paused rollout: the new slot stays up, traffic stays, a person or pipeline decides.
            self.save(lambda s: set_pending(s, target, now=self.now()))
            self.end_run("done", failure=self.failure_data(exc))
            self.result["pending_slot"] = target
            raise
        except ReleaseError as exc:
            self.fail_before_switch(target, exc)
            raise
        if preview_only:
            self.save(lambda s: set_pending(s, target, now=self.now()))
            self.end_run("done")
            self.result["pending_slot"] = target
            return
        self.promote(seen, target, previous)

    def promote(self, seen: Observed, target: str, previous: Optional[str]) -> None:
        self.switch(seen, target)
        switched = self.switched_monotonic
        try:
            self.verify(seen, target)
            self.analyse("post-promotion", self.params["post_promotion_analysis"], target)
        except ReleaseError as exc:
            reverted = self.flip_back(seen, previous)
            self.end_run("rolled_back" if reverted else "failed", failure=self.failure_data(exc))
            exc.hint = ("Traffic was switched back to slot %s" % previous) if reverted else exc.hint
            raise
        self.result["active_slot"] = target
        if previous:
            self.wait_scale_down(previous, switched)
        self.end_run("done")

    def fail_before_switch(self, target: str, exc: ReleaseError) -> None:
        if self.params["on_failure"] == "scale_down":
            self.scale(target, 0)
        self.save(lambda s: mark_slot_failed(s, target, now=self.now()))
        self.end_run("failed", failure=self.failure_data(exc))

    def failure_data(self, exc: ReleaseError) -> Dict[str, Any]:
        data = {"reason": str(exc), "check": exc.message, "expected": exc.expected, "seen": exc.seen}
        verdict = exc.data if exc.data.get("checks") else None
        if verdict:
            culprit = next((c for c in verdict["checks"] if c["verdict"] != "pass"), {})
            data.update(
                check=culprit.get("check"),
                query=culprit.get("query"),
                value=culprit.get("value"),
                bound=culprit.get("bound"),
                samples=culprit.get("samples"),
            )
        elif exc.data:
            data["detail"] = exc.data
        self.result["failure"] = data
        return data

    def plan_preview_service(self, seen: Observed, target: str) -> None:
        name = self.params["preview_service"]
        before = ((seen.preview or {}).get("spec") or {}).get("selector")
        after = slot_selector(self.app, target)
        if before != after:
            self.add_step(
                "create" if seen.preview is None else "patch",
                "Service",
                name,
                changes=[FieldChange("spec.selector", before, after)],
            )

    def ensure_preview_service(self, seen: Observed, target: str) -> None:
        name = self.params["preview_service"]
        selector = slot_selector(self.app, target)
        if seen.preview is None:
            ports = [
                {k: v for k, v in port.items() if k in ("name", "port", "targetPort", "protocol")}
                for port in (seen.service.get("spec") or {}).get("ports") or []
            ]
            self.client.create(
                "Service",
                self.ns,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": name,
                        "namespace": self.ns,
                        "labels": {NAME_LABEL: self.app, MANAGED_BY_LABEL: MANAGER},
                    },
                    "spec": {"selector": selector, "ports": ports},
                },
            )
        elif (seen.preview.get("spec") or {}).get("selector") != selector:
            self.client.patch(
                "Service",
                self.ns,
                name,
                {"spec": {"selector": selector}},
                resource_version=seen.preview["metadata"]["resourceVersion"],
            )

    def do_promote(self, seen: Observed) -> None:
        pending = (seen.state or {}).get("pending_slot")
        if not pending:
            self.result["message"] = "no previewed release is waiting for promotion"
            return
        active = seen.active_slot
        self.plan_gates(pending)
        self.plan_switch(seen, pending)
        self.plan_scale_down(seen, active)
        self.result.update(active_slot=active, target_slot=pending, previous_slot=active)
        self.start_run("promote", pending)
        if self.check_mode:
            return
        version = self.slot_version(pending)
        self.params = dict(self.params, version=version)
        try:
            self.gate(pending)
        except ReleaseError as exc:
            self.end_run("failed", failure=self.failure_data(exc))
            raise
        self.promote(seen, pending, active)

    def do_monitor(self, seen: Observed) -> None:
        """The pipeline's last stage: watch the live slot; on a breach, roll back on our own."""
        active = seen.active_slot
        names = self.params["post_promotion_analysis"]
        if active is None:
            raise InvalidStateError(
                "nothing to monitor: the Service selects no slot",
                kind="Service",
                namespace=self.ns,
                name=seen.service_name,
                seen=json.dumps(seen.selector),
            )
        if not names:
            raise InvalidArgumentError("post_promotion_analysis", "the names of the checks to monitor with", names)
        self.add_step(
            "analyse",
            "Service",
            seen.service_name,
            gate={
                "phase": "post-promotion",
                "checks": names,
                "on_failure": "roll back to slot %s" % other_slot(active),
            },
        )
        self.result.update(active_slot=active, previous_slot=other_slot(active))
        if self.check_mode:
            self.lock.check()
            return
        self.start_run("monitor", active, phase="analysing")
        self.params = dict(self.params, version=self.params.get("version") or self.slot_version(active))
        try:
            self.analyse("post-promotion", names, active)
        except ReleaseError as exc:
            failure = self.failure_data(exc)
            self.result["breach"] = failure
            self.rollback_after_breach(seen, active, exc)
            raise
        self.end_run("done")

    def rollback_after_breach(self, seen: Observed, active: str, exc: ReleaseError) -> None:
        previous = other_slot(active)
        deployment = seen.slots.get(previous)
        if deployment is None:
            self.end_run("failed", failure=self.result["breach"])
            exc.hint = "No previous slot exists to roll back to; traffic stays on slot %s" % active
            return
        try:
            if not is_warm(deployment):
                recorded = ((self.state.get("slots") or {}).get(previous) or {}).get("replicas")
                self.scale(previous, int(recorded or replicas_of(seen.slots[active]) or 1))
                self.gate(previous)
            self.switch(seen, previous, revert=True)
            self.verify(seen, previous)
        except ReleaseError as inner:
            self.end_run("failed", failure=self.result["breach"])
            exc.hint = "The automatic rollback to slot %s failed too: %s" % (previous, inner)
            return
        self.result.update(reverted_at=self.now(), active_slot=previous)
        self.end_run("rolled_back", failure=self.result["breach"])
        exc.hint = "Traffic was rolled back to slot %s" % previous

    def do_rollback(self, seen: Observed) -> None:
        active = seen.active_slot
        if active is None:
            raise InvalidStateError(
                "nothing to roll back to: the Service selects no slot",
                kind="Service",
                namespace=self.ns,
                name=seen.service_name,
                seen=json.dumps(seen.selector),
            )
        previous = other_slot(active)
        deployment = seen.slots.get(previous)
        if deployment is None or image_of(deployment, self.container) is None:
            raise InvalidStateError(
                "no previous slot to roll back to",
                kind="Deployment",
                namespace=self.ns,
                name=deployment_name(self.app, previous),
                expected="a Deployment from an earlier release",
                seen="none",
            )
        recorded = ((seen.state or {}).get("slots") or {}).get(previous) or {}
        if recorded.get("failed_at"):
            raise InvalidStateError(
                "the previous slot holds a release that failed before it got traffic",
                kind="Deployment",
                namespace=self.ns,
                name=deployment_name(self.app, previous),
                expected="a slot that served traffic before",
                seen="version %s, failed at %s" % (recorded.get("version"), recorded["failed_at"]),
                hint="Release the version you want instead (playbooks/release.yml)",
            )
        warm = is_warm(deployment)
        replicas = int(recorded.get("replicas") or replicas_of(seen.slots[active]) or 1)
        if not warm:
            self.add_step(
                "scale",
                "Deployment",
                deployment_name(self.app, previous),
                changes=[FieldChange("spec.replicas", replicas_of(deployment), replicas)],
                note="the previous slot was scaled down: scale up and gate before switching",
            )
            self.plan_gates(previous)
        self.params = dict(
            self.params,
            pre_promotion_analysis=[],
            version=self.slot_version(previous)
            or ((deployment.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL),
        )
        self.plan_switch(seen, previous)
        self.plan_scale_down(seen, active)
        self.result.update(active_slot=active, target_slot=previous, previous_slot=active, instant=warm)
        self.start_run("rollback", previous)
        if self.check_mode:
            return
        try:
            if not warm:
                self.scale(previous, replicas)
                self.gate(previous)
        except ReleaseError as exc:
            self.end_run("failed", failure=self.failure_data(exc))
            raise
        self.promote(seen, previous, active)

    def do_abort(self, seen: Observed) -> None:
        state = seen.state or {}
        pending = state.get("pending_slot")
        run = state.get("run") if state.get("phase") in ACTIVE_PHASES else None
        active = seen.active_slot
        target = pending or (run or {}).get("target_slot")
        if target is None or target == active:
            self.result["message"] = "no unpromoted release to abort"
            return
        name = deployment_name(self.app, target)
        if seen.slots.get(target) is not None:
            self.add_step("delete", "Deployment", name)
        if self.params.get("preview_service") and seen.preview is not None:
            self.add_step("delete", "Service", self.params["preview_service"])
        self.result.update(active_slot=active, aborted_slot=target)
        if self.check_mode:
            self.lock.check()
            return
        info = self.lock.acquire(steal=bool(self.params.get("lock_steal")))
        self.result["lock"] = info.as_dict()
        self.heartbeat = LeaseHeartbeat(self.lock)
        self.state, self.state_version = self.store.read_or_initialise()
        if seen.slots.get(target) is not None:
            self.client.delete("Deployment", self.ns, name)
        if self.params.get("preview_service") and seen.preview is not None:
            self.client.delete("Service", self.ns, self.params["preview_service"])
        if self.state.get("phase") in ACTIVE_PHASES and self.state.get("run"):
            self.save(lambda s: finish_run(s, "aborted", now=self.now(), history_limit=self.params["history_limit"]))
        self.save(
            lambda s: dict(
                set_pending(s, None, now=self.now()),
                slots={k: v for k, v in (s.get("slots") or {}).items() if k != target},
            )
        )
