# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The life of one release run, whatever the strategy: lease, state record, plan, failure data, result.

A strategy (blue/green, canary) decides *what* to do; a :class:`ReleaseRun`
owns *how a run lives*: it takes the lease (or, in check mode, reports who
holds it), reads the record, supersedes or resumes a run that died, writes every
record change under the lease, turns a failure into data, and ends the run.
A run that lost its lease writes nothing more: from then on the record and the
cluster belong to the new holder.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidStateError,
    LockLostError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LeaseHeartbeat, LeaseLock
from ansible_collections.userservice.deploy.plugins.module_utils.plan import Plan, PlanStep
from ansible_collections.userservice.deploy.plugins.module_utils.state import (
    ACTIVE_PHASES,
    StateStore,
    begin_run,
    finish_run,
    mark_slot,
    slot_status,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat


def in_flight(state: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The run the record shows as in flight (its holder may have died), or None."""
    state = state or {}
    return state.get("run") if state.get("phase") in ACTIVE_PHASES and state.get("run") else None


class ReleaseRun:
    def __init__(
        self,
        client: Any,
        namespace: str,
        app: str,
        *,
        check_mode: bool,
        identity: str,
        lock_ttl: int = 60,
        lock_steal: bool = False,
        history_limit: int = 10,
        clock: Optional[Any] = None,
        log: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.client = client
        self.ns = namespace
        self.check_mode = check_mode
        self.clock = clock or SystemClock()
        self.log = log or (lambda message: None)
        self.id = uuid.uuid4().hex[:12]
        # The per-run nonce: two jobs with one identity (one CI run, two Jenkins stages) never share the lease.
        self.lock = LeaseLock(client, namespace, app, "%s run %s" % (identity, self.id), ttl=lock_ttl, clock=self.clock)
        self.lock_steal = lock_steal
        self.history_limit = history_limit
        self.store = StateStore(client, namespace, app)
        self.heartbeat: Optional[LeaseHeartbeat] = None
        self.lock_lost = False
        self.plan = Plan()
        self.result: Dict[str, Any] = {"verdicts": {}}
        self.warnings: List[str] = []
        self.state: Dict[str, Any] = {}
        self.state_version: Optional[str] = None

    # -- time, record, lease ------------------------------------------------------

    def now(self) -> str:
        return isoformat(self.clock.now())

    def adopt(self, state: Optional[Dict[str, Any]], version: Optional[str]) -> None:
        """Start from the record the planner read."""
        self.state, self.state_version = dict(state or {}), version

    def save(self, change: Callable[[Dict[str, Any]], Dict[str, Any]]) -> None:
        """Apply a pure transition to the record and write it (guarded by resourceVersion)."""
        if self.lock_lost:
            return
        if self.check_mode or self.heartbeat is None:
            self.state = change(self.state)
            return
        self.state, self.state_version = self.store.update(change, self.state_version)

    def confirm_lock(self) -> None:
        """Renew the lease right before a write that moves traffic or capacity (fails if it was taken)."""
        if self.lock_lost:
            raise LockLostError(self.ns, self.lock.name, "another run", None, hint="This run lost the lease earlier")
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
            self.lock_lost = True
            raise

    def add_step(self, action: str, kind: str, name: str, **details: Any) -> None:
        self.plan.add(PlanStep(action, kind, name, namespace=self.ns, **details))

    # -- the run --------------------------------------------------------------------

    def check_lock(self) -> None:
        """Check mode: the plan names a live holder; without lock_steal that is the error the run would meet."""
        holder = self.lock.check(steal=self.lock_steal)
        if holder:
            self.result["lock"] = {"holder": holder, "would_steal": True}
            self.add_step("steal", "Lease", self.lock.name, note="held by %s; lock_steal=true takes it over" % holder)

    def acquire(self) -> None:
        info = self.lock.acquire(steal=self.lock_steal)
        self.result["lock"] = info.as_dict()
        self.heartbeat = LeaseHeartbeat(self.lock)

    def start(
        self,
        action: str,
        target: Optional[str],
        *,
        serving: Optional[str],
        resume: bool = False,
        phase: str = "deploying",
    ) -> None:
        """Take the lease, then record the run. A run the record shows in flight died with its holder:
        it is resumed (``resume``) or superseded; a superseded run's never-served target is marked failed.
        """
        if self.check_mode:
            self.check_lock()
            return
        self.acquire()
        self.state, self.state_version = self.store.read_or_initialise()
        dead = in_flight(self.state)
        if dead:
            self.result["interrupted_run"] = dead
            if not resume:
                self.supersede(dead, serving)
        self.save(
            lambda s: begin_run(
                s,
                run_id=self.id,
                action=action,
                holder=self.lock.holder,
                now=self.now(),
                target_slot=target,
                resume=bool(dead) and resume,
                phase=phase,
            )
        )

    def start_unchanged(
        self,
        action: str,
        target: Optional[str],
        *,
        serving: Optional[str],
        planned: Any,
        reobserve: Callable[[], Any],
        resume: bool = False,
        phase: str = "deploying",
    ) -> Optional[Any]:
        """Start the run, then read the cluster again under the lease: act only on what the plan saw.

        Another run may have finished between this run's plan (made before the lease) and taking the
        lease; its changes would make the plan wrong. ``reobserve`` returns a fresh snapshot with a
        ``fingerprint()``; the run fails, having changed nothing, unless it equals ``planned``. Returns
        the fresh snapshot, or None in check mode (the plan is complete and nothing is written).
        """
        self.start(action, target, serving=serving, resume=resume, phase=phase)
        if self.check_mode:
            return None
        again = reobserve()
        if again.fingerprint() != planned:
            error = InvalidStateError(
                "the release changed between this run's plan and taking the lease",
                kind="ConfigMap",
                namespace=self.ns,
                name=self.store.name,
                expected="the Service, Deployments and record the plan was made on",
                seen="another run changed them",
                hint="Nothing was changed by this run; run it again to plan from the new state",
            )
            self.finish("failed", failure=self.failure_data(error))
            raise error
        return again

    def supersede(self, dead: Dict[str, Any], serving: Optional[str]) -> None:
        reason = "run %s (%s) died (lease lost or process killed) and was superseded by run %s" % (
            dead.get("id"),
            dead.get("action"),
            self.id,
        )
        self.save(
            lambda s: finish_run(
                s,
                "failed",
                now=self.now(),
                failure={"check": "run interrupted", "reason": reason},
                history_limit=self.history_limit,
            )
        )
        target = dead.get("target_slot")
        # Only a slot the dead run was putting a new release into, which never served: it is untested.
        if target and target != serving and slot_status(self.state, target) == "unverified":
            self.save(lambda s: mark_slot(s, target, "failed", now=self.now(), reason=reason))

    def finish(self, outcome: str, failure: Optional[Dict[str, Any]] = None) -> None:
        if self.check_mode or not self.state.get("run"):
            return
        self.save(lambda s: finish_run(s, outcome, now=self.now(), failure=failure, history_limit=self.history_limit))

    @contextlib.contextmanager
    def failing(self, outcome: str = "failed") -> Iterator[None]:
        """Any ReleaseError inside ends the run in ``outcome`` with the failure as data, then propagates."""
        try:
            yield
        except ReleaseError as exc:
            self.finish(outcome, failure=self.failure_data(exc))
            raise

    def failure_data(self, exc: ReleaseError) -> Dict[str, Any]:
        data: Dict[str, Any] = {"reason": str(exc), "check": exc.message, "expected": exc.expected, "seen": exc.seen}
        verdict = exc.data if exc.data.get("checks") else None
        if verdict:
            decided = verdict.get("decided_by")
            culprit = next(
                (c for c in verdict["checks"] if (c.get("check") == decided if decided else c["verdict"] != "pass")),
                {},
            )
            data.update(
                check=culprit.get("check"),
                verdict=culprit.get("verdict"),
                query=culprit.get("query"),
                value=culprit.get("value"),
                bound=culprit.get("bound"),
                samples=culprit.get("samples"),
            )
        elif exc.data:
            data["detail"] = exc.data
        self.result["failure"] = data
        return data

    def cleanup(self, what: str, action: Callable[[], Any]) -> Any:
        """Run a cleanup step after a failure; its own error becomes a warning and never hides the first one."""
        try:
            return action()
        except ReleaseError as exc:
            self.warnings.append("%s failed too (the original error is reported): %s" % (what, exc))
            return None

    def release_lock(self) -> None:
        if not self.check_mode and self.heartbeat is not None and not self.lock_lost:
            self.cleanup("releasing the lease", self.lock.release)
            self.heartbeat = None

    def finalise(self, planned_state: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        self.result["plan"] = self.plan.as_list()
        self.result["changed"] = self.plan.changed
        self.result["diff"] = self.plan.diff()
        self.result["state"] = self.state if not self.check_mode else (planned_state or {})
        return self.result
