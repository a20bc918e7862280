# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release state record, kept in ConfigMap ``<app>-release`` (key ``state.json``).

The record is what lets a run that died be resumed or rolled back by the next
one: it says which slot serves traffic, what each slot runs (image by digest,
config refs), which run is in flight and at which step, and why the last one
failed. Transitions are pure functions (state in, new state out) so the state
machine is tested without a cluster; :class:`StateStore` only reads and writes
the ConfigMap with a resourceVersion guard.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidStateError,
)

SCHEMA_VERSION = 1
DATA_KEY = "state.json"
HISTORY_LIMIT = 10
SLOTS = ("blue", "green")
# The canary strategy's two Deployments; the record keeps them under "slots" like blue/green's.
TRACKS = ("stable", "canary")
STRATEGIES = ("bluegreen", "canary")

# "paused": a canary waits for approval at a step; "frozen": a canary held its weights after a failure.
REST_PHASES = ("idle", "done", "failed", "rolled_back", "aborted", "paused", "frozen")
# What a slot's history says about it: rollback, abort and the monitor decide on this, never on guesses.
#   unverified  deployed, never passed its gates and served (a dead run's target stays here until superseded)
#   served      passed its gates and served traffic
#   failed      failed a gate, an analysis or a verification, before or after the switch, or its run died
#   rolled_back served, then traffic was rolled back away from it (a rollback never goes back to it by itself)
SLOT_STATUSES = ("unverified", "served", "failed", "rolled_back")
# Actions whose run moves traffic to their target: only these may be resumed after their switch.
SWITCHING_ACTIONS = ("release", "promote")
ACTIVE_PHASES = ("deploying", "gating", "analysing", "switched", "verifying", "stepping", "promoting")
PHASES = REST_PHASES + ACTIVE_PHASES
OUTCOMES = ("done", "failed", "rolled_back", "aborted", "paused", "frozen")

# Forward moves of a run. Every active phase may also end in any outcome, and a
# resumed run may re-enter the phase it died in.
_FORWARD: Dict[str, Tuple[str, ...]] = {
    "deploying": ("gating", "switched", "stepping", "promoting"),
    "gating": ("analysing", "switched", "done", "stepping", "promoting"),
    "analysing": ("switched", "done", "stepping", "promoting"),
    "switched": ("verifying", "done"),
    "verifying": ("done",),
    # canary: weights and pauses, analyses between them, then the promotion
    "stepping": ("analysing", "gating", "promoting"),
    "promoting": ("gating",),
}

MANAGED_LABELS = {"app.kubernetes.io/managed-by": "userservice.deploy"}


def record_name(app: str) -> str:
    return "%s-release" % app


def new_state(app: str) -> Dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "app": app,
        "phase": "idle",
        "active_slot": None,
        "pending_slot": None,
        "revision": 0,
        "slots": {},
        "run": None,
        "history": [],
        "last_failure": None,
        "draining": None,
        "strategy": None,
        # canary progress: steps (their hash), the next step, the weight, approval waits and freezes
        "canary": None,
        "updated_at": None,
    }


def other_slot(slot: str) -> str:
    if slot not in SLOTS:
        raise InvalidArgumentError("slot", "blue or green", slot)
    return SLOTS[1 - SLOTS.index(slot)]


def _copy(state: Dict[str, Any]) -> Dict[str, Any]:
    return copy.deepcopy(state)


def check_transition(current: str, target: str) -> None:
    if current in REST_PHASES:
        allowed: Tuple[str, ...] = ()
    else:
        allowed = _FORWARD.get(current, ()) + OUTCOMES + (current,)
    if target not in allowed:
        raise InvalidStateError(
            "release state cannot move from %s to %s" % (current, target),
            expected="one of %s" % (", ".join(allowed) or "a new run (begin_run)"),
            seen=target,
        )


def begin_run(
    state: Dict[str, Any],
    *,
    run_id: str,
    action: str,
    holder: str,
    now: str,
    target_slot: Optional[str] = None,
    phase: str = "deploying",
    resume: bool = False,
) -> Dict[str, Any]:
    """Start a run. Refuses while another run is recorded as in flight, unless resuming it."""
    if phase not in ACTIVE_PHASES:
        raise InvalidStateError("a run must start in an active phase", expected=", ".join(ACTIVE_PHASES), seen=phase)
    in_flight = state.get("run") if state.get("phase") in ACTIVE_PHASES else None
    if in_flight and not resume:
        raise InvalidStateError(
            "run %s is recorded as in flight at phase %s" % (in_flight.get("id"), state["phase"]),
            expected="no run in flight",
            seen="run %s (%s) by %s" % (in_flight.get("id"), in_flight.get("action"), in_flight.get("holder")),
            hint="Resume it, roll it back or abort it before starting a new one",
            data={"run": in_flight, "phase": state["phase"]},
        )
    new = _copy(state)
    resumed = in_flight if in_flight and resume else None
    new["phase"] = phase
    new["run"] = {
        "id": run_id,
        "action": action,
        "holder": holder,
        "target_slot": target_slot,
        # A resumed run continues the dead one: what served before it and when it began are the dead run's
        # facts. Taking them from the record now would name the slot it already switched to as "previous".
        "previous_slot": resumed.get("previous_slot") if resumed else state.get("active_slot"),
        "step": phase,
        "started_at": resumed.get("started_at", now) if resumed else now,
        "resumed_from": resumed.get("id") if resumed else None,
    }
    if resumed and resumed.get("switched_at"):
        new["run"]["switched_at"] = resumed["switched_at"]
    new["updated_at"] = now
    return new


def set_phase(state: Dict[str, Any], phase: str, *, now: str, step: Optional[str] = None) -> Dict[str, Any]:
    """Move an in-flight run to its next phase (``step`` refines it, e.g. ``canary step 3``)."""
    if not state.get("run"):
        raise InvalidStateError("no run in flight", expected="begin_run first", seen=state.get("phase"))
    check_transition(state["phase"], phase)
    new = _copy(state)
    new["phase"] = phase
    new["run"]["step"] = step or phase
    new["updated_at"] = now
    return new


def set_slot(
    state: Dict[str, Any],
    slot: str,
    *,
    image: str,
    now: str,
    version: Optional[str] = None,
    config_refs: Optional[List[str]] = None,
    replicas: Optional[int] = None,
    template_hash: Optional[str] = None,
) -> Dict[str, Any]:
    """Record what a slot (or canary track) now runs; the revision counts every new pod template."""
    if slot not in SLOTS + TRACKS:
        raise InvalidArgumentError("slot", "blue, green, stable or canary", slot)
    if "@sha256:" not in image:
        raise InvalidArgumentError("image", "an image reference pinned by digest (name@sha256:...)", image)
    new = _copy(state)
    current = new["slots"].get(slot) or {}
    if current.get("image") != image or current.get("config_refs") != list(config_refs or []):
        new["revision"] = int(new.get("revision") or 0) + 1
    same = current.get("image") == image and current.get("config_refs") == list(config_refs or [])
    # The pod template decides what the slot runs (env, labels, probes too), not the image and config alone.
    same_template = same and current.get("template_hash") == template_hash
    keep = same_template and current.get("status") in ("served", "rolled_back")
    new["slots"][slot] = {
        "image": image,
        "digest": image.split("@", 1)[1],
        "version": version,
        "config_refs": list(config_refs or []),
        "revision": new["revision"],
        "template_hash": template_hash,
        "deployed_at": current.get("deployed_at", now) if same else now,
        # What the slot runs now has not served yet; the same template keeps what it earned.
        # What the slot runs now must prove itself again, unless this very template already served.
        "status": current["status"] if keep else "unverified",
        "status_reason": current.get("status_reason") if keep else "deployed by run %s" % _run_id(new),
        "status_at": current.get("status_at", now) if keep else now,
    }
    if replicas is not None:
        new["slots"][slot]["replicas"] = replicas
    elif same and current.get("replicas") is not None:
        new["slots"][slot]["replicas"] = current["replicas"]
    new["updated_at"] = now
    return new


def _run_id(state: Dict[str, Any]) -> Optional[str]:
    return (state.get("run") or {}).get("id")


def slot_status(state: Optional[Dict[str, Any]], slot: Optional[str]) -> Optional[str]:
    """A slot's status; records written before statuses existed count a slot with ``failed_at`` as failed."""
    if not slot:
        return None
    entry = ((state or {}).get("slots") or {}).get(slot)
    if not entry:
        return None
    if entry.get("status") in SLOT_STATUSES:
        return entry["status"]
    return "failed" if entry.get("failed_at") else "served"


def mark_slot(state: Dict[str, Any], slot: str, status: str, *, now: str, reason: str) -> Dict[str, Any]:
    """Record what a slot proved (or failed to prove), with the reason, as data."""
    if status not in SLOT_STATUSES:
        raise InvalidStateError("unknown slot status", expected=", ".join(SLOT_STATUSES), seen=status)
    new = _copy(state)
    entry = (new.get("slots") or {}).get(slot)
    if entry is None:
        return new
    entry.update(status=status, status_reason=reason, status_at=now)
    if status == "failed":
        entry["failed_at"] = now
    else:
        entry.pop("failed_at", None)
    new["updated_at"] = now
    return new


def record_revert(state: Dict[str, Any], slot: str, *, now: str) -> Dict[str, Any]:
    """Traffic went back to ``slot`` within the same run; a preview of that slot is no longer pending."""
    new = _copy(state)
    new["active_slot"] = slot
    if new.get("pending_slot") == slot:
        new["pending_slot"] = None
    if new.get("run"):
        new["run"]["reverted_at"] = now
    new["updated_at"] = now
    return new


def start_draining(state: Dict[str, Any], slot: str, *, run_id: str, due: str, now: str) -> Dict[str, Any]:
    """The previous slot is kept warm until ``due``, without the lease: a rollback may pre-empt the scale-down."""
    new = _copy(state)
    new["draining"] = {"slot": slot, "run_id": run_id, "due": due}
    new["updated_at"] = now
    return new


def stop_draining(state: Dict[str, Any], *, now: str) -> Dict[str, Any]:
    new = _copy(state)
    new["draining"] = None
    new["updated_at"] = now
    return new


def set_pending(state: Dict[str, Any], slot: Optional[str], *, now: str) -> Dict[str, Any]:
    """Mark a deployed and gated slot as waiting for promotion (preview), or clear it."""
    if slot is not None:
        other_slot(slot)
    new = _copy(state)
    new["pending_slot"] = slot
    new["updated_at"] = now
    return new


def record_switch(state: Dict[str, Any], slot: str, *, now: str) -> Dict[str, Any]:
    """Traffic now goes to ``slot``."""
    other_slot(slot)
    new = set_phase(state, "switched", now=now) if state.get("phase") != "switched" else _copy(state)
    new["active_slot"] = slot
    if new.get("pending_slot") == slot:
        new["pending_slot"] = None
    new["run"]["switched_at"] = now
    new["updated_at"] = now
    return new


def finish_run(
    state: Dict[str, Any],
    outcome: str,
    *,
    now: str,
    failure: Optional[Dict[str, Any]] = None,
    history_limit: int = HISTORY_LIMIT,
) -> Dict[str, Any]:
    """End the run in ``outcome``, append it to the bounded history and keep a failure as data."""
    if outcome not in OUTCOMES:
        raise InvalidStateError("unknown outcome", expected=", ".join(OUTCOMES), seen=outcome)
    if not state.get("run"):
        raise InvalidStateError("no run in flight", expected="begin_run first", seen=state.get("phase"))
    check_transition(state["phase"], outcome)
    if history_limit < 1:
        raise InvalidArgumentError("history_limit", "an integer >= 1", history_limit)
    new = _copy(state)
    run = new["run"]
    active = new.get("active_slot")
    entry = {
        "run_id": run["id"],
        "action": run["action"],
        "holder": run["holder"],
        "outcome": outcome,
        "phase_reached": state["phase"],
        "active_slot": active,
        "target_slot": run.get("target_slot"),
        "image": (new["slots"].get(active) or {}).get("image") if active else None,
        "version": (new["slots"].get(active) or {}).get("version") if active else None,
        "revision": (new["slots"].get(active) or {}).get("revision") if active else new.get("revision"),
        "started_at": run["started_at"],
        "finished_at": now,
    }
    if failure is not None:
        failure = dict(failure, run_id=run["id"], phase=state["phase"], step=run.get("step"), time=now)
        entry["failure"] = failure
        new["last_failure"] = failure
    new["history"] = (list(new.get("history") or []) + [entry])[-history_limit:]
    new["phase"] = outcome
    new["run"] = None
    new["updated_at"] = now
    return new


def validate_state(state: Any, where: str) -> Dict[str, Any]:
    if not isinstance(state, dict):
        raise InvalidStateError(
            "release state is not a JSON object", seen=type(state).__name__, kind="ConfigMap", name=where
        )
    schema = state.get("schema")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise InvalidStateError(
            "release state schema %r is not supported" % schema,
            kind="ConfigMap",
            name=where,
            expected="schema <= %d" % SCHEMA_VERSION,
            seen=repr(schema),
            hint="A newer version of userservice.deploy wrote it; upgrade the collection",
        )
    if state.get("phase") not in PHASES:
        raise InvalidStateError(
            "unknown phase in release state",
            kind="ConfigMap",
            name=where,
            expected=", ".join(PHASES),
            seen=repr(state.get("phase")),
        )
    merged = new_state(state.get("app") or "")
    merged.update(state)
    return merged


class StateStore:
    """Reads and writes the state ConfigMap; every write is guarded by resourceVersion."""

    def __init__(self, client: Any, namespace: str, app: str) -> None:
        self.client = client
        self.namespace = namespace
        self.app = app
        self.name = record_name(app)

    def read(self) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
        """``(state, resourceVersion)``, or ``(None, None)`` when no record exists yet."""
        config_map = self.client.read_optional("ConfigMap", self.namespace, self.name)
        if config_map is None:
            return None, None
        raw = (config_map.get("data") or {}).get(DATA_KEY)
        where = "%s/%s" % (self.namespace, self.name)
        if raw is None:
            raise InvalidStateError(
                "ConfigMap has no %s key" % DATA_KEY,
                kind="ConfigMap",
                namespace=self.namespace,
                name=self.name,
                hint="Delete it if it is not a release record",
            )
        try:
            state = json.loads(raw)
        except ValueError as exc:
            raise InvalidStateError(
                "%s is not valid JSON" % DATA_KEY,
                kind="ConfigMap",
                namespace=self.namespace,
                name=self.name,
                seen=str(exc),
            ) from exc
        return validate_state(state, where), config_map["metadata"].get("resourceVersion")

    def _body(self, state: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(MANAGED_LABELS, **{"app.kubernetes.io/name": self.app}),
            },
            "data": {DATA_KEY: encode(state)},
        }

    def initialise(self, state: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], str]:
        """Create the record; ConflictError if someone created it first."""
        state = state or new_state(self.app)
        created = self.client.create("ConfigMap", self.namespace, self._body(state))
        return state, created["metadata"].get("resourceVersion")

    def read_or_initialise(self) -> Tuple[Dict[str, Any], Optional[str]]:
        state, version = self.read()
        if state is None:
            return self.initialise()
        return state, version

    def write(self, state: Dict[str, Any], resource_version: str) -> str:
        """Replace the record if it is still at ``resource_version`` (ConflictError otherwise)."""
        patched = self.client.patch(
            "ConfigMap",
            self.namespace,
            self.name,
            {"data": {DATA_KEY: encode(state)}},
            resource_version=resource_version,
        )
        return patched["metadata"].get("resourceVersion")

    def update(
        self, change: Callable[[Dict[str, Any]], Dict[str, Any]], resource_version: Optional[str] = None
    ) -> Tuple[Dict[str, Any], str]:
        """Compare-and-update: apply the pure ``change`` to the current record and write it.

        With ``resource_version`` the record must not have moved since the caller
        read it; either way a concurrent writer makes this raise ConflictError.
        """
        state, current_version = self.read_or_initialise()
        if resource_version is not None and current_version != resource_version:
            raise ConflictError(
                "release state changed since it was read",
                kind="ConfigMap",
                namespace=self.namespace,
                name=self.name,
                status=409,
                expected="resourceVersion %s" % resource_version,
                seen="resourceVersion %s" % current_version,
                hint="Another run wrote the record; check the release lock",
            )
        new = change(state)
        return new, self.write(new, current_version or "")


def encode(state: Dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))
