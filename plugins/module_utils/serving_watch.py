# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The post-switch watch: the pods that now serve stay Ready, do not restart, and the Service answers.

It runs after every verified switch whether or not analysis is configured, so a
version that starts crash-looping once it gets traffic is switched back even
when no metric check would have seen it (a lazily created 5xx series, a check
that only warns on no data).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.errors import GateFailedError
from ansible_collections.userservice.deploy.plugins.module_utils.traffic import service_answer
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import current_pods, pod_ready, poll

# Answers in a row that may fail before the watch gives up (one 502 while kube-proxy settles is not a verdict).
PROXY_MISSES = 2


def restarts(pods: List[Dict[str, Any]]) -> Dict[str, int]:
    return {
        p["metadata"]["name"]: sum(
            int(c.get("restartCount") or 0) for c in (p.get("status") or {}).get("containerStatuses") or []
        )
        for p in pods
    }


def watch_serving(
    client: Any,
    namespace: str,
    deployment_name: str,
    service: str,
    port: Any,
    health: Any,
    *,
    window: float,
    clock: Any,
    heartbeat: Callable[[], None],
) -> None:
    """Raise GateFailedError as soon as a serving pod restarts or turns unready, or the Service stops answering."""
    if window <= 0:
        return
    deployment = client.read("Deployment", namespace, deployment_name)
    baseline = restarts(current_pods(client, deployment))
    end = clock.monotonic() + window
    misses = {"proxy": 0}

    def step() -> Tuple[bool, Any]:
        pods = current_pods(client, deployment)
        grew = sorted(name for name, count in restarts(pods).items() if count > baseline.get(name, count))
        unready = sorted(p["metadata"]["name"] for p in pods if not pod_ready(p))
        # An API server that does not answer is not the release's fault: service_answer asks again once it is back.
        status = service_answer(client, clock, namespace, service, port, health.path, health.request_timeout)
        misses["proxy"] = 0 if status is not None and 200 <= status < 300 else misses["proxy"] + 1
        if grew or unready or misses["proxy"] >= PROXY_MISSES:
            raise GateFailedError(
                "the serving pods became unhealthy after the switch",
                kind="Deployment",
                namespace=namespace,
                name=deployment_name,
                expected="Ready pods with no restarts answering %s for %.0fs" % (health.path, window),
                seen="restarted: %s; not ready: %s; last health answer %s"
                % (
                    ", ".join(grew) or "none",
                    ", ".join(unready) or "none",
                    "HTTP %s" % status if status is not None else "none within %ss" % health.request_timeout,
                ),
                data={"check": "post-switch watch", "restarted": grew, "unready": unready, "status": status},
            )
        return clock.monotonic() >= end, None

    poll(step, timeout=window + 30, interval=1.0, what="post-switch watch", clock=clock, heartbeat=heartbeat)
