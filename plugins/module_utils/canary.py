# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary releases: a stable and a canary track, weights that grow step by step while the metrics hold.

This file is the strategy, read as its steps; it runs on the same machinery as
blue/green: :mod:`run` (lease, record, failure data, plan), :mod:`capacity`
(every Deployment write behind the serving guard: the stable track is never
scaled down, deleted or replaced, except by the promotion of the very release
that ran as the canary), :mod:`autoscaler` (sizing from what serves now) and a
router from :mod:`traffic_weights`.

A release walks the steps from where the record says: a weight moves traffic
(never before the canary's pods passed their gate), a pause waits, a pause for
approval ends the run ``paused`` (``promoted`` continues, ``aborted`` ends it),
an analysis judges the canary track. A failure aborts (weight 0, canary scaled
to 0, stable untouched) or, with ``on_failure: freeze``, holds the weights and
stops. After the last step the stable track takes the canary's pod template by
a rolling update, traffic goes back to stable only, and the canary is removed.
A run that dies is resumed by the next run of the same release at its recorded
step, at its recorded weight.
"""

from __future__ import annotations

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
from ansible_collections.userservice.deploy.plugins.module_utils.canary_args import Step, steps_hash
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    SLOT_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    TRACK_LABEL,
    VERSION_LABEL,
    build_track,
    canonical_hash,
    deployment_name,
    image_of,
    release_hash_of,
    replicas_of,
    template_hash_of,
    track_selector,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    AnalysisFailedError,
    InvalidStateError,
    NotFoundError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.health import run_health_gate
from ansible_collections.userservice.deploy.plugins.module_utils.plan import FieldChange
from ansible_collections.userservice.deploy.plugins.module_utils.run import in_flight
from ansible_collections.userservice.deploy.plugins.module_utils.state import (
    SLOTS,
    mark_slot,
    set_phase,
    set_slot,
)
from ansible_collections.userservice.deploy.plugins.module_utils.strategy import Strategy
from ansible_collections.userservice.deploy.plugins.module_utils.traffic_weights import (
    TRAFFIC_LABEL,
    ReplicaRouter,
    make_router,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import (
    backoff,
    current_pods,
    pod_ready,
    poll,
    wait_for_rollout,
)

STABLE, CANARY = "stable", "canary"


def set_canary(state: Dict[str, Any], *, now: str, **fields: Any) -> Dict[str, Any]:
    """Record canary progress (release, steps hash, next step, weight, waiting, frozen)."""
    new = json.loads(json.dumps(state))
    new["strategy"] = "canary"
    progress = dict(new.get("canary") or {})
    progress.update(fields)
    new["canary"] = progress
    new["updated_at"] = now
    return new


def forget_track(state: Dict[str, Any], track: str, *, now: str) -> Dict[str, Any]:
    new = json.loads(json.dumps(state))
    (new.get("slots") or {}).pop(track, None)
    new["updated_at"] = now
    return new


class CanaryObserved:
    """What the cluster holds now (read-only snapshot taken by the planner)."""

    def __init__(
        self, client: Any, params: Dict[str, Any], store: Any, router: Any, *, allow_missing_service: bool
    ) -> None:
        app, ns = params["app"], params["namespace"]
        self.service_name = params.get("service") or app
        self.service = client.read_optional("Service", ns, self.service_name)
        if self.service is None and not allow_missing_service:
            raise NotFoundError(
                "the app's Service does not exist",
                kind="Service",
                namespace=ns,
                name=self.service_name,
                status=404,
                hint="Apply the shared objects first (playbooks/deploy.yml, role workload) or set option service",
            )
        self.selector = dict(((self.service or {}).get("spec") or {}).get("selector") or {})
        self.stable = client.read_optional("Deployment", ns, deployment_name(app, STABLE))
        self.canary = client.read_optional("Deployment", ns, deployment_name(app, CANARY))
        self.other_strategy = [
            name
            for name in [deployment_name(app, slot) for slot in SLOTS] + [app]
            if client.read_optional("Deployment", ns, name) is not None
        ]
        self.state, self.state_version = store.read()
        self.weight = router.observe() if self.service is not None and self.stable is not None else None

    @property
    def progress(self) -> Dict[str, Any]:
        return dict((self.state or {}).get("canary") or {})

    def fingerprint(self) -> Tuple[Any, ...]:
        return (
            json.dumps(self.selector, sort_keys=True),
            template_hash_of(self.stable),
            template_hash_of(self.canary),
            json.dumps(self.progress, sort_keys=True),
            self.weight,
        )


class Canary(Strategy):
    """Plans and runs one canary action."""

    def __init__(self, client: Any, params: Dict[str, Any], steps: List[Step], **kwargs: Any) -> None:
        super().__init__(client, params, **kwargs)
        self.steps = steps
        self.router = make_router(
            client, self.ns, self.app, params.get("router") or {}, before_write=self.job.confirm_lock, log=self.log
        )
        self.apex = self.selector_router
        self.result.update(strategy="canary", router=self.router.name, weights=[])

    # -- entry point ------------------------------------------------------------------

    def observe(self, allow_missing_service: bool = False) -> CanaryObserved:
        return CanaryObserved(
            self.client, self.params, self.job.store, self.router, allow_missing_service=allow_missing_service
        )

    def run(self) -> Dict[str, Any]:
        state = self.params["state"]
        seen = self.observe(allow_missing_service=self.check_mode and state == "released")
        self.job.adopt(seen.state, seen.state_version)
        handler = {
            "released": self.do_release,
            "promoted": self.do_promote,
            "aborted": self.do_abort,
            "monitored": self.do_monitor,
        }[state]
        try:
            handler(seen)
        finally:
            self.job.release_lock()
        return self.job.finalise(seen.state)

    def begin(self, seen: CanaryObserved, action: str, **kwargs: Any) -> bool:
        again = self.job.start_unchanged(
            action,
            CANARY,
            serving=STABLE,
            planned=seen.fingerprint(),
            reobserve=self.observe,
            phase=kwargs.pop("phase", "deploying"),
            **kwargs,
        )
        return again is not None

    # -- release ------------------------------------------------------------------------------

    def do_release(self, seen: CanaryObserved) -> None:
        if seen.other_strategy and seen.stable is None:
            raise InvalidStateError(
                "the namespace runs another strategy",
                kind="Deployment",
                namespace=self.ns,
                name=seen.other_strategy[0],
                expected="no blue/green slot or rolling Deployment next to the canary tracks",
                seen="Deployment(s) %s" % ", ".join(seen.other_strategy),
                hint="Release canary into a namespace of its own, or remove the other strategy's Deployments first",
            )
        desired = build_track(self.params, CANARY, self.router.canary_pod_labels())
        release = release_hash_of(desired)
        progress = seen.progress
        self.result.update(version=self.params["version"], release=release)
        if seen.stable is None:
            self.first_release(seen)
            return
        if release_hash_of(seen.stable) == release:
            self.result["status"] = "unchanged"
            self.result["message"] = "version %s (%s) already serves traffic from the stable track" % (
                self.params["version"],
                self.params["image"],
            )
            if progress.get("release") and progress.get("release") != release and seen.canary is not None:
                self.job.warnings.append(
                    "a canary of another release is still deployed (%s); abort it with playbooks/abort.yml"
                    % progress.get("version")
                )
            return
        same = progress.get("release") == release and progress.get("steps_hash") == steps_hash(self.steps)
        if same and progress.get("waiting"):
            self.result.update(
                status="paused",
                step=progress.get("next"),
                weight=progress.get("weight"),
                message="the canary of version %s waits (%s) before step %s: playbooks/promote.yml continues, "
                "playbooks/abort.yml ends it" % (self.params["version"], progress["waiting"], progress.get("next")),
            )
            return
        if same and progress.get("frozen"):
            raise InvalidStateError(
                "the canary of this release is frozen",
                kind="ConfigMap",
                namespace=self.ns,
                name=self.job.store.name,
                expected="a canary that is not frozen",
                seen="frozen at weight %s: %s" % (progress.get("weight"), (progress["frozen"] or {}).get("reason")),
                hint="Decide: playbooks/promote.yml ships it, playbooks/abort.yml takes its weight to 0",
            )
        dead = in_flight(seen.state)
        resume = same and dead is not None and dead.get("action") in ("release", "promote") and seen.canary is not None
        start = int(progress.get("next") or 0) if resume else 0
        weight = int(progress.get("weight") or 0) if resume else 0
        stable_size = self.autoscaler.live_size(seen.stable)
        self.plan_canary(seen, desired, weight, stable_size)
        self.plan_steps(start, weight, stable_size)
        self.plan_promotion()
        self.result.update(step=start, weight=weight, resumed=resume)
        if not self.begin(seen, "release", resume=resume):
            return
        if not resume or seen.canary is None or template_hash_of(seen.canary) != template_hash_of(desired):
            self.deploy_canary(desired, weight, stable_size, release)
        self.walk(start, weight, release)

    def first_release(self, seen: CanaryObserved) -> None:
        """No stable track yet: the release becomes it, gated, with the routes at weight 0 (nothing to compare)."""
        desired = build_track(self.params, STABLE, self.stable_pod_labels())
        apex = self.router.apex_selector()
        if seen.selector != apex:
            self.job.add_step(
                "patch",
                "Service",
                self.service_name,
                changes=[FieldChange("spec.selector", seen.selector, apex)],
                note="the app's Service selects what the %s router sends traffic to" % self.router.name,
            )
        for service in self.router.track_services(self.ports(seen)):
            self.job.add_step("create", "Service", service["metadata"]["name"])
        self.job.add_step(
            "create",
            "Deployment",
            self.name(STABLE),
            changes=[
                FieldChange("spec.template.image", None, self.params["image"]),
                FieldChange("spec.replicas", None, self.params["replicas"]),
            ],
            note="the first release is the stable track: there is nothing to compare a canary with",
        )
        self.plan_gates(STABLE)
        for kind in self.router.kinds:
            self.job.add_step("create", kind, self.router.desired(0)["metadata"]["name"], note="canary weight 0")
        self.result.update(status="released", step=None, weight=0)
        if not self.begin(seen, "release"):
            return
        with self.job.failing():
            self.apex.route(seen.selector, apex)
            self.ensure_track_services(seen)
            self.capacity.ensure(desired)
            self.job.save(lambda s: self.record_track(s, STABLE, desired))
            self.gate(STABLE)
            self.router.set_weight(0, None)
            self.result["autoscaler"] = self.autoscaler.follow(self.name(STABLE), [self.name(STABLE)])
        self.job.save(
            lambda s: mark_slot(s, STABLE, "served", now=self.now(), reason="first release, run %s" % self.job.id)
        )
        self.job.save(lambda s: set_canary(s, now=self.now(), release=release_hash_of(desired), done=True, weight=0))
        self.job.finish("done")
        self.notify("released", version=self.params["version"])

    def stable_pod_labels(self) -> Dict[str, str]:
        # Stable pods are always in the app's Service, whatever the router (the replica router selects on it).
        return {TRAFFIC_LABEL: "on"}

    def ports(self, seen: CanaryObserved) -> List[Dict[str, Any]]:
        return [
            {k: v for k, v in port.items() if k in ("name", "port", "targetPort", "protocol")}
            for port in ((seen.service or {}).get("spec") or {}).get("ports") or []
        ]

    def ensure_track_services(self, seen: CanaryObserved) -> None:
        for service in self.router.track_services(self.ports(seen)):
            name = service["metadata"]["name"]
            current = self.client.read_optional("Service", self.ns, name)
            if current is None:
                self.job.confirm_lock()
                self.client.create("Service", self.ns, service)
            elif (current.get("spec") or {}).get("selector") != service["spec"]["selector"]:
                self.job.confirm_lock()
                self.client.patch(
                    "Service",
                    self.ns,
                    name,
                    {"spec": {"selector": service["spec"]["selector"]}},
                    resource_version=current["metadata"]["resourceVersion"],
                )

    def record_track(self, state: Dict[str, Any], track: str, deployment: Dict[str, Any]) -> Dict[str, Any]:
        labels = ((deployment.get("metadata") or {}).get("labels")) or {}
        new = set_slot(
            state,
            track,
            image=image_of(deployment, self.container) or "",
            now=self.now(),
            version=labels.get(VERSION_LABEL),
            config_refs=self.params.get("config_refs") or (state.get("slots") or {}).get(CANARY, {}).get("config_refs"),
            replicas=replicas_of(deployment),
            template_hash=release_hash_of(deployment),
        )
        new["strategy"] = "canary"
        new["active_slot"] = STABLE
        return new

    # -- planning ---------------------------------------------------------------------------

    def plan_gates(self, track: str) -> None:
        self.job.add_step(
            "wait",
            "Deployment",
            self.name(track),
            gate={"rollout_timeout": self.params["rollout_timeout"]},
            note="rollout complete: observedGeneration, available replicas, no ProgressDeadlineExceeded",
        )
        self.job.add_step(
            "gate",
            "Deployment",
            self.name(track),
            gate=self.health.describe(),
            note="each pod answers the health endpoint through the API server pod proxy, before it gets traffic",
        )

    def plan_canary(self, seen: CanaryObserved, desired: Dict[str, Any], weight: int, stable: int) -> None:
        replicas = max(1, self.router.canary_replicas(weight, stable))
        current = seen.canary
        if current is None:
            self.job.add_step(
                "create",
                "Deployment",
                self.name(CANARY),
                changes=[
                    FieldChange("spec.template.image", None, self.params["image"]),
                    FieldChange("spec.replicas", None, replicas),
                ],
                note="no traffic until its pods passed the gate",
            )
        elif template_hash_of(current) != template_hash_of(desired):
            self.job.add_step(
                "update",
                "Deployment",
                self.name(CANARY),
                changes=[
                    FieldChange("spec.template.image", image_of(current, self.container), self.params["image"]),
                    FieldChange("spec.replicas", replicas_of(current), replicas),
                ],
                note="a new canary release replaces the one deployed (its weight goes to 0 first)",
            )
        self.plan_gates(CANARY)

    def plan_steps(self, start: int, weight: int, stable: int) -> None:
        for index in range(start, len(self.steps)):
            step = self.steps[index]
            label = "step %d: %s" % (index, step.describe())
            if step.kind == "weight":
                before = self.router.canary_replicas(weight, stable)
                after = self.router.canary_replicas(step.weight, stable)
                changes = [FieldChange("canary.weight", weight, step.weight)]
                if after != before:
                    changes.append(FieldChange("canary.replicas", before, after))
                note = "stable keeps %d pods" % stable
                if isinstance(self.router, ReplicaRouter):
                    note += "; the canary's share is %d%% (what pod counts allow)" % self.router.share(after, stable)
                kind = (self.router.kinds or ["Deployment"])[0]
                self.job.add_step("route", kind, label, changes=changes, note=note)
                weight = step.weight
            elif step.kind == "analysis":
                self.job.add_step(
                    "analyse",
                    "Deployment",
                    label,
                    gate={"checks": step.checks, "track": CANARY, "on_failure": self.params["on_failure"]},
                )
            elif step.kind == "pause":
                self.job.add_step("pause", "Deployment", label, gate={"seconds": step.seconds})
            else:
                self.job.add_step(
                    "pause", "Deployment", label, note="the run ends paused: promote.yml continues, abort.yml ends it"
                )

    def plan_promotion(self) -> None:
        self.job.add_step(
            "update",
            "Deployment",
            self.name(STABLE),
            note="promotion: the stable track takes the canary's pod template (rolling update, its live size)",
        )
        self.plan_gates(STABLE)
        self.job.add_step(
            "route",
            (self.router.kinds or ["Deployment"])[0],
            "canary weight 0",
            changes=[FieldChange("canary.weight", None, 0)],
        )
        self.job.add_step("delete", "Deployment", self.name(CANARY))

    # -- the walk ---------------------------------------------------------------------------

    def stable_size(self) -> int:
        return self.autoscaler.live_size(self.capacity.read(self.name(STABLE)))

    def deploy_canary(self, desired: Dict[str, Any], weight: int, stable: int, release: str) -> None:
        with self.job.failing():
            current = self.capacity.read(self.name(CANARY))
            if current is not None and template_hash_of(current) != template_hash_of(desired):
                # Another release's canary: out of traffic first, then replaced.
                self.take_out_of_traffic(current)
            body = json.loads(json.dumps(desired))
            body["spec"]["replicas"] = max(1, self.router.canary_replicas(weight, stable))
            self.capacity.ensure(body)
            self.job.save(lambda s: self.record_track(s, CANARY, body))
            self.job.save(
                lambda s: set_canary(
                    s,
                    now=self.now(),
                    release=release,
                    version=self.params["version"],
                    steps_hash=steps_hash(self.steps),
                    steps=[step.describe() for step in self.steps],
                    next=0,
                    weight=weight,
                    waiting=None,
                    frozen=None,
                    done=False,
                    started_at=self.now(),
                )
            )
            self.gate(CANARY)

    def walk(self, start: int, weight: int, release: str) -> None:
        """Take the steps from ``start``; then promote. Returns early (paused) at an approval."""
        for index in range(start, len(self.steps)):
            step = self.steps[index]
            self.job.save(lambda s, i=index: set_canary(s, now=self.now(), next=i))
            self.result["step"] = index
            try:
                if step.kind == "weight":
                    self.job.save(lambda s, i=index: set_phase(s, "stepping", now=self.now(), step="step %d" % i))
                    self.move_to(step.weight, weight, index)
                    weight = step.weight
                elif step.kind == "pause":
                    self.job.save(lambda s, i=index: set_phase(s, "stepping", now=self.now(), step="step %d pause" % i))
                    self.pause(step.seconds or 0)
                elif step.kind == "analysis":
                    self.analyse(index, step.checks or [])
                else:
                    self.wait_for("approval", index + 1, weight)
                    return
            except AnalysisFailedError as exc:
                verdict = (exc.data or {}).get("verdict")
                if verdict in ("inconclusive", "error"):
                    # Not a verdict on the canary (no data, or the measuring failed): like an approval, the
                    # weights hold and a person or pipeline decides.
                    why = "inconclusive analysis" if verdict == "inconclusive" else "analysis could not measure"
                    self.wait_for(why, index + 1, weight, failure=self.job.failure_data(exc))
                    exc.hint = (
                        "The canary holds at weight %s: playbooks/promote.yml continues, playbooks/abort.yml ends it"
                        % weight
                    )
                    raise
                self.fail(index, weight, exc)
                raise
            except ReleaseError as exc:
                self.fail(index, weight, exc)
                raise
            self.notify(
                "step", step=index, description=step.describe(), weight=weight, version=self.result.get("version")
            )
        self.promote(release)

    def move_to(self, weight: int, before: int, index: int) -> None:
        stable = self.stable_size()
        replicas = self.router.canary_replicas(weight, stable)
        canary = self.capacity.read(self.name(CANARY))
        if canary is None:
            raise InvalidStateError(
                "the canary Deployment is gone",
                kind="Deployment",
                namespace=self.ns,
                name=self.name(CANARY),
                hint="Release the version again to deploy a new canary",
            )
        if replicas > (replicas_of(canary) or 0):
            self.capacity.scale(self.name(CANARY), replicas)
            self.gate(CANARY)
        if isinstance(self.router, ReplicaRouter):
            pods = [p for p in current_pods(self.client, self.capacity.read(self.name(CANARY))) if pod_ready(p)]
            self.router.turn(pods, on=True)
            share = self.router.share(len(pods), stable)
            self.verify_apex()
        else:
            self.router.set_weight(weight, before)
            share = weight
        entry = {
            "step": index,
            "weight": weight,
            "share": share,
            "replicas": {STABLE: stable, CANARY: replicas},
            "at": self.now(),
        }
        self.result["weights"].append(entry)
        self.result["weight"] = weight
        self.job.save(lambda s: set_canary(s, now=self.now(), weight=weight, share=share))

    def verify_apex(self) -> None:
        self.apex.verify(
            self.router.apex_selector(),
            timeout=60.0,
            port=(
                ((self.client.read("Service", self.ns, self.service_name).get("spec") or {}).get("ports") or [{}])[0]
            ).get("port", 80),
            path=self.health.path,
            request_timeout=self.health.request_timeout,
        )

    def pause(self, seconds: float) -> None:
        end = self.clock.monotonic() + seconds
        poll(
            lambda: (self.clock.monotonic() >= end, None),
            timeout=None,
            interval=lambda: max(0.0, min(5.0, end - self.clock.monotonic())),
            what="canary pause",
            clock=self.clock,
            heartbeat=self.job.beat,
        )

    def analyse(self, index: int, names: List[str]) -> None:
        self.run_checks("step %d" % index, names, CANARY, "steps[%d].analysis" % index)

    def run_checks(
        self, label: str, names: List[str], track: str, option: str, inconclusive_fails: bool = True
    ) -> None:
        """The named checks on one track; raises the analysis error of a verdict other than pass (an inconclusive
        one only warns without ``inconclusive_fails``)."""
        checks = select_checks(parse_checks((self.params.get("analysis") or {}).get("checks")), names, option)
        deployment = self.capacity.read(self.name(track))
        context = AnalysisContext(
            namespace=self.ns,
            app=self.app,
            version=((deployment or {}).get("metadata") or {}).get("labels", {}).get(VERSION_LABEL),
            track=track,
            variables=(self.params.get("analysis") or {}).get("variables"),
            prometheus=self.prometheus,
            kube=self.client,
            clock=self.clock,
            heartbeat=self.job.beat,
            run_id=self.job.id,
        )
        self.job.save(lambda s: set_phase(s, "analysing", now=self.now(), step="%s analysis" % label))
        verdict = run_analysis(checks, context)
        self.result["verdicts"][label] = verdict
        error = analysis_error(verdict, "canary %s" % label, inconclusive_fails=True)
        if error is not None and verdict["verdict"] == "inconclusive" and not inconclusive_fails:
            self.job.warnings.append(str(error))
        elif error is not None:
            raise error

    def gate(self, track: str) -> None:
        deployment = wait_for_rollout(
            self.client,
            self.ns,
            self.name(track),
            timeout=self.params["rollout_timeout"],
            interval=backoff(0.25, 0.5),
            clock=self.clock,
            heartbeat=self.job.beat,
        )
        self.job.save(lambda s: set_phase(s, "gating", now=self.now()) if s.get("phase") != "gating" else s)
        self.result.setdefault("health", {})[track] = run_health_gate(
            self.client, deployment, self.health, clock=self.clock, heartbeat=self.job.beat
        )

    def wait_for(self, why: str, next_step: int, weight: int, failure: Optional[Dict[str, Any]] = None) -> None:
        self.job.save(lambda s: set_canary(s, now=self.now(), next=next_step, waiting=why, weight=weight))
        self.job.finish("paused", failure=failure)
        self.result.update(
            status="paused",
            waiting=why,
            step=next_step,
            message="the canary waits (%s) at weight %s before step %s: playbooks/promote.yml continues, "
            "playbooks/abort.yml ends it" % (why, weight, next_step),
        )
        self.notify("paused", waiting=why, step=next_step, weight=weight)

    # -- failure, abort, promotion -------------------------------------------------------------

    def fail(self, index: int, weight: int, exc: ReleaseError) -> None:
        failure = self.job.failure_data(exc)
        if self.job.lock_lost:
            exc.hint = "This run lost the release lease and stopped writing; the canary stays at weight %s" % weight
            return
        if self.params["on_failure"] == "freeze":
            self.job.cleanup(
                "recording the freeze",
                lambda: self.job.save(
                    lambda s: set_canary(s, now=self.now(), frozen={"step": index, "reason": str(exc)}, weight=weight)
                ),
            )
            self.job.cleanup("ending the run", lambda: self.job.finish("frozen", failure=failure))
            self.result["status"] = "frozen"
            exc.hint = (
                "The canary is frozen at weight %s (on_failure=freeze): nothing was rolled back. "
                "playbooks/promote.yml ships it, playbooks/abort.yml takes its weight to 0" % weight
            )
            self.notify("frozen", step=index, weight=weight, failure=failure)
            return
        self.job.cleanup("taking the canary out of traffic", self.abort_canary)
        self.result["aborted_at"] = self.now()
        self.job.cleanup(
            "recording the failure",
            lambda: self.job.save(
                lambda s: mark_slot(s, CANARY, "failed", now=self.now(), reason="failed at step %d: %s" % (index, exc))
            ),
        )
        self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
        self.result["status"] = "aborted"
        exc.hint = "The canary was aborted at step %d: weight 0, canary scaled to 0, stable untouched" % index
        self.notify("aborted", step=index, weight=weight, failure=failure)
        self.notify("failed", step=index, failure=failure)

    def take_out_of_traffic(self, canary: Optional[Dict[str, Any]]) -> None:
        if isinstance(self.router, ReplicaRouter):
            if canary is not None:
                self.router.turn(current_pods(self.client, canary), on=False)
        else:
            self.router.set_weight(0, None)

    def abort_canary(self) -> None:
        """Weight 0, then the canary scaled to 0. The stable track is never touched here."""
        canary = self.capacity.read(self.name(CANARY))
        self.take_out_of_traffic(canary)
        self.capacity.scale(self.name(CANARY), 0)
        self.job.save(lambda s: set_canary(s, now=self.now(), weight=0, share=0, waiting=None, frozen=None))
        self.result["weight"] = 0

    def promote(self, release: str) -> None:
        """The stable track takes the canary's template (rolling, at its live size), then the canary goes."""
        self.job.save(lambda s: set_phase(s, "promoting", now=self.now()))
        self.result["promoting_at"] = self.now()
        try:
            canary = self.capacity.read(self.name(CANARY))
            desired = self.stable_from(canary)
            desired["spec"]["replicas"] = max(self.params.get("replicas") or 1, self.stable_size())
            replaced = (self.job.state.get("slots") or {}).get(STABLE) or {}
            replaced = {"version": replaced.get("version"), "image": replaced.get("image")}
            self.capacity.promote(desired, canary)
            self.gate(STABLE)
            # What the promotion replaced goes in the same write as the new stable track (the monitor names it).
            self.job.save(
                lambda s: set_canary(self.record_track(s, STABLE, desired), now=self.now(), replaced=replaced)
            )
            self.take_out_of_traffic(self.capacity.read(self.name(CANARY)))
            if self.capacity.read(self.name(CANARY)) is not None:
                self.capacity.scale(self.name(CANARY), 0)
                self.job.confirm_lock()
                self.client.delete("Deployment", self.ns, self.name(CANARY))
            self.result["autoscaler"] = self.autoscaler.follow(self.name(STABLE), [self.name(STABLE)])
        except ReleaseError as exc:
            failure = self.job.failure_data(exc)
            self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
            raise
        self.job.save(
            lambda s: mark_slot(s, STABLE, "served", now=self.now(), reason="promoted by run %s" % self.job.id)
        )
        self.job.save(lambda s: forget_track(s, CANARY, now=self.now()))
        self.job.save(lambda s: set_canary(s, now=self.now(), done=True, weight=0, share=0, waiting=None, frozen=None))
        self.job.finish("done")
        self.result.update(status="promoted", weight=0)
        self.notify("promoted", version=((desired.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL))

    def stable_from(self, canary: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """The stable Deployment carrying the canary's release (its template, stable's labels and selector)."""
        if canary is None:
            raise InvalidStateError(
                "there is no canary to promote",
                kind="Deployment",
                namespace=self.ns,
                name=self.name(CANARY),
                hint="Release the version (playbooks/release.yml) to run its canary steps",
            )
        template = json.loads(json.dumps(canary["spec"]["template"]))
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update(track_selector(self.app, STABLE))
        labels.update(self.stable_pod_labels())
        labels.pop(SLOT_LABEL, None)
        template.setdefault("metadata", {})["labels"] = labels
        deadline = canary["spec"].get("progressDeadlineSeconds", self.params["progress_deadline_seconds"])
        meta_labels = dict((canary.get("metadata") or {}).get("labels") or {})
        meta_labels[TRACK_LABEL] = STABLE
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name(STABLE),
                "namespace": self.ns,
                "labels": meta_labels,
                "annotations": {
                    TEMPLATE_HASH_ANNOTATION: canonical_hash({"template": template, "deadline": deadline}),
                    "deploy.userservice.io/release-hash": release_hash_of(canary),
                },
            },
            "spec": {
                "replicas": replicas_of(canary) or 1,
                "progressDeadlineSeconds": deadline,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": track_selector(self.app, STABLE)},
                "template": template,
            },
        }

    # -- promote / abort actions ------------------------------------------------------------------

    def do_promote(self, seen: CanaryObserved) -> None:
        progress = seen.progress
        if seen.canary is None or progress.get("done") or not progress.get("release"):
            self.result.update(status="unchanged", message="no canary is waiting for promotion")
            return
        dead = in_flight(seen.state)
        full = bool(self.params.get("skip_steps")) or bool(progress.get("frozen"))
        if dead and not full:
            raise InvalidStateError(
                "a canary run died at step %s" % progress.get("next"),
                kind="ConfigMap",
                namespace=self.ns,
                name=self.job.store.name,
                expected="a canary waiting for approval, or a frozen one",
                seen="run %s (%s) in flight" % (dead.get("id"), dead.get("action")),
                hint="Run the release again (playbooks/release.yml) to resume it at its step, "
                "or promote with skip_steps=true to ship it now",
            )
        start = len(self.steps) if full else int(progress.get("next") or 0)
        if not full and not self.steps:
            raise InvalidStateError(
                "promote needs the canary steps to continue them",
                kind="ConfigMap",
                namespace=self.ns,
                name=self.job.store.name,
                hint="Pass the same steps as the release (the role does), or skip_steps=true to promote now",
            )
        if not full and steps_hash(self.steps) != progress.get("steps_hash"):
            raise InvalidStateError(
                "the steps differ from the ones the canary started with",
                kind="ConfigMap",
                namespace=self.ns,
                name=self.job.store.name,
                expected="steps %s" % progress.get("steps"),
                seen="steps %s" % [step.describe() for step in self.steps],
                hint="Promote with the release's steps, or skip_steps=true to ship it now",
            )
        weight = int(progress.get("weight") or 0)
        stable = self.autoscaler.live_size(seen.stable)
        self.plan_steps(start, weight, stable)
        self.plan_promotion()
        self.result.update(step=start, weight=weight, version=progress.get("version"))
        if not self.begin(seen, "promote", phase="stepping"):
            return
        self.job.save(lambda s: set_canary(s, now=self.now(), waiting=None, frozen=None))
        self.walk(start, weight, progress["release"])

    def do_abort(self, seen: CanaryObserved) -> None:
        progress = seen.progress
        active = seen.canary is not None and (replicas_of(seen.canary) or 0) > 0
        if not active and not in_flight(seen.state):
            self.result.update(status="unchanged", message="no canary to abort")
            return
        kind = (self.router.kinds or ["Deployment"])[0]
        self.job.add_step("route", kind, "canary weight 0", changes=[FieldChange("canary.weight", seen.weight, 0)])
        if active:
            self.job.add_step(
                "scale",
                "Deployment",
                self.name(CANARY),
                changes=[FieldChange("spec.replicas", replicas_of(seen.canary), 0)],
            )
        self.result.update(version=progress.get("version"))
        if not self.begin(seen, "abort", phase="stepping"):
            return
        with self.job.failing("aborted"):
            self.abort_canary()
        self.job.save(
            lambda s: mark_slot(s, CANARY, "failed", now=self.now(), reason="aborted by run %s" % self.job.id)
        )
        self.job.save(lambda s: set_canary(s, now=self.now(), done=True))
        self.job.finish("aborted")
        self.result.update(status="aborted", weight=0)
        self.notify("aborted", version=progress.get("version"))

    # -- monitor ----------------------------------------------------------------------------------

    def do_monitor(self, seen: CanaryObserved) -> None:
        """The pipeline's last stage: judge the stable track with the post-promotion checks; a breach fails the
        run with its data and marks the release failed, and traffic is never moved: a canary keeps no older
        release warm, so the way back is a release of the version it replaced (named in the hint)."""
        names = self.params["post_promotion_analysis"]  # validate_params refused an empty list
        if seen.stable is None:
            raise InvalidStateError(
                "there is no stable track to monitor",
                kind="Deployment",
                namespace=self.ns,
                name=self.name(STABLE),
                hint="Release a version first (playbooks/release.yml)",
            )
        version = ((seen.stable.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL)
        self.job.add_step(
            "analyse",
            "Deployment",
            self.name(STABLE),
            gate={"phase": "post-promotion", "checks": names, "on_failure": "fail the run; traffic stays"},
        )
        self.result.update(version=version)
        if not self.begin(seen, "monitor", phase="analysing"):
            return
        try:
            # As blue/green's monitor: a check with no data to judge warns; only a verdict fails the run.
            self.run_checks("post-promotion", names, STABLE, "post_promotion_analysis", inconclusive_fails=False)
        except ReleaseError as exc:
            failure = self.job.failure_data(exc)
            if self.job.lock_lost or not is_breach(exc):
                exc.hint = self.no_verdict_hint("nothing was changed")
            else:
                self.result["breach"] = failure
                reason = "monitor breach: %s" % exc.message
                self.job.cleanup(
                    "recording the breach",
                    lambda: self.job.save(lambda s: mark_slot(s, STABLE, "failed", now=self.now(), reason=reason)),
                )
                replaced = seen.progress.get("replaced") or {}
                exc.hint = (
                    "Traffic stays on the stable track (version %s): a canary keeps no older release warm. "
                    "Release the version it replaced to go back through the canary steps: "
                    "playbooks/release.yml -e user_service_version=%s (image %s)"
                    % (version, replaced.get("version"), replaced.get("image"))
                    if replaced.get("version")
                    else "Traffic stays on the stable track (version %s); the record names no earlier release, "
                    "release a fixed or earlier version with playbooks/release.yml" % version
                )
                self.notify("failed", version=version, failure=failure)
            self.job.cleanup("ending the run", lambda: self.job.finish("failed", failure=failure))
            raise
        self.job.finish("done")
        self.result.update(status="monitored", message="version %s passed %s" % (version, ", ".join(names)))
