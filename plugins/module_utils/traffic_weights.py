# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary traffic routers: how a weight reaches the clients, behind one interface.

Every router answers the same four questions the canary strategy asks:
``apex_selector`` (what the app's own Service selects), ``observe`` (the
canary's weight as the router's objects say now), ``set_weight`` (move there;
returns whether it wrote) and ``canary_replicas`` (how many canary pods carry
that weight). Blue/green's :class:`traffic.SelectorRouter` is the first router;
these are the canary's:

* :class:`ReplicaRouter` (the default, needs nothing but Kubernetes): the app's
  Service selects the Ready pods of both tracks that passed their gate (label
  ``deploy.userservice.io/traffic: "on"``, set on each canary pod once it has
  answered its health checks), so the weight is the canary's share of pods.
  The stable track keeps its live (autoscaled) size; the canary is sized
  around it. Only the shares pod counts allow are reachable.
* :class:`GatewayRouter`: Gateway API ``HTTPRoute`` backend weights to the
  ``<app>-stable`` and ``<app>-canary`` Services, plus an optional header or
  cookie match that sends matching requests to the canary whatever the weight.
* :class:`IstioRouter`: a ``VirtualService`` with the same two destinations.
* :class:`NginxRouter`: an ``<app>-canary`` Ingress with the NGINX Ingress
  controller's canary annotations (weight, by-header, by-cookie) beside the
  app's own Ingress.

Each route object is written only against the version the plan saw, and the
canary's share is never raised before its pods are gated.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    TRACK_LABEL,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ConflictError, InvalidStateError

TRAFFIC_LABEL = "deploy.userservice.io/traffic"
ROUTERS = ("replicas", "gateway", "istio", "nginx")
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"


def track_service_name(app: str, track: str) -> str:
    return "%s-%s" % (app, track)


class WeightRouter:
    """The interface; see the module docstring."""

    name = ""
    # Route objects this router writes (kind), for the plan and the permission list.
    kinds: List[str] = []

    def __init__(
        self,
        client: Any,
        namespace: str,
        app: str,
        options: Dict[str, Any],
        *,
        before_write: Callable[[], None],
        log: Callable[[str], None],
    ) -> None:
        self.client = client
        self.ns = namespace
        self.app = app
        self.options = options or {}
        self.before_write = before_write
        self.log = log

    def apex_selector(self) -> Dict[str, str]:
        return {NAME_LABEL: self.app, TRACK_LABEL: "stable"}

    def canary_pod_labels(self) -> Dict[str, str]:
        """Extra labels on the canary pod template."""
        return {}

    def canary_replicas(self, weight: int, stable: int) -> int:
        """Canary pods that carry ``weight`` percent next to ``stable`` stable pods (at least one)."""
        if weight <= 0:
            return 0
        return max(1, int(math.ceil(stable * weight / 100.0)))

    def track_services(self, ports: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The per-track Services a weighted route sends to."""
        out = []
        for track in ("stable", "canary"):
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": track_service_name(self.app, track),
                        "namespace": self.ns,
                        "labels": {NAME_LABEL: self.app, MANAGED_BY_LABEL: MANAGER, TRACK_LABEL: track},
                    },
                    "spec": {"selector": {NAME_LABEL: self.app, TRACK_LABEL: track}, "ports": ports},
                }
            )
        return out

    def observe(self) -> Optional[int]:
        raise NotImplementedError

    def set_weight(self, weight: int, expected: Optional[int]) -> bool:
        raise NotImplementedError

    def desired(self, weight: int) -> Optional[Dict[str, Any]]:
        """The route object at ``weight`` (None for routers without one)."""
        return None

    # -- shared by the object routers -----------------------------------------------------------

    def _write_route(self, kind: str, name: str, desired: Dict[str, Any], expected: Optional[int]) -> bool:
        current = self.client.read_optional(kind, self.ns, name)
        if current is None:
            self.before_write()
            self.log("create %s %s" % (kind, name))
            self.client.create(kind, self.ns, desired)
            return True
        seen = self.weight_of(current)
        want = self.weight_of(desired)
        if seen == want and self._same_routing(current, desired):
            return False
        if expected is not None and seen != expected:
            raise ConflictError(
                "the canary weight on %s %s was changed by someone else since this run planned" % (kind, name),
                kind=kind,
                namespace=self.ns,
                name=name,
                status=409,
                expected="canary weight %s" % expected,
                seen="canary weight %s" % seen,
                hint="The weight was not moved by this run; find out who changed the route, then run again",
            )
        self.before_write()
        body = copy.deepcopy(desired)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.log("%s %s: canary weight %s -> %s" % (kind, name, seen, want))
        self.client.replace(kind, self.ns, body)
        return True

    @staticmethod
    def _same_routing(current: Dict[str, Any], desired: Dict[str, Any]) -> bool:
        return json.dumps(current.get("spec"), sort_keys=True) == json.dumps(desired.get("spec"), sort_keys=True) and (
            (current.get("metadata") or {}).get("annotations") or {}
        ) == ((desired.get("metadata") or {}).get("annotations") or {})

    def weight_of(self, obj: Optional[Dict[str, Any]]) -> Optional[int]:
        raise NotImplementedError

    def _meta(self, name: str, annotations: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        meta: Dict[str, Any] = {
            "name": name,
            "namespace": self.ns,
            "labels": {NAME_LABEL: self.app, MANAGED_BY_LABEL: MANAGER},
        }
        if annotations:
            meta["annotations"] = annotations
        return meta


class ReplicaRouter(WeightRouter):
    """The weight is the canary's share of the gated, Ready pods behind the app's one Service."""

    name = "replicas"
    kinds: List[str] = []

    def apex_selector(self) -> Dict[str, str]:
        return {NAME_LABEL: self.app, TRAFFIC_LABEL: "on"}

    def canary_pod_labels(self) -> Dict[str, str]:
        # New canary pods start out of the Service; the strategy turns each on once it passed its gate.
        return {TRAFFIC_LABEL: "off"}

    def canary_replicas(self, weight: int, stable: int) -> int:
        """Pods so that canary / (stable + canary) is the smallest share >= ``weight`` pod counts allow."""
        if weight <= 0:
            return 0
        if weight >= 100:
            return stable
        return max(1, int(math.ceil(stable * weight / float(100 - weight))))

    def track_services(self, ports: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return []

    def share(self, canary: int, stable: int) -> int:
        total = canary + stable
        return int(round(100.0 * canary / total)) if total else 0

    def observe(self) -> Optional[int]:
        pods = self.client.list("Pod", self.ns, self.apex_selector())
        canary = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(TRACK_LABEL) == "canary")
        return self.share(canary, len(pods) - canary)

    def set_weight(self, weight: int, expected: Optional[int]) -> bool:
        # The strategy scales and gates the canary pods; the weight follows from their number.
        return False

    def weight_of(self, obj: Optional[Dict[str, Any]]) -> Optional[int]:
        return None

    def turn(self, pods: List[Dict[str, Any]], on: bool) -> int:
        """Put gated canary pods into (or take them out of) the Service; returns how many changed."""
        value = "on" if on else "off"
        changed = 0
        for pod in pods:
            if (pod["metadata"].get("labels") or {}).get(TRAFFIC_LABEL) == value:
                continue
            self.before_write()
            self.client.patch("Pod", self.ns, pod["metadata"]["name"], {"metadata": {"labels": {TRAFFIC_LABEL: value}}})
            changed += 1
        if changed:
            self.log("%d canary pod(s) turned %s" % (changed, value))
        return changed


class GatewayRouter(WeightRouter):
    name = "gateway"
    kinds = ["HTTPRoute"]

    def route_name(self) -> str:
        return self.options.get("route") or self.app

    def desired(self, weight: int) -> Dict[str, Any]:
        port = self.options["port"]
        backend = [
            {"name": track_service_name(self.app, "stable"), "port": port, "weight": 100 - weight},
            {"name": track_service_name(self.app, "canary"), "port": port, "weight": weight},
        ]
        rules: List[Dict[str, Any]] = []
        header, cookie = self.options.get("header"), self.options.get("cookie")
        if header:
            rules.append(
                {
                    "matches": [{"headers": [{"type": "Exact", "name": header["name"], "value": header["value"]}]}],
                    "backendRefs": [{"name": track_service_name(self.app, "canary"), "port": port}],
                }
            )
        if cookie:
            # Gateway API matches headers; a cookie is one header holding name=value among others.
            rules.append(
                {
                    "matches": [
                        {
                            "headers": [
                                {
                                    "type": "RegularExpression",
                                    "name": "Cookie",
                                    "value": "(^|;\\s*)%s=always(;|$)" % cookie,
                                }
                            ]
                        }
                    ],
                    "backendRefs": [{"name": track_service_name(self.app, "canary"), "port": port}],
                }
            )
        rules.append({"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backend})
        spec: Dict[str, Any] = {"parentRefs": [dict(self.options["gateway"])], "rules": rules}
        if self.options.get("hostnames"):
            spec["hostnames"] = list(self.options["hostnames"])
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": self._meta(self.route_name()),
            "spec": spec,
        }

    def weight_of(self, obj: Optional[Dict[str, Any]]) -> Optional[int]:
        for rule in ((obj or {}).get("spec") or {}).get("rules") or []:
            refs = rule.get("backendRefs") or []
            if len(refs) == 2:
                total = sum(int(r.get("weight", 1)) for r in refs)
                canary = sum(
                    int(r.get("weight", 1)) for r in refs if r.get("name") == track_service_name(self.app, "canary")
                )
                return int(round(100.0 * canary / total)) if total else 0
        return None

    def observe(self) -> Optional[int]:
        return self.weight_of(self.client.read_optional("HTTPRoute", self.ns, self.route_name()))

    def set_weight(self, weight: int, expected: Optional[int]) -> bool:
        return self._write_route("HTTPRoute", self.route_name(), self.desired(weight), expected)


class IstioRouter(WeightRouter):
    name = "istio"
    kinds = ["VirtualService"]

    def route_name(self) -> str:
        return self.options.get("route") or self.app

    def desired(self, weight: int) -> Dict[str, Any]:
        port = {"number": int(self.options["port"])}

        def destination(track: str, share: Optional[int] = None) -> Dict[str, Any]:
            out: Dict[str, Any] = {"destination": {"host": track_service_name(self.app, track), "port": port}}
            if share is not None:
                out["weight"] = share
            return out

        http: List[Dict[str, Any]] = []
        header, cookie = self.options.get("header"), self.options.get("cookie")
        if header:
            http.append(
                {
                    "name": "canary-by-header",
                    "match": [{"headers": {header["name"]: {"exact": header["value"]}}}],
                    "route": [destination("canary")],
                }
            )
        if cookie:
            http.append(
                {
                    "name": "canary-by-cookie",
                    "match": [{"headers": {"cookie": {"regex": "(^|.*; ?)%s=always(;.*|$)" % cookie}}}],
                    "route": [destination("canary")],
                }
            )
        http.append({"name": "weighted", "route": [destination("stable", 100 - weight), destination("canary", weight)]})
        spec: Dict[str, Any] = {"hosts": list(self.options.get("hostnames") or [self.app]), "http": http}
        if self.options.get("gateways"):
            spec["gateways"] = list(self.options["gateways"])
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": self._meta(self.route_name()),
            "spec": spec,
        }

    def weight_of(self, obj: Optional[Dict[str, Any]]) -> Optional[int]:
        for route in ((obj or {}).get("spec") or {}).get("http") or []:
            if route.get("name") == "weighted":
                for dest in route.get("route") or []:
                    if (dest.get("destination") or {}).get("host") == track_service_name(self.app, "canary"):
                        return int(dest.get("weight") or 0)
        return None

    def observe(self) -> Optional[int]:
        return self.weight_of(self.client.read_optional("VirtualService", self.ns, self.route_name()))

    def set_weight(self, weight: int, expected: Optional[int]) -> bool:
        return self._write_route("VirtualService", self.route_name(), self.desired(weight), expected)


class NginxRouter(WeightRouter):
    """A second Ingress with the NGINX Ingress controller's canary annotations, next to the app's own."""

    name = "nginx"
    kinds = ["Ingress"]

    def route_name(self) -> str:
        return "%s-canary" % (self.options.get("route") or self.app)

    def desired(self, weight: int) -> Dict[str, Any]:
        main_name = self.options.get("route") or self.app
        main = self.client.read_optional("Ingress", self.ns, main_name)
        if main is None:
            raise InvalidStateError(
                "the app's Ingress does not exist: the NGINX canary Ingress copies its rules",
                kind="Ingress",
                namespace=self.ns,
                name=main_name,
                hint="Enable the Ingress in the workload role (workload_ingress_enabled) or set router.route",
            )
        spec = copy.deepcopy(main.get("spec") or {})
        spec.pop("tls", None)  # the main Ingress terminates TLS for the host; the canary rides on it
        canary = track_service_name(self.app, "canary")
        for rule in spec.get("rules") or []:
            for path in ((rule.get("http") or {}).get("paths")) or []:
                service = (path.get("backend") or {}).get("service")
                if service:
                    service["name"] = canary
        annotations = {NGINX_PREFIX + "canary": "true", NGINX_PREFIX + "canary-weight": str(weight)}
        header, cookie = self.options.get("header"), self.options.get("cookie")
        if header:
            annotations[NGINX_PREFIX + "canary-by-header"] = header["name"]
            annotations[NGINX_PREFIX + "canary-by-header-value"] = header["value"]
        if cookie:
            annotations[NGINX_PREFIX + "canary-by-cookie"] = cookie
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": self._meta(self.route_name(), annotations),
            "spec": spec,
        }

    def weight_of(self, obj: Optional[Dict[str, Any]]) -> Optional[int]:
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(NGINX_PREFIX + "canary") != "true":
            return None
        return int(annotations.get(NGINX_PREFIX + "canary-weight") or 0)

    def observe(self) -> Optional[int]:
        return self.weight_of(self.client.read_optional("Ingress", self.ns, self.route_name()))

    def set_weight(self, weight: int, expected: Optional[int]) -> bool:
        return self._write_route("Ingress", self.route_name(), self.desired(weight), expected)


def make_router(
    client: Any,
    namespace: str,
    app: str,
    options: Dict[str, Any],
    *,
    before_write: Callable[[], None],
    log: Callable[[str], None],
) -> WeightRouter:
    cls = {"replicas": ReplicaRouter, "gateway": GatewayRouter, "istio": IstioRouter, "nginx": NginxRouter}[
        (options or {}).get("type") or "replicas"
    ]
    return cls(client, namespace, app, options, before_write=before_write, log=log)
