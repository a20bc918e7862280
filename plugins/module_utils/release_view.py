# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read model of a release: what the Service, the record, the slots and the lock say, and where they disagree.

``release_info`` and ``status.yml`` read through this view; it uses the same
helpers the engine writes with (slot names, images, slot statuses, the lock's
one-clock expiry), so what it reports is what the next run will decide on,
including what ``rollback.yml`` would do.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    SLOT_LABEL,
    VERSION_LABEL,
    deployment_name,
    image_of,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidArgumentError, InvalidStateError
from ansible_collections.userservice.deploy.plugins.module_utils.lock import (
    TAKEOVER_ANNOTATION,
    LeaseLock,
    lease_expiry,
)
from ansible_collections.userservice.deploy.plugins.module_utils.rollback_rules import Where, choose_rollback
from ansible_collections.userservice.deploy.plugins.module_utils.state import (
    ACTIVE_PHASES,
    SLOTS,
    TRACKS,
    StateStore,
    new_state,
    other_slot,
    slot_status,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import isoformat

OPTIONS: Dict[str, Dict[str, Any]] = {
    "namespace": dict(type="str", required=True),
    "app": dict(type="str", default="user-service"),
    "service": dict(type="str"),
    "preview_service": dict(type="str"),
    "container_name": dict(type="str"),
    "history_limit": dict(type="int", default=10),
}


def validate_params(params: Dict[str, Any]) -> None:
    if params["history_limit"] < 0:
        raise InvalidArgumentError("history_limit", "an integer >= 0", params["history_limit"])
    for option in ("namespace", "app"):
        if not params[option]:
            raise InvalidArgumentError(option, "a non-empty name", params[option])


def _digest(image: Optional[str]) -> Optional[str]:
    return image.split("@", 1)[1] if image and "@" in image else None


def describe_slot(
    slot: str, deployment: Optional[Dict[str, Any]], recorded: Dict[str, Any], name: str, container: str
) -> Dict[str, Any]:
    status = (deployment or {}).get("status") or {}
    image = image_of(deployment, container)
    return {
        "deployment": name,
        "exists": deployment is not None,
        "image": image,
        "digest": _digest(image),
        "version": (((deployment or {}).get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL),
        "replicas": int(((deployment or {}).get("spec") or {}).get("replicas") or 0) if deployment else 0,
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "recorded_image": recorded.get("image"),
        "recorded_digest": recorded.get("digest"),
        "recorded_version": recorded.get("version"),
        "config_refs": list(recorded.get("config_refs") or []),
        "revision": recorded.get("revision"),
        "deployed_at": recorded.get("deployed_at"),
        "status": slot_status({"slots": {slot: recorded}}, slot) if recorded else None,
        "status_reason": recorded.get("status_reason"),
    }


def describe_lock(lock: LeaseLock, lease: Optional[Dict[str, Any]], now: datetime.datetime) -> Dict[str, Any]:
    name = lock.name
    if lease is None:
        return {"name": name, "exists": False, "holder": None, "held": False, "expired": False}
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or None
    expiry = lease_expiry(lease)
    # The same one-clock rule the engine takes the lock over by (the API server's time, when it gives it).
    left = lock.remaining(lease) if holder else None
    expired = bool(holder) and left is not None and left <= 0
    return {
        "name": name,
        "exists": True,
        "holder": holder,
        # A holder with no renewal time can never expire: treat it as held, as LeaseLock does.
        "held": bool(holder) and not expired,
        "expired": expired,
        "acquired_at": spec.get("acquireTime"),
        "renewed_at": spec.get("renewTime"),
        "duration_seconds": spec.get("leaseDurationSeconds"),
        "expires_at": isoformat(expiry) if expiry and holder else None,
        "seconds_left": round(left, 1) if left is not None and not expired else 0,
        "transitions": int(spec.get("leaseTransitions") or 0),
        "takeover": ((lease.get("metadata") or {}).get("annotations") or {}).get(TAKEOVER_ANNOTATION),
    }


def find_problems(
    active: Optional[str], state: Dict[str, Any], slots: Dict[str, Dict[str, Any]], service_exists: bool, exists: bool
) -> List[str]:
    """Every disagreement between the Service, the record and the Deployments, in words."""
    problems = []
    if not exists:
        return problems
    recorded = state.get("active_slot")
    if not service_exists:
        problems.append("the active Service does not exist")
    elif active is None and recorded:
        problems.append("the Service selects no slot but the state record says %s" % recorded)
    elif active and recorded and active != recorded and state.get("phase") not in ACTIVE_PHASES:
        problems.append("the Service selects slot %s but the state record says %s" % (active, recorded))
    elif active and not recorded:
        problems.append("the Service selects slot %s but the state record names no active slot" % active)
    if active and not slots[active]["exists"]:
        problems.append("the Service selects slot %s whose Deployment does not exist" % active)
    for slot, info in slots.items():
        if info["exists"] and info["recorded_digest"] and info["digest"] != info["recorded_digest"]:
            problems.append(
                "slot %s runs %s but the state record says %s" % (slot, info["digest"], info["recorded_digest"])
            )
    if active and slots[active]["exists"] and slots[active]["replicas"] == 0:
        problems.append("the active slot %s is scaled to 0" % active)
    return problems


def find_track_problems(state: Dict[str, Any], tracks: Dict[str, Dict[str, Any]], service_exists: bool) -> List[str]:
    problems = []
    if not service_exists:
        problems.append("the app's Service does not exist")
    stable = tracks["stable"]
    if not stable["exists"]:
        problems.append("the stable track's Deployment does not exist")
    elif stable["replicas"] == 0:
        problems.append("the stable track is scaled to 0")
    for track, info in tracks.items():
        if info["exists"] and info["recorded_digest"] and info["digest"] != info["recorded_digest"]:
            problems.append(
                "track %s runs %s but the state record says %s" % (track, info["digest"], info["recorded_digest"])
            )
    return problems


def describe_canary(state: Dict[str, Any], tracks: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Where the canary stands and what the next command does, in words."""
    progress = dict(state.get("canary") or {})
    phase = state.get("phase")
    steps = list(progress.get("steps") or [])
    step = progress.get("next")
    if phase in ACTIVE_PHASES:
        status, next_command = "in progress", "a run is at step %s (or died there: release.yml again resumes it)" % step
    elif progress.get("waiting"):
        status = "paused"
        next_command = "promote.yml continues with step %s (%s); abort.yml takes the canary to weight 0" % (
            step,
            steps[step] if step is not None and step < len(steps) else "the promotion",
        )
    elif progress.get("frozen"):
        status = "frozen"
        next_command = "promote.yml ships the canary as it is; abort.yml takes it to weight 0"
    elif progress.get("done") or not tracks["canary"]["exists"]:
        status, next_command = "idle", "release.yml with a new version starts a canary"
    elif tracks["canary"]["replicas"] == 0:
        status, next_command = "aborted", "release.yml with a (fixed) version starts a new canary"
    else:
        status, next_command = "stopped", "release.yml resumes the canary; abort.yml ends it"
    return {
        "status": status,
        "version": progress.get("version"),
        "step": step,
        "steps": steps,
        "weight": progress.get("weight"),
        "share": progress.get("share"),
        "waiting": progress.get("waiting"),
        "frozen": progress.get("frozen"),
        "last_failure": state.get("last_failure"),
        "next_command": next_command,
    }


def describe_rollback(
    active: Optional[str],
    selector: Dict[str, str],
    state: Dict[str, Any],
    slots: Dict[str, Dict[str, Any]],
    where: Where,
) -> str:
    """What ``rollback.yml`` (with no rollback_to) would do now, in words: the engine's own decision."""
    other = other_slot(active) if active else None
    try:
        target, noop = choose_rollback(state, selector, active, slots[other]["image"] if other else None, None, where)
    except (InvalidStateError, InvalidArgumentError) as exc:
        return "refused: %s" % exc.message
    if noop:
        return "no-op: %s" % noop
    info = slots[target]
    warm = info["available"] >= info["replicas"] > 0
    return "switch to slot %s (version %s)%s" % (
        target,
        info["recorded_version"] or info["version"],
        ", instant: it is warm" if warm else ", after scaling it up and gating it",
    )


def read_release(client: Any, params: Dict[str, Any], now: datetime.datetime) -> Dict[str, Any]:
    app, ns = params["app"], params["namespace"]
    container = params.get("container_name") or app
    service_name = params.get("service") or app
    preview_name = params.get("preview_service") or "%s-preview" % app

    service = client.read_optional("Service", ns, service_name)
    selector = dict(((service or {}).get("spec") or {}).get("selector") or {})
    active = selector.get(SLOT_LABEL) if selector.get(SLOT_LABEL) in SLOTS else None
    preview = client.read_optional("Service", ns, preview_name)

    store = StateStore(client, ns, app)
    recorded_state, _version = store.read()
    state = recorded_state or new_state(app)

    deployments = {slot: client.read_optional("Deployment", ns, deployment_name(app, slot)) for slot in SLOTS}
    slots = {
        slot: describe_slot(
            slot, deployments[slot], (state.get("slots") or {}).get(slot) or {}, deployment_name(app, slot), container
        )
        for slot in SLOTS
    }
    for slot, info in slots.items():
        info["active"] = slot == active
        info["pending"] = slot == state.get("pending_slot")

    # Reading needs no identity of ours: nobody can hold the lease under this name.
    lock = LeaseLock(client, ns, app, "release_info (read only)")
    lease = lock.read()

    exists = recorded_state is not None or any(d is not None for d in deployments.values()) or active is not None
    canary = state.get("strategy") == "canary"
    if canary:
        tracks = {
            track: describe_slot(
                track,
                client.read_optional("Deployment", ns, deployment_name(app, track)),
                (state.get("slots") or {}).get(track) or {},
                deployment_name(app, track),
                container,
            )
            for track in TRACKS
        }
        problems = find_track_problems(state, tracks, service is not None)
    else:
        problems = find_problems(active, state, slots, service is not None, exists)
    in_flight = state.get("phase") in ACTIVE_PHASES and bool(state.get("run"))
    limit = params["history_limit"]
    history = list(state.get("history") or [])
    result: Dict[str, Any] = {
        "changed": False,
        "exists": exists,
        "active_slot": active,
        "recorded_active_slot": state.get("active_slot"),
        "consistent": not problems,
        "problems": problems,
        "service": {"name": service_name, "exists": service is not None, "selector": selector},
        "slots": slots,
        "images": {slot: info["image"] for slot, info in slots.items()},
        "pending_slot": state.get("pending_slot"),
        "phase": state.get("phase"),
        "revision": int(state.get("revision") or 0),
        "in_flight": in_flight,
        "run": state.get("run") if in_flight else None,
        "history": history[-limit:] if limit else [],
        "last_failure": state.get("last_failure"),
        "updated_at": state.get("updated_at"),
        "record": {"name": store.name, "exists": recorded_state is not None, "schema": state.get("schema")},
        "lock": describe_lock(lock, lease, now),
        "draining": state.get("draining"),
        "next_rollback": describe_rollback(active, selector, state, slots, Where(ns, app, service_name)),
    }
    if canary:
        result.update(
            strategy="canary",
            tracks=tracks,
            canary=describe_canary(state, tracks),
            next_rollback="with the canary strategy: abort.yml takes a canary in progress to weight 0; a promoted "
            "release is rolled back by releasing the previous version (it runs as a canary)",
        )
    else:
        result["strategy"] = "bluegreen" if exists else None
    if preview is not None:
        preview_selector = dict((preview.get("spec") or {}).get("selector") or {})
        result["preview"] = {
            "name": preview_name,
            "selector": preview_selector,
            "slot": preview_selector.get(SLOT_LABEL),
        }
    return result
