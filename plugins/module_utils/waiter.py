# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named readiness predicates and the one poll loop every wait uses.

Predicates are pure functions over API objects (dicts as the API returns them)
so they are tested without a cluster. The poll loop owns time: it takes a clock
(a fake one in tests) and calls a heartbeat between sleeps, which is how the
release Lease stays renewed while a long wait or analysis runs.
"""

from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple, Union

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    RolloutFailedError,
    WaitTimeoutError,
)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"

# Waiting reasons that do not clear up by themselves in any useful time; the
# rollout fails on them at once instead of running into the progress deadline.
STUCK_REASONS: FrozenSet[str] = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


class SystemClock:
    """Real time. Tests pass a fake with the same three methods."""

    # A wait may end on a watched change (KubeClient.wait_for_change) only on a clock that is real time:
    # a fake clock's time does not pass while a watch waits.
    real_time = True

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)


def isoformat(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Optional[str]) -> Optional[datetime.datetime]:
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    # Kubernetes MicroTime has 6 fractional digits, Time none; both parse here.
    return datetime.datetime.fromisoformat(value).astimezone(datetime.timezone.utc)


Heartbeat = Callable[[], None]
StepResult = Tuple[bool, Any]
# Waits up to the given seconds for a reason to look again; True when woken before they passed.
Wake = Callable[[float], bool]


def poll(
    step: Callable[[], StepResult],
    *,
    timeout: Optional[float],
    interval: Union[float, Callable[[], float]],
    what: str,
    clock: Optional[Any] = None,
    heartbeat: Optional[Heartbeat] = None,
    heartbeat_every: float = 5.0,
    wake: Optional[Wake] = None,
) -> Any:
    """Call ``step`` until it reports done, then return its value.

    ``step`` returns ``(done, value)``; while not done, ``value`` describes what
    was seen and ends up in the timeout error. ``step`` may raise to fail fast.
    ``interval`` may be a callable for loops whose next wake-up varies.
    Sleeps are cut into slices of at most ``heartbeat_every`` seconds with a
    heartbeat before each, so a long interval never starves the lock renewal.
    ``wake``, when given, does the sleeping and may end a pause early (a watched
    object changed); it must not wait longer than it is asked to.
    ``timeout=None`` waits as long as ``step`` needs.
    """
    clock = clock or SystemClock()
    started = clock.monotonic()
    deadline = None if timeout is None else started + timeout
    while True:
        done, value = step()
        if done:
            return value
        now = clock.monotonic()
        if deadline is not None and now >= deadline:
            raise WaitTimeoutError(
                "timed out after %ss waiting for %s" % (_seconds(now - started), what),
                expected=what,
                seen=_describe(value),
                data={"last": value, "waited_seconds": round(now - started, 3)},
            )
        pause = interval() if callable(interval) else interval
        if deadline is not None:
            pause = min(pause, deadline - now)
        _sleep_with_heartbeat(clock, max(pause, 0.0), heartbeat, heartbeat_every, wake)


def backoff(first: float, most: float, factor: float = 1.5) -> Callable[[], float]:
    """An interval for ``poll`` that starts short and grows to ``most``.

    Most waits end soon after they start (a small rollout, endpoints catching up with a selector
    patch); polling fast at first answers those quickly, and the growth keeps a long wait cheap.
    """
    state = {"next": first}

    def interval() -> float:
        current = state["next"]
        state["next"] = min(most, current * factor)
        return current

    return interval


def _sleep_with_heartbeat(
    clock: Any, pause: float, heartbeat: Optional[Heartbeat], every: float, wake: Optional[Wake] = None
) -> None:
    remaining = pause
    while True:
        if heartbeat is not None:
            heartbeat()
        if remaining <= 0:
            return
        chunk = min(remaining, every) if every > 0 else remaining
        if wake is not None:
            if wake(chunk):
                return
        else:
            clock.sleep(chunk)
        remaining -= chunk
        if remaining <= 1e-9:
            return


def _seconds(value: float) -> str:
    return ("%.1f" % value).rstrip("0").rstrip(".")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "reason" in value:
        return str(value["reason"])
    return repr(value)


# ---------------------------------------------------------------------------
# Predicates
# ---------------------------------------------------------------------------


def _meta(obj: Dict[str, Any]) -> Dict[str, Any]:
    return obj.get("metadata") or {}


def _status(obj: Dict[str, Any]) -> Dict[str, Any]:
    return obj.get("status") or {}


def desired_replicas(deployment: Dict[str, Any]) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def progress_deadline_exceeded(deployment: Dict[str, Any]) -> Optional[str]:
    """The condition message when the Deployment controller gave up on progress, else None."""
    for condition in _status(deployment).get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("status") == "False"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return condition.get("message") or "ProgressDeadlineExceeded"
    return None


def replica_failure(deployment: Dict[str, Any]) -> Optional[str]:
    """Why the ReplicaSet cannot create pods (quota, admission, missing ServiceAccount...), else None."""
    for condition in _status(deployment).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return condition.get("message") or condition.get("reason") or "ReplicaFailure"
    return None


def rollout_complete(deployment: Dict[str, Any]) -> Tuple[bool, str]:
    """``(complete, what is missing)`` following the Deployment controller's own rules."""
    meta, status = _meta(deployment), _status(deployment)
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return False, "controller has not observed generation %d yet (observed %d)" % (generation, observed)
    want = desired_replicas(deployment)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < want:
        return False, "%d of %d replicas updated" % (updated, want)
    if total > updated:
        return False, "%d old replicas pending termination" % (total - updated)
    if available < want:
        return False, "%d of %d updated replicas available" % (available, want)
    return True, "%d of %d replicas updated and available" % (available, want)


def pod_ready(pod: Dict[str, Any]) -> bool:
    if _meta(pod).get("deletionTimestamp"):
        return False
    for condition in _status(pod).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


# The kubelet reports these under CreateContainerConfigError while its ConfigMap/Secret watch is still
# syncing (a busy node, a just-created object): it retries by itself, so they are not hopeless.
TRANSIENT_WAITING_MESSAGES = ("failed to sync configmap cache", "failed to sync secret cache")


def stuck_pod_reason(pods: List[Dict[str, Any]], reasons: FrozenSet[str] = STUCK_REASONS) -> Optional[str]:
    """A sentence naming the first pod and container waiting for a hopeless reason."""
    for pod in pods:
        status = _status(pod)
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in reasons:
                message = waiting.get("message") or ""
                if any(transient in message for transient in TRANSIENT_WAITING_MESSAGES):
                    continue
                text = "pod %s container %s is %s" % (_meta(pod).get("name"), container.get("name"), waiting["reason"])
                restarts = container.get("restartCount")
                if restarts:
                    text += " after %s restarts" % restarts
                return text + (": %s" % message if message else "")
    return None


def current_pod_template_hash(deployment: Dict[str, Any], replica_sets: List[Dict[str, Any]]) -> Optional[str]:
    """``pod-template-hash`` of the ReplicaSet that carries the Deployment's current revision."""
    meta = _meta(deployment)
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    uid = meta.get("uid")
    if not revision:
        return None
    for rs in replica_sets:
        rs_meta = _meta(rs)
        owners = rs_meta.get("ownerReferences") or []
        if uid and not any(owner.get("uid") == uid for owner in owners):
            continue
        if (rs_meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return (rs_meta.get("labels") or {}).get(POD_TEMPLATE_HASH)
    return None


def selector_labels(deployment: Dict[str, Any]) -> Dict[str, str]:
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return dict(selector)


def current_pods(client: Any, deployment: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Pods of the Deployment's current ReplicaSet (old ReplicaSets' pods are excluded)."""
    namespace = _meta(deployment).get("namespace")
    selector = selector_labels(deployment)
    template_hash = current_pod_template_hash(deployment, client.list_replica_sets(namespace, selector))
    if template_hash is None:
        return []
    return client.list_pods(namespace, dict(selector, **{POD_TEMPLATE_HASH: template_hash}))


def _hint(fix: str, consequence: str) -> str:
    return "%s; %s" % (fix, consequence) if consequence else fix


def wait_for_rollout(
    client: Any,
    namespace: str,
    name: str,
    *,
    timeout: float,
    interval: Union[float, Callable[[], float]],
    clock: Optional[Any] = None,
    heartbeat: Optional[Heartbeat] = None,
    consequence: str = "",
) -> Dict[str, Any]:
    """Wait until the Deployment's rollout is complete and return the Deployment.

    Fails fast, without waiting for ``timeout``, on ProgressDeadlineExceeded and on
    current pods stuck in CrashLoopBackOff / image pull errors. Each failure's hint
    names the fix for its cause, then ``consequence`` when given: what the caller's
    users are left with (a blue/green gate has not moved traffic; a rolling update
    keeps its old pods).

    On a real clock, with a client that can watch, each pause ends as soon as the
    controller writes the Deployment, as ``kubectl rollout status`` waits, instead
    of at the next poll.
    """
    clock = clock or SystemClock()
    last = {"version": ""}

    def changed(seconds: float) -> bool:
        return bool(client.wait_for_change("Deployment", namespace, name, last["version"], seconds))

    watching = getattr(clock, "real_time", False) and hasattr(client, "wait_for_change")

    def step() -> StepResult:
        deployment = client.read_deployment(namespace, name)
        last["version"] = _meta(deployment).get("resourceVersion") or ""
        generation = int(_meta(deployment).get("generation") or 0)
        observed = int(_status(deployment).get("observedGeneration") or 0)
        if observed < generation:
            # Conditions of an older generation (a previous release's ProgressDeadlineExceeded) say
            # nothing about this one: trust them only once the controller has seen the new spec.
            return False, "controller has observed generation %d of %d" % (observed, generation)
        deadline = progress_deadline_exceeded(deployment)
        if deadline:
            raise RolloutFailedError(
                "rollout exceeded its progress deadline",
                kind="Deployment",
                namespace=namespace,
                name=name,
                expected="a complete rollout",
                seen=deadline,
                hint=_hint("Inspect the new pods (kubectl describe) and fix the image or configuration", consequence),
                data={"condition": "ProgressDeadlineExceeded"},
            )
        complete, detail = rollout_complete(deployment)
        if complete:
            return True, deployment
        refused = replica_failure(deployment)
        if refused:
            raise RolloutFailedError(
                "pods of the new ReplicaSet cannot be created",
                kind="Deployment",
                namespace=namespace,
                name=name,
                expected="a complete rollout",
                seen=refused,
                hint=_hint("Fix what the message names (ServiceAccount, quota, Pod Security admission)", consequence),
                data={"condition": "ReplicaFailure"},
            )
        stuck = stuck_pod_reason(current_pods(client, deployment))
        if stuck:
            raise RolloutFailedError(
                "new pods cannot start",
                kind="Deployment",
                namespace=namespace,
                name=name,
                expected="a complete rollout",
                seen=stuck,
                hint=_hint("Fix the image reference, registry credentials or the crash", consequence),
                data={"pods": stuck},
            )
        return False, detail

    try:
        return poll(
            step,
            timeout=timeout,
            interval=interval,
            what="Deployment %s/%s rollout" % (namespace, name),
            clock=clock,
            heartbeat=heartbeat,
            wake=changed if watching else None,
        )
    except WaitTimeoutError as exc:
        exc.kind, exc.namespace, exc.name = "Deployment", namespace, name
        exc.hint = _hint("Raise the wait timeout or look at why the pods are not becoming available", consequence)
        raise
