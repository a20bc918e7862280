# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue/green releases: two slot Deployments, one active Service, one selector patch.

This file is the strategy, read as its steps. How a run lives (lease, record,
failure data, plan) is :mod:`run`; every Deployment write goes through the
serving guard in :mod:`capacity`; traffic moves through :mod:`traffic`; the HPA
follows traffic through :mod:`autoscaler`.

Failure semantics:

* before the switch (rollout, health gate, pre-promotion analysis): traffic is
  untouched, the new slot is marked ``failed`` and scaled to 0
  (``on_failure: scale_down``) or kept;
* after the switch (verification, the post-switch watch, post-promotion
  analysis): the selector is flipped back and verified, the autoscaler follows,
  the new slot is marked ``failed`` and handled by ``on_failure``, then the run
  fails;
* every failure is returned and stored in the state record as data.

Rollback goes to the last slot that served before the current one and is
idempotent; it never sends traffic to a slot that failed, never served, or is a
previewed release waiting for approval.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import (
    AnalysisContext,
    analysis_error,
    is_breach,
    parse_checks,
    run_analysis,
    select_checks,
)
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_plan import NO_POD, BlueGreenPlan
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    POD_TEMPLATE_HASH_LABEL,
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
from ansible_collections.userservice.deploy.plugins.module_utils.health import run_health_gate
from ansible_collections.userservice.deploy.plugins.module_utils.rollback_rules import Where, choose_rollback, refusal
from ansible_collections.userservice.deploy.plugins.module_utils.run import in_flight
from ansible_collections.userservice.deploy.plugins.module_utils.serving_watch import watch_serving
from ansible_collections.userservice.deploy.plugins.module_utils.state import (
    SLOTS,
    SWITCHING_ACTIONS,
    mark_slot,
    other_slot,
    record_revert,
    record_switch,
    set_pending,
    set_phase,
    set_slot,
    slot_status,
    start_draining,
    stop_draining,
)
from ansible_collections.userservice.deploy.plugins.module_utils.strategy import Strategy
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import (
    backoff,
    isoformat,
    parse_time,
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


class Observed:
    """What the cluster holds now (read-only snapshot taken by the planner)."""

    def __init__(self, client: Any, params: Dict[str, Any], store: Any, *, allow_missing_service: bool) -> None:
        app, ns = params["app"], params["namespace"]
        self.service_name = params.get("service") or app
        self.service = client.read_optional("Service", ns, self.service_name)
        if self.service is None and not allow_missing_service:
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
        # A namespace moving from the rolling strategy: its Deployment is named after the app.
        self.rolling = client.read_optional("Deployment", ns, app)
        self.state, self.state_version = store.read()
        self.selector = dict(((self.service or {}).get("spec") or {}).get("selector") or {})

    @property
    def active_slot(self) -> Optional[str]:
        """The slot the Service selects: the truth for traffic, whatever the record says."""
        slot = self.selector.get(SLOT_LABEL)
        return slot if slot in SLOTS else None

    def fingerprint(self) -> Tuple[Any, ...]:
        """What a decision rests on; compared again once the lease is held."""
        return (
            json.dumps(self.selector, sort_keys=True),
            tuple(template_hash_of(self.slots[slot]) for slot in SLOTS),
            (self.state or {}).get("pending_slot"),
            (self.state or {}).get("active_slot"),
        )


class BlueGreen(Strategy, BlueGreenPlan):
    """Plans and runs one blue/green action."""

    def __init__(self, client: Any, params: Dict[str, Any], **kwargs: Any) -> None:
        super().__init__(client, params, **kwargs)
        self.router = self.selector_router
        # (selector, pinned selector) when a first release must first pin a name-only Service.
        self.pin: Optional[Tuple[Dict[str, str], Dict[str, str]]] = None

    # -- entry point ------------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        state = self.params["state"]
        first_release = state in ("released", "previewed")
        seen = Observed(
            self.client, self.params, self.job.store, allow_missing_service=self.check_mode and first_release
        )
        self.job.adopt(seen.state, seen.state_version)
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
            self.job.release_lock()
        return self.job.finalise(seen.state)

    def begin(self, seen: Observed, action: str, target: Optional[str], **kwargs: Any) -> bool:
        """Start the run; False in check mode (the plan is complete, nothing is written).

        Once the lease is held the cluster is read again: a decision made on a snapshot taken before
        the lease (another run may have just finished) is not acted on.
        """
        again = self.job.start_unchanged(
            action,
            target,
            serving=seen.active_slot,
            planned=seen.fingerprint(),
            reobserve=lambda: Observed(self.client, self.params, self.job.store, allow_missing_service=False),
            **kwargs,
        )
        if again is None:
            return False
        self.finish_draining(again, target)
        return True

    # -- release / preview -------------------------------------------------------------------

    def do_release(self, seen: Observed) -> None:
        active = seen.active_slot
        preview_only = self.params["state"] == "previewed"
        dead = in_flight(seen.state)
        serving_matches = active is not None and template_hash_of(seen.slots[active]) == template_hash_of(
            build_deployment(self.params, active)
        )
        # A release or promote that died after switching to the slot we would deploy again is resumed at
        # verification, with the dead run's own record of what served before it.
        resume_after_switch = bool(
            dead and dead.get("action") in SWITCHING_ACTIONS and dead.get("target_slot") == active and serving_matches
        )
        if serving_matches and not resume_after_switch:
            self.result.update(
                active_slot=active,
                message="version %s (%s) already serves traffic from slot %s"
                % (self.params["version"], self.params["image"], active),
            )
            return
        if resume_after_switch:
            target = active
            previous = dead.get("previous_slot")
            if previous == target:
                previous = None  # a record written before resumes kept it: never scale what we resume
        else:
            target = other_slot(active) if active else "blue"
            previous = active
        serving = seen.slots.get(active) if active else seen.rolling
        replicas = self.autoscaler.size_for(self.params["replicas"], serving)
        desired = build_deployment(dict(self.params, replicas=replicas), target)
        if resume_after_switch:
            # What traffic went back to if this run must switch back: the slot that served before.
            expected = self.router.selector_for(seen.selector, previous) if previous else dict(seen.selector)
        elif active is None:
            expected = self.plan_first_switch_pin(seen)
        else:
            expected = dict(seen.selector)
        if not resume_after_switch:
            self.plan_deployment(seen, target, desired)
            self.plan_gates(target, self.params["pre_promotion_analysis"])
            if self.params.get("preview_service"):
                self.plan_preview_service(seen, target)
        if not preview_only:
            self.plan_switch(expected, target)
            self.plan_scale_down(seen, previous)
        self.result.update(active_slot=active, target_slot=target, previous_slot=previous, replicas=replicas)
        resume = bool(dead) and dead.get("action") == ("preview" if preview_only else "release")
        resume = resume and dead.get("target_slot") == target
        if not self.begin(seen, "preview" if preview_only else "release", target, resume=resume or resume_after_switch):
            return
        if not resume_after_switch:
            self.deploy_and_gate(seen, target, desired, replicas, expected)
            if preview_only:
                self.job.save(lambda s: set_pending(s, target, now=self.now()))
                self.job.finish("done")
                self.result["pending_slot"] = target
                return
        self.promote(target, previous, expected, self.params["version"], self.params["post_promotion_analysis"])

    def deploy_and_gate(
        self, seen: Observed, target: str, desired: Dict[str, Any], replicas: int, expected: Dict[str, str]
    ) -> None:
        try:
            if self.pin:
                self.router.route(*self.pin)
            self.capacity.ensure(desired)
            self.job.save(
                lambda s: set_slot(
                    s,
                    target,
                    image=self.params["image"],
                    now=self.now(),
                    version=self.params["version"],
                    config_refs=self.params["config_refs"],
                    replicas=replicas,
                    template_hash=template_hash_of(desired),
                )
            )
            self.gate(target)
            if self.params.get("preview_service"):
                self.ensure_preview_service(seen, target)
            self.analyse("pre-promotion", self.params["pre_promotion_analysis"], target, self.params["version"])
        except AnalysisInconclusive as exc:
            # Like a paused rollout: the new slot stays up, traffic stays, a person or pipeline decides.
            self.job.save(lambda s: set_pending(s, target, now=self.now()))
            self.job.finish("done", failure=self.job.failure_data(exc))
            self.result["pending_slot"] = target
            raise
        except ReleaseError as exc:
            self.fail_before_switch(target, exc)
            raise

    def fail_before_switch(self, target: str, exc: ReleaseError) -> None:
        failure = self.job.failure_data(exc)
        if self.job.lock_lost:
            exc.hint = self.lost_lease_hint()
            return
        if self.params["on_failure"] == "scale_down":
            self.job.cleanup("scaling the failed slot down", lambda: self.capacity.scale(self.name(target), 0))
        self.job.cleanup(
            "recording the failure",
            lambda: self.job.save(
                lambda s: mark_slot(s, target, "failed", now=self.now(), reason="failed before the switch: %s" % exc)
            ),
        )
        self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
        self.notify("failed", slot=target, failure=failure)

    # -- the switch and what follows it ---------------------------------------------------------

    def promote(
        self,
        target: str,
        previous: Optional[str],
        expected: Dict[str, str],
        version: Optional[str],
        post_analysis: List[str],
        rolling_back: bool = False,
        outcome: str = "done",
        failure: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Switch to ``target``, prove it, and keep it; on failure switch back to ``expected`` and prove that."""
        after = self.router.selector_for(expected, target)
        try:
            self.router.route(expected, after)
        except ReleaseError as exc:
            # Nothing moved: the target keeps its status, the run fails with the reason.
            failure = self.job.failure_data(exc)
            self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
            raise
        switched = self.clock.monotonic()
        self.result["switched_at"] = self.now()
        # One record write: traffic is on the target, and the run verifies it.
        self.job.save(
            lambda s: set_phase(record_switch(s, target, now=self.result["switched_at"]), "verifying", now=self.now())
        )
        try:
            self.result["autoscaler"] = self.autoscaler.follow(self.name(target), [self.name(s) for s in SLOTS])
            self.result["verified_endpoints"] = self.verify(after)
            if not rolling_back:
                watch_serving(
                    self.client,
                    self.ns,
                    self.name(target),
                    self.service_name,
                    self.service_port(),
                    self.health,
                    window=float(self.params.get("post_switch_watch") or 0),
                    clock=self.clock,
                    heartbeat=self.job.beat,
                )
                self.analyse("post-promotion", post_analysis, target, version)
        except ReleaseError as exc:
            self.after_switch_failed(target, previous, after, expected, exc)
            raise
        self.result["active_slot"] = target
        reason = "rolled back to by run %s" % self.job.id if rolling_back else "served from run %s" % self.job.id
        self.job.save(lambda s: mark_slot(s, target, "served", now=self.now(), reason=reason))
        if rolling_back and previous and slot_status(self.job.state, previous) != "failed":
            self.job.save(
                lambda s: mark_slot(
                    s, previous, "rolled_back", now=self.now(), reason="rolled back from by run %s" % self.job.id
                )
            )
        self.job.finish(outcome, failure=failure)
        self.notify("rolled_back" if rolling_back else "released", slot=target, previous_slot=previous, version=version)
        if previous and previous != target:
            self.drain(previous, switched)

    def after_switch_failed(
        self, target: str, previous: Optional[str], after: Dict[str, str], expected: Dict[str, str], exc: ReleaseError
    ) -> None:
        failure = self.job.failure_data(exc)
        if self.job.lock_lost:
            exc.hint = self.lost_lease_hint()
            return
        reverted = self.job.cleanup("switching traffic back", lambda: self.switch_back(after, expected, previous))
        if reverted:
            self.result["reverted_at"] = self.now()
            self.job.save(lambda s: record_revert(s, previous, now=self.result["reverted_at"]) if previous else s)
            self.job.save(
                lambda s: mark_slot(s, target, "failed", now=self.now(), reason="failed after the switch: %s" % exc)
            )
            if self.params["on_failure"] == "scale_down":
                self.job.cleanup("scaling the failed slot down", lambda: self.capacity.scale(self.name(target), 0))
            exc.hint = "Traffic was switched back to %s and verified; slot %s is marked failed" % (
                "slot %s" % previous if previous else "the pods that served before",
                target,
            )
        else:
            live = json.dumps(self.router.observe(), sort_keys=True)
            exc.hint = "Switching back failed: traffic is still on slot %s (Service selector %s). Run %s" % (
                target,
                live,
                "playbooks/rollback.yml" if previous else "playbooks/status.yml and fix the Service by hand",
            )
        self.job.cleanup(
            "ending the run", lambda: self.job.finish("rolled_back" if reverted else "failed", failure=failure)
        )
        self.notify("rolled_back" if reverted else "failed", slot=target, previous_slot=previous, failure=failure)

    def switch_back(self, after: Dict[str, str], expected: Dict[str, str], previous: Optional[str]) -> bool:
        """Route back and prove it; True only when the selector was written (or already back) and verified."""
        if expected == after or (previous is not None and self.capacity.read(self.name(previous)) is None):
            return False
        self.router.route(after, expected)
        if expected.get(POD_TEMPLATE_HASH_LABEL) != NO_POD:
            self.verify(expected)
        if previous is not None:
            self.result["autoscaler"] = self.autoscaler.follow(self.name(previous), [self.name(s) for s in SLOTS])
        return True

    def service_port(self) -> Any:
        service = self.client.read("Service", self.ns, self.service_name)
        return (((service.get("spec") or {}).get("ports") or [{}])[0]).get("port", 80)

    def verify(self, selector: Dict[str, str]) -> List[str]:
        return self.router.verify(
            selector,
            timeout=self.params["verify_timeout"],
            port=self.service_port(),
            path=self.health.path,
            request_timeout=self.health.request_timeout,
        )

    def drain(self, slot: str, switched: float) -> None:
        """Keep the previous slot warm for scale_down_delay without holding the lease, then scale it down.

        The record says ``draining`` meanwhile, so a rollback can take the lease and switch back to the
        warm slot at once; the scale-down then no longer applies and is skipped. A run that dies or loses
        the lease here leaves the scale-down to the next run, which performs it once it is due.
        """
        delay = self.params["scale_down_delay"]
        if delay < 0 or self.capacity.read(self.name(slot)) is None:
            return
        due = switched + delay
        remaining = max(0.0, due - self.clock.monotonic())
        due_at = isoformat(self.clock.now() + datetime.timedelta(seconds=remaining))
        self.job.save(lambda s: start_draining(s, slot, run_id=self.job.id, due=due_at, now=self.now()))
        if remaining > 0:
            self.job.release_lock()
            self.log("keeping slot %s warm for %.0fs (a rollback may take over meanwhile)" % (slot, remaining))
            poll(
                lambda: (self.clock.monotonic() >= due, None),
                timeout=None,
                interval=lambda: max(0.0, min(5.0, due - self.clock.monotonic())),
                what="scale-down delay",
                clock=self.clock,
            )
            try:
                self.job.acquire()
            except ReleaseError as exc:
                self.job.warnings.append(
                    "the scale-down of slot %s is left to the run that holds the lease now: %s" % (slot, exc)
                )
                return
            self.job.state, self.job.state_version = self.job.store.read_or_initialise()
            draining = self.job.state.get("draining") or {}
            if draining.get("run_id") != self.job.id:
                self.job.warnings.append("slot %s was not scaled down: a later run took over its warm window" % slot)
                return
        try:
            self.scale_down(slot)
        except LockLostError as exc:
            self.job.warnings.append(
                "the scale-down of slot %s is left to the next run: %s (%s)" % (slot, exc.message, exc.seen)
            )

    def scale_down(self, slot: str) -> None:
        if self.capacity.scale(self.name(slot), 0):
            self.result["scaled_down"] = {"slot": slot, "at": self.now()}
        self.job.save(lambda s: stop_draining(s, now=self.now()) if s.get("draining") else s)

    def finish_draining(self, seen: Observed, target: Optional[str]) -> None:
        """A scale-down an earlier run left (it died in its warm window, or lost the lease): do it once due.

        When this run's target is the draining slot (a rollback to it, a release into it), the run takes
        the slot over and the scale-down no longer applies.
        """
        draining = (seen.state or {}).get("draining") or {}
        slot = draining.get("slot")
        if not slot:
            return
        due = parse_time(draining.get("due"))
        if slot in (seen.active_slot, target, (seen.state or {}).get("pending_slot")):
            self.job.save(lambda s: stop_draining(s, now=self.now()))
            return
        if due is not None and due <= self.clock.now():
            self.log("finishing the scale-down of slot %s left by run %s" % (slot, draining.get("run_id")))
            self.scale_down(slot)

    # -- gates ----------------------------------------------------------------------------

    def gate(self, target: str) -> None:
        deployment = wait_for_rollout(
            self.client,
            self.ns,
            self.name(target),
            timeout=self.params["rollout_timeout"],
            interval=backoff(0.25, 0.5),
            clock=self.clock,
            # Every blue/green gate comes before the Service is written.
            consequence="traffic was not moved",
            heartbeat=self.job.beat,
        )
        # A gate inside a rollback belongs to that run's phase; only a deploy moves on to gating.
        self.job.save(lambda s: set_phase(s, "gating", now=self.now()) if s.get("phase") == "deploying" else s)
        self.result["health"] = run_health_gate(
            self.client, deployment, self.health, clock=self.clock, heartbeat=self.job.beat
        )

    def analyse(self, phase: str, names: List[str], slot: str, version: Optional[str]) -> None:
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
            version=version or self.slot_version(slot),
            slot=slot,
            variables=(self.params.get("analysis") or {}).get("variables"),
            prometheus=self.prometheus,
            kube=self.client,
            clock=self.clock,
            heartbeat=self.job.beat,
            run_id=self.job.id,
        )
        # Pre-promotion analysis is a phase of its own; after the switch it refines the current phase.
        self.job.save(
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
                self.job.warnings.append(str(error))
                return
            raise AnalysisInconclusive(error)
        raise error

    def slot_version(self, slot: str) -> Optional[str]:
        version = ((self.job.state.get("slots") or {}).get(slot) or {}).get("version")
        if version:
            return version
        deployment = self.capacity.read(self.name(slot))
        return ((deployment or {}).get("metadata") or {}).get("labels", {}).get(VERSION_LABEL)

    # -- planning ---------------------------------------------------------------------------

    def ensure_preview_service(self, seen: Observed, target: str) -> None:
        name = self.params["preview_service"]
        selector = slot_selector(self.app, target)
        if seen.preview is None:
            ports = [
                {k: v for k, v in port.items() if k in ("name", "port", "targetPort", "protocol")}
                for port in ((seen.service or {}).get("spec") or {}).get("ports") or []
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

    # -- promote -------------------------------------------------------------------------------

    def do_promote(self, seen: Observed) -> None:
        pending = (seen.state or {}).get("pending_slot")
        active = seen.active_slot
        if not pending:
            self.result["message"] = "no previewed release is waiting for promotion"
            return
        if pending == active:
            raise InvalidStateError(
                "the previewed slot already serves traffic: there is nothing to promote",
                kind="Service",
                namespace=self.ns,
                name=self.service_name,
                expected="a pending slot other than the active one",
                seen="pending and active are both slot %s" % pending,
                hint="Read the release with playbooks/status.yml; release the version you want (playbooks/release.yml)",
            )
        if slot_status(seen.state, pending) == "failed":
            raise refusal(seen.state or {}, pending, "promote", self.where)
        version = self.slot_version(pending)
        self.plan_gates(pending, [])
        self.plan_switch(dict(seen.selector), pending)
        self.plan_scale_down(seen, active)
        self.result.update(active_slot=active, target_slot=pending, previous_slot=active)
        if not self.begin(seen, "promote", pending):
            return
        try:
            self.gate(pending)
        except ReleaseError as exc:
            self.fail_before_switch(pending, exc)
            raise
        self.promote(pending, active, dict(seen.selector), version, self.params["post_promotion_analysis"])

    # -- rollback ---------------------------------------------------------------------------

    @property
    def where(self) -> Where:
        return Where(self.ns, self.app, self.service_name)

    def rollback_target(self, seen: Observed, action: str = "roll back") -> Tuple[Optional[str], Optional[str]]:
        active = seen.active_slot
        other = seen.slots.get(other_slot(active)) if active else None
        return choose_rollback(
            seen.state,
            seen.selector,
            active,
            image_of(other, self.container),
            self.params.get("rollback_to"),
            self.where,
            action,
        )

    def do_rollback(self, seen: Observed) -> None:
        target, noop = self.rollback_target(seen)
        if target is None:
            self.result.update(active_slot=seen.active_slot, message=noop)
            return
        active = seen.active_slot
        self.plan_rollback(seen, target, active)
        if not self.begin(seen, "rollback", target):
            return
        self.roll_back(seen, target, active)

    def roll_back(
        self, seen: Observed, target: str, active: Optional[str], failure: Optional[Dict[str, Any]] = None
    ) -> None:
        size = self.result["replicas"]
        with self.job.failing():
            if self.capacity.scale(self.name(target), max(size, replicas_of(seen.slots[target]) or 0)) or not is_warm(
                seen.slots[target]
            ):
                self.gate(target)
        self.promote(
            target,
            active,
            dict(seen.selector),
            self.slot_version(target),
            [],
            rolling_back=True,
            outcome="rolled_back" if failure else "done",
            failure=failure,
        )

    # -- monitor -------------------------------------------------------------------------------

    def do_monitor(self, seen: Observed) -> None:
        """The pipeline's last stage: watch the live slot; on a breach (and only then), roll back."""
        active = seen.active_slot
        names = self.params["post_promotion_analysis"]
        if not names:
            raise InvalidArgumentError("post_promotion_analysis", "the names of the checks to monitor with", names)
        try:
            target, why = self.rollback_target(seen, "roll back automatically")
        except InvalidStateError as exc:
            if active is None:
                raise
            target, why = None, "%s (%s)" % (exc.message, exc.seen)
        self.job.add_step(
            "analyse",
            "Service",
            self.service_name,
            gate={
                "phase": "post-promotion",
                "checks": names,
                "on_failure": "roll back to slot %s" % target if target else "traffic stays: %s" % why,
            },
        )
        if target:
            self.plan_rollback(seen, target, active)
        self.result.update(active_slot=active, previous_slot=target)
        if not self.begin(seen, "monitor", active, phase="analysing"):
            return
        try:
            self.analyse("post-promotion", names, active, self.slot_version(active))
        except ReleaseError as exc:
            failure = self.job.failure_data(exc)
            if self.job.lock_lost or not is_breach(exc):
                # Not a verdict on the release (bad configuration, Prometheus down, lease lost): hands off.
                exc.hint = self.no_verdict_hint("traffic was left on slot %s" % active)
                self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
                raise
            self.result["breach"] = failure
            reason = "monitor breach: %s" % exc.message
            self.job.save(lambda s: mark_slot(s, active, "failed", now=self.now(), reason=reason))
            if target is None:
                exc.hint = "Traffic stays on slot %s: %s" % (active, why)
                self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
                raise
            try:
                self.roll_back(seen, target, active, failure=failure)
            except ReleaseError as inner:
                exc.hint = "The automatic rollback to slot %s failed too: %s" % (target, inner)
                raise exc from inner
            exc.hint = "Traffic was rolled back to slot %s and verified" % target
            raise
        self.job.finish("done")

    # -- abort ------------------------------------------------------------------------------------

    def do_abort(self, seen: Observed) -> None:
        """Remove a previewed or half-done release that never served; never a slot that served."""
        state = seen.state or {}
        active = seen.active_slot
        dead = in_flight(state)
        target = state.get("pending_slot")
        if target is None and dead and dead.get("action") in ("release", "preview"):
            target = dead.get("target_slot")
        status = slot_status(state, target)
        removable = bool(target) and target != active and status in (None, "unverified", "failed")
        if not removable and not dead:
            self.result["message"] = "no unpromoted release to abort"
            return
        if removable and seen.slots.get(target) is not None:
            self.job.add_step("delete", "Deployment", self.name(target))
        elif target and target != active:
            self.result["kept_slot"] = target
            self.job.warnings.append(
                "slot %s is kept: its history shows it served traffic (%s), so abort does not remove it"
                % (target, status)
            )
        preview = seen.preview if removable and self.owns(seen.preview) else None
        if preview is not None:
            self.job.add_step("delete", "Service", self.params["preview_service"])
        self.result.update(active_slot=active, aborted_slot=target if removable else None)
        if self.check_mode:
            self.job.check_lock()
            return
        self.job.acquire()
        self.job.state, self.job.state_version = self.job.store.read_or_initialise()
        with self.job.failing("aborted"):
            if removable:
                self.capacity.delete(self.name(target))
            if preview is not None:
                self.client.delete("Service", self.ns, self.params["preview_service"])
        if in_flight(self.job.state):
            self.job.finish("aborted")
        self.job.save(
            lambda s: dict(
                set_pending(s, None, now=self.now()),
                slots={k: v for k, v in (s.get("slots") or {}).items() if not (removable and k == target)},
            )
        )

    @staticmethod
    def owns(service: Optional[Dict[str, Any]]) -> bool:
        """Only a preview Service this collection created is deleted; a user's own stays."""
        labels = ((service or {}).get("metadata") or {}).get("labels") or {}
        return service is not None and labels.get(MANAGED_BY_LABEL) == MANAGER
