# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic routers: how a strategy moves traffic, behind one small interface.

A router knows three things: what traffic looks like now (``observe``), how to
move it to a target and back (``route``, returning whether it wrote), and how to
prove it moved (``verify``). :class:`SelectorRouter` is blue/green's router: one
patch of the active Service's selector. Canary routers (replica ratio, Gateway
API weights, ...) implement the same three.

Two rules hold for every move:

* a move happens only against the traffic state the plan saw: if someone else
  changed the selector in between (a hand edit during a long gate), the run
  stops with a conflict naming the change instead of merging over it;
* "moved" is claimed only after the write was made and the endpoints verified.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    POD_TEMPLATE_HASH_LABEL,
    slot_selector,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiUnreachableError,
    ConflictError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import backoff, pod_ready, poll

PROXY_ATTEMPTS = 3
# A read that takes longer than this (or needs a retry) means the API server, not the app, was slow to answer.
API_SLOW_SECONDS = 1.0


def service_answer(
    client: Any, clock: Any, namespace: str, service: str, port: Any, path: str, timeout: float
) -> Optional[int]:
    """The HTTP status the Service answers ``path`` with through the API server proxy; None when it gave none.

    No answer within ``timeout`` is ambiguous: the app hangs, or the API server itself is unreachable
    (a dropped link, a restart). A read of the Service tells them apart: it is retried through a short
    outage like every read, and raises when the API server stays away. When that read needed a retry or
    was slow, the missing answer was the API server's and the proxy GET is asked again; when it answered
    at once, the Service did not answer, which is a verdict on the release.
    """
    for _attempt in range(PROXY_ATTEMPTS):
        try:
            return client.service_proxy_get(namespace, service, port, path, timeout).status
        except ApiUnreachableError:
            retries, started = getattr(client, "retries", 0), clock.monotonic()
            client.read("Service", namespace, service)
            if getattr(client, "retries", 0) == retries and clock.monotonic() - started < API_SLOW_SECONDS:
                return None
    return None


def _selector_of(service: Optional[Dict[str, Any]]) -> Dict[str, str]:
    return dict(((service or {}).get("spec") or {}).get("selector") or {})


class SelectorRouter:
    """Blue/green: the active Service selects one slot's pods."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        app: str,
        service: str,
        *,
        before_write: Callable[[], None],
        heartbeat: Callable[[], None],
        clock: Any,
        log: Callable[[str], None],
    ) -> None:
        self.client = client
        self.ns = namespace
        self.app = app
        self.service = service
        self.before_write = before_write
        self.heartbeat = heartbeat
        self.clock = clock
        self.log = log

    def observe(self) -> Dict[str, str]:
        return _selector_of(self.client.read_optional("Service", self.ns, self.service))

    def selector_for(self, current: Dict[str, str], slot: str) -> Dict[str, str]:
        """The selector that sends all traffic to ``slot``; a pin on a rolling ReplicaSet is dropped."""
        after = {key: value for key, value in current.items() if key != POD_TEMPLATE_HASH_LABEL}
        after.update(slot_selector(self.app, slot))
        return after

    def route(self, current: Dict[str, str], wanted: Dict[str, str]) -> bool:
        """Make the selector ``wanted`` if it is still ``current``; returns whether it wrote.

        Already ``wanted`` (a resumed run, a re-run) is not a conflict. Anything else is: the run
        stops and names both, and nothing is merged over a change it did not plan for.
        """
        service = self.client.read("Service", self.ns, self.service)
        live = _selector_of(service)
        if live == wanted:
            return False
        if live != current:
            raise ConflictError(
                "the Service selector was changed by someone else since this run planned its switch",
                kind="Service",
                namespace=self.ns,
                name=self.service,
                status=409,
                expected=json.dumps(current, sort_keys=True),
                seen=json.dumps(live, sort_keys=True),
                hint="Traffic was not moved by this run. Find out who changed the selector, then run again: "
                "the next plan starts from what the Service selects now",
            )
        self.before_write()
        patch: Dict[str, Any] = {key: None for key in live if key not in wanted}
        patch.update(wanted)
        self.log("Service %s selector %s -> %s" % (self.service, json.dumps(live), json.dumps(wanted)))
        self.client.patch(
            "Service",
            self.ns,
            self.service,
            {"spec": {"selector": patch}},
            resource_version=service["metadata"]["resourceVersion"],
        )
        return True

    def _ready_ips(self, selector: Dict[str, str]) -> List[str]:
        ips = set()
        for pod in self.client.list("Pod", self.ns, selector):
            if pod_ready(pod):
                status = pod.get("status") or {}
                ips.update(entry.get("ip") for entry in status.get("podIPs") or [] if entry.get("ip"))
                if status.get("podIP"):
                    ips.add(status["podIP"])
        return sorted(ips)

    def _endpoint_ips(self) -> List[str]:
        have = set()
        for slice_ in self.client.list("EndpointSlice", self.ns, {"kubernetes.io/service-name": self.service}):
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready"):
                    have.update(endpoint.get("addresses") or [])
        return sorted(have)

    def verify(
        self, selector: Dict[str, str], *, timeout: float, port: Any, path: str, request_timeout: float
    ) -> List[str]:
        """The Service's ready endpoints are exactly the selected ready pods, and the Service answers."""

        def step() -> Tuple[bool, Any]:
            want, have = self._ready_ips(selector), self._endpoint_ips()
            if not want or want != have:
                return False, {"endpoints": have, "selected_pods": want}
            return True, have

        endpoints = poll(
            step,
            timeout=timeout,
            interval=backoff(0.1, 0.5),
            what="Service %s endpoints to be the pods of %s" % (self.service, json.dumps(selector, sort_keys=True)),
            clock=self.clock,
            heartbeat=self.heartbeat,
        )
        status: Any = None
        for attempt in range(PROXY_ATTEMPTS):
            # One 502 from the proxy while kube-proxy catches up is not a verdict on the release.
            status = service_answer(self.client, self.clock, self.ns, self.service, port, path, request_timeout)
            if status is not None and 200 <= status < 300:
                return endpoints
            if attempt + 1 < PROXY_ATTEMPTS:
                self.clock.sleep(1.0)
        raise ReleaseError(
            "the active Service does not answer after the switch",
            kind="Service",
            namespace=self.ns,
            name=self.service,
            expected="2xx on %s" % path,
            seen="%s (%d attempts)" % ("HTTP %s" % status if status is not None else "no answer", PROXY_ATTEMPTS),
        )
