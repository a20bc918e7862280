# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release lock: a ``coordination.k8s.io/v1`` Lease named ``<app>-release``.

One release per app and namespace at a time, whatever drives it (an operator,
AWX, a CI pipeline). A second run fails at once and names the holder. A lease
whose holder stopped renewing is taken over after its TTL and the takeover is
recorded; ``steal`` takes a live one on purpose. Every write carries the
resourceVersion it was decided on, so two runs racing for the same lease cannot
both win.

Expiry never compares two machines' clocks. The API server stamps every write
of the lease (``metadata.managedFields[].time``) and every answer (the HTTP
``Date`` header) with its own clock, so the lease's age is the server's "now"
minus the server's time of the last write, whatever the clocks of the holder
and of this runner say. Only when the server gives neither (a fake, an old
proxy) does the age fall back to the holder's ``renewTime`` against this
machine's clock.

The holder is the identity of whoever runs the release (operator, AWX job, CI
run URL) plus a per-run nonce, so two jobs with the same identity (two jobs of
one CI run, Jenkins parallel stages) never share the lease.
"""

from __future__ import annotations

import datetime
import getpass
import os
import socket
from typing import Any, Dict, Mapping, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiError,
    ApiUnreachableError,
    ConflictError,
    InvalidArgumentError,
    LockHeldError,
    LockLostError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.state import MANAGED_LABELS, record_name
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat, parse_time

TAKEOVER_ANNOTATION = "deploy.userservice.io/takeover"
ATTEMPTS = 3

# One source for the lock options; plugins/doc_fragments/lock.py documents them.
LOCK_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    "lock_ttl": dict(type="int", default=60),
    "lock_steal": dict(type="bool", default=False),
    "lock_holder": dict(type="str"),
}


def holder_identity(
    env: Optional[Mapping[str, str]] = None,
    host: Optional[str] = None,
    user: Optional[str] = None,
    pid: Optional[int] = None,
) -> str:
    """Who is releasing, in the words of the system that runs us (a URL where there is one)."""
    env = os.environ if env is None else env
    host = host or socket.gethostname()
    # AWX's job runner exports JOB_ID with INVENTORY_ID (the pair, so another tool's JOB_ID is not taken for AWX).
    job = env.get("AWX_JOB_ID") or env.get("TOWER_JOB_ID") or (env.get("JOB_ID") if env.get("INVENTORY_ID") else None)
    if job:
        return "awx job %s on %s" % (job, host)
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        url = "%s/%s/actions/runs/%s" % (server.rstrip("/"), env["GITHUB_REPOSITORY"], env["GITHUB_RUN_ID"])
        attempt = env.get("GITHUB_RUN_ATTEMPT")
        return url + ("/attempts/%s" % attempt if attempt else "")
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    if env.get("BUILD_URL"):
        return env["BUILD_URL"]
    if user is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return "%s@%s pid %d" % (user, host, os.getpid() if pid is None else pid)


def last_server_write(lease: Dict[str, Any]) -> Optional[datetime.datetime]:
    """When the API server last stored a change to the lease, by its own clock."""
    times = [parse_time(entry.get("time")) for entry in (lease.get("metadata") or {}).get("managedFields") or []]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def lease_expiry(lease: Dict[str, Any]) -> Optional[datetime.datetime]:
    spec = lease.get("spec") or {}
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or duration is None:
        return None
    return renewed + datetime.timedelta(seconds=int(duration))


class LockInfo:
    """What acquiring found and did, returned as data by the modules."""

    def __init__(
        self,
        holder: str,
        resource_version: str,
        expires_at: Optional[str],
        *,
        created: bool = False,
        reentered: bool = False,
        taken_from: Optional[str] = None,
        takeover: Optional[str] = None,
    ) -> None:
        self.holder = holder
        self.resource_version = resource_version
        self.expires_at = expires_at
        self.created = created
        self.reentered = reentered
        self.taken_from = taken_from
        self.takeover = takeover

    def as_dict(self) -> Dict[str, Any]:
        return {
            "holder": self.holder,
            "expires_at": self.expires_at,
            "created": self.created,
            "reentered": self.reentered,
            "taken_from": self.taken_from,
            "takeover": self.takeover,
        }


class LeaseLock:
    def __init__(
        self,
        client: Any,
        namespace: str,
        app: str,
        holder: str,
        ttl: int = 60,
        clock: Optional[Any] = None,
    ) -> None:
        if ttl < 5:
            raise InvalidArgumentError("lock_ttl", "an integer number of seconds >= 5", ttl)
        if not holder:
            raise InvalidArgumentError("lock_holder", "a non-empty holder identity", holder)
        self.client = client
        self.namespace = namespace
        self.name = record_name(app)
        self.app = app
        self.holder = holder
        self.ttl = int(ttl)
        self.clock = clock or SystemClock()
        self.resource_version: Optional[str] = None

    # -- helpers ---------------------------------------------------------------

    def _now(self) -> datetime.datetime:
        return self.clock.now()

    def _held_error(self, lease: Dict[str, Any], cls: Any = LockHeldError) -> LockHeldError:
        spec = lease.get("spec") or {}
        expiry = lease_expiry(lease)
        return cls(
            self.namespace,
            self.name,
            spec.get("holderIdentity") or "nobody",
            isoformat(expiry) if expiry else None,
            spec.get("acquireTime"),
        )

    def read(self) -> Optional[Dict[str, Any]]:
        return self.client.read_optional("Lease", self.namespace, self.name)

    def remaining(self, lease: Dict[str, Any]) -> Optional[float]:
        """Seconds until the lease expires (<= 0: expired), judged on one clock; None if it never expires."""
        duration = (lease.get("spec") or {}).get("leaseDurationSeconds")
        if duration is None:
            return None
        server_now = getattr(self.client, "server_now", lambda: None)()
        written = last_server_write(lease)
        if server_now is not None and written is not None:
            return float(duration) - (server_now - written).total_seconds()
        expiry = lease_expiry(lease)
        if expiry is None:
            return None
        return (expiry - self._now()).total_seconds()

    def _live_holder(self, lease: Optional[Dict[str, Any]]) -> Optional[str]:
        """The holder of a live lease that is not us, or None."""
        if lease is None:
            return None
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if not holder or holder == self.holder:
            return None
        left = self.remaining(lease)
        return holder if left is not None and left > 0 else None

    def _spec_for_us(self, now: str, lease: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        old = (lease or {}).get("spec") or {}
        same_holder = old.get("holderIdentity") == self.holder
        transitions = int(old.get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.ttl,
            "acquireTime": old.get("acquireTime") if same_holder and old.get("acquireTime") else now,
            "renewTime": now,
            "leaseTransitions": transitions if same_holder or lease is None else transitions + 1,
        }

    # -- operations ------------------------------------------------------------

    def check(self, steal: bool = False) -> Optional[str]:
        """Read-only (check mode): the live holder a real run would have to steal from, or None.

        Without ``steal`` a live holder is an error, as it would be for the real run; with it, the plan
        reports the holder instead, so ``lock_steal`` works through a plan-then-run playbook.
        """
        lease = self.read()
        holder = self._live_holder(lease)
        if holder and not steal:
            raise self._held_error(lease or {})
        return holder

    def acquire(self, steal: bool = False) -> LockInfo:
        """Take the lease, or fail fast naming its holder and when it expires."""
        for _attempt in range(ATTEMPTS):
            now = self._now()
            stamp = isoformat(now)
            lease = self.read()
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "labels": dict(MANAGED_LABELS, **{"app.kubernetes.io/name": self.app}),
                    },
                    "spec": self._spec_for_us(stamp, None),
                }
                try:
                    created = self.client.create("Lease", self.namespace, body)
                except ConflictError:
                    continue  # created by a concurrent run between our read and create: decide again
                return self._took(created, now, created_new=True)
            spec = lease.get("spec") or {}
            current = spec.get("holderIdentity")
            expiry = lease_expiry(lease)
            takeover = None
            if current and current != self.holder:
                if self._live_holder(lease) is None:
                    takeover = "expired"
                elif steal:
                    takeover = "stolen"
                else:
                    raise self._held_error(lease)
            patch: Dict[str, Any] = {"spec": self._spec_for_us(stamp, lease)}
            if takeover:
                patch["metadata"] = {
                    "annotations": {
                        TAKEOVER_ANNOTATION: "%s from %s at %s (lease valid until %s)"
                        % (takeover, current, stamp, isoformat(expiry) if expiry else "never")
                    }
                }
            try:
                patched = self.client.patch(
                    "Lease", self.namespace, self.name, patch, resource_version=lease["metadata"].get("resourceVersion")
                )
            except ConflictError:
                continue
            return self._took(
                patched,
                now,
                reentered=current == self.holder,
                taken_from=current if takeover else None,
                takeover=takeover,
            )
        raise ConflictError(
            "release lock kept changing while acquiring it",
            kind="Lease",
            namespace=self.namespace,
            name=self.name,
            status=409,
            expected="a stable lease for one read-write cycle",
            seen="%d conflicts" % ATTEMPTS,
            hint="Another run is acquiring it at the same time; retry",
        )

    def _took(
        self, lease: Dict[str, Any], now: datetime.datetime, created_new: bool = False, **kwargs: Any
    ) -> LockInfo:
        self.resource_version = lease["metadata"].get("resourceVersion")
        expiry = now + datetime.timedelta(seconds=self.ttl)
        return LockInfo(self.holder, self.resource_version or "", isoformat(expiry), created=created_new, **kwargs)

    def renew(self, deadline: float = 20.0) -> str:
        """Push renewTime forward; LockLostError if someone else holds the lease now.

        A renewal that gets no answer (or a 429/5xx) is retried with backoff for ``deadline`` seconds, well
        inside the TTL: one dropped request must not cost the run its lease. A retried write that had
        landed comes back as a 409, and the re-read then confirms we still hold the lease.
        """
        give_up = self.clock.monotonic() + deadline
        delay = 0.5
        while True:
            try:
                return self._renew_once()
            except (ApiUnreachableError, ApiError) as exc:
                transient = isinstance(exc, ApiUnreachableError) or exc.status in (429, 500, 502, 503, 504)
                if isinstance(exc, ConflictError) or not transient or self.clock.monotonic() + delay > give_up:
                    raise
                self.clock.sleep(delay)
                delay = min(delay * 2, 4.0)

    def _renew_once(self) -> str:
        for _attempt in range(ATTEMPTS):
            version = self.resource_version
            if version is None:
                lease = self.read()
                if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.holder:
                    raise self._lost(lease)
                version = lease["metadata"].get("resourceVersion")
            stamp = isoformat(self._now())
            try:
                patched = self.client.patch(
                    "Lease", self.namespace, self.name, {"spec": {"renewTime": stamp}}, resource_version=version
                )
            except ConflictError:
                self.resource_version = None  # re-read and check we still hold it
                continue
            self.resource_version = patched["metadata"].get("resourceVersion")
            return stamp
        raise self._lost(self.read())

    def _lost(self, lease: Optional[Dict[str, Any]]) -> LockLostError:
        if lease is None:
            return LockLostError(
                self.namespace,
                self.name,
                "nobody (the lease was deleted)",
                None,
                hint="Another actor removed the release lock; stop and inspect the release state",
            )
        error = self._held_error(lease, LockLostError)
        error.hint = "Another run took over the release lock; this run must stop"
        return error

    def release(self) -> bool:
        """Give the lease up if we hold it; returns whether we did."""
        for _attempt in range(ATTEMPTS):
            lease = self.read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.holder:
                self.resource_version = None
                return False
            try:
                self.client.patch(
                    "Lease",
                    self.namespace,
                    self.name,
                    {"spec": {"holderIdentity": None, "renewTime": isoformat(self._now())}},
                    resource_version=lease["metadata"].get("resourceVersion"),
                )
            except ConflictError:
                continue
            self.resource_version = None
            return True
        return False


class LeaseHeartbeat:
    """Heartbeat for the poll loop: renews the lease once ``every`` seconds have passed."""

    def __init__(self, lock: LeaseLock, every: Optional[float] = None) -> None:
        self.lock = lock
        self.every = every if every is not None else max(lock.ttl / 3.0, 1.0)
        self.last = lock.clock.monotonic()
        self.renewals = 0

    def __call__(self) -> None:
        now = self.lock.clock.monotonic()
        if now - self.last >= self.every:
            self.lock.renew()
            self.last = now
            self.renewals += 1
