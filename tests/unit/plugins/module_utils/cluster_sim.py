# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake API server that also plays the controllers a release relies on.

:class:`SimKube` is the FakeKube boundary plus what the Deployment controller,
the kubelet and the EndpointSlice controller would do: a Deployment write rolls
out at once (ReplicaSet with a revision, Ready pods with IPs), a Service's
EndpointSlice is the Ready pods its selector picks, and the pod and service
proxies answer 200 unless a version is marked bad. It lets the unit tests drive
whole release sequences (die, resume, roll back, monitor) through the real
engine, which is what the engine review did by hand.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Set

from ansible_collections.userservice.deploy.plugins.module_utils.client import ProxyResponse
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    POD_TEMPLATE_HASH_LABEL,
    VERSION_LABEL,
    canonical_hash,
    selects,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeKube

REVISION = "deployment.kubernetes.io/revision"


class Killed(BaseException):
    """The process running the release died (SIGKILL): nothing it would still do reaches the cluster."""


class SimKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.bad_versions: Set[str] = set()
        self.ip = 10
        self.revision = 0
        self.proxy = self._proxy
        self.server_clock: Optional[Any] = None
        self.dead = False
        # (verb, kind, name) -> True: the release process dies right before that call reaches the API server.
        self.kill_at: Optional[Any] = None
        self.kill_on_service_proxy = False

    def _maybe_die(self, verb: str, kind: str, name: str) -> None:
        if not self.dead and self.kill_at is not None and self.kill_at(verb, kind, name):
            self.dead = True
        if self.dead:
            raise Killed("%s %s %s" % (verb, kind, name))

    def revive(self) -> None:
        """A new process runs the next release."""
        self.dead = False
        self.kill_at = None
        self.kill_on_service_proxy = False

    def read(self, kind: str, namespace: str, name: str) -> Dict[str, Any]:
        self._maybe_die("read", kind, name)
        return super().read(kind, namespace, name)

    def create(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        self._maybe_die("create", kind, body["metadata"]["name"])
        return super().create(kind, namespace, body)

    def patch(self, kind: str, namespace: str, name: str, patch: Any, **kwargs: Any) -> Dict[str, Any]:
        self._maybe_die("patch", kind, name)
        if kind == "Pod":
            self.calls.append(("patch", kind, name))
            pod = next(p for p in self.pods if p["metadata"]["name"] == name)
            pod["metadata"]["labels"].update((patch.get("metadata") or {}).get("labels") or {})
            return copy.deepcopy(pod)
        return super().patch(kind, namespace, name, patch, **kwargs)

    def replace(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        self._maybe_die("replace", kind, body["metadata"]["name"])
        return super().replace(kind, namespace, body)

    def service_proxy_get(
        self, namespace: str, service: str, port: Any, path: str, timeout: float, scheme: str = "http"
    ) -> ProxyResponse:
        if self.kill_on_service_proxy:
            self.dead = True
        self._maybe_die("proxy", "Service", service)
        return super().service_proxy_get(namespace, service, port, path, timeout, scheme)

    # -- the controllers ---------------------------------------------------------------

    def put(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        stored = super().put(kind, namespace, body)
        if kind == "Deployment":
            self._roll_out(namespace, stored)
        return stored

    def _roll_out(self, namespace: str, deployment: Dict[str, Any]) -> None:
        meta = deployment["metadata"]
        spec = deployment["spec"]
        template = spec["template"]
        template_hash = canonical_hash(template)[:10]
        old_rs = [rs for rs in self.replica_sets if rs["metadata"]["labels"].get("owner") == meta["name"]]
        current = next(
            (rs for rs in old_rs if rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL] == template_hash), None
        )
        if current is None:
            self.revision += 1
            labels = dict(template["metadata"]["labels"], **{POD_TEMPLATE_HASH_LABEL: template_hash})
            current = {
                "metadata": {
                    "name": "%s-%s" % (meta["name"], template_hash),
                    "namespace": namespace,
                    "labels": dict(labels, owner=meta["name"]),
                    "annotations": {REVISION: str(self.revision)},
                    "ownerReferences": [{"uid": "uid-" + meta["name"]}],
                },
            }
            self.replica_sets = [rs for rs in self.replica_sets if rs not in old_rs] + [current]
        meta["uid"] = "uid-" + meta["name"]
        meta["generation"] = int(meta.get("generation") or 0) + 1
        meta.setdefault("annotations", {})[REVISION] = current["metadata"]["annotations"][REVISION]
        replicas = int(spec.get("replicas") or 0)
        pod_labels = dict(template["metadata"]["labels"], **{POD_TEMPLATE_HASH_LABEL: template_hash})
        # The controller keeps the pods of the current ReplicaSet, whatever other labels were put on them.
        keep = [
            p
            for p in self.pods
            if p["metadata"].get("owner") == meta["name"]
            and p["metadata"]["labels"].get(POD_TEMPLATE_HASH_LABEL) == template_hash
        ]
        others = [p for p in self.pods if p["metadata"].get("owner") != meta["name"]]
        while len(keep) < replicas:
            self.ip += 1
            keep.append(
                {
                    "metadata": {
                        "name": "%s-%s-%d" % (meta["name"], template_hash, self.ip),
                        "namespace": namespace,
                        "labels": dict(pod_labels),
                        "owner": meta["name"],
                    },
                    "status": {
                        "podIP": "10.244.0.%d" % self.ip,
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [{"name": "app", "restartCount": 0, "ready": True}],
                    },
                }
            )
        self.pods = others + keep[:replicas]
        deployment["status"] = {
            "observedGeneration": meta["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
        }

    def delete(self, kind: str, namespace: str, name: str, resource_version: Optional[str] = None) -> Dict[str, Any]:
        self._maybe_die("delete", kind, name)
        gone = super().delete(kind, namespace, name, resource_version)
        if kind == "Deployment":
            self.pods = [p for p in self.pods if p["metadata"].get("owner") != name]
        return gone

    def list_replica_sets(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        return [copy.deepcopy(rs) for rs in self.replica_sets if selects(selector, rs["metadata"]["labels"])]

    def list(self, kind: str, namespace: str, selector: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
        self._maybe_die("list", kind, "")
        if kind != "EndpointSlice":
            return super().list(kind, namespace, selector)
        self.calls.append(("list", kind, ""))
        service = self.objects.get(("Service", namespace, (selector or {}).get("kubernetes.io/service-name", "")))
        picked = self.selected_pods(service)
        return [{"endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True}} for p in picked]}]

    def selected_pods(self, service: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
        selector = ((service or {}).get("spec") or {}).get("selector") or {}
        return [p for p in self.pods if selects(selector, p["metadata"]["labels"])]

    def server_now(self) -> Optional[Any]:
        return self.server_clock.now() if self.server_clock else None

    # -- what the application answers -------------------------------------------------------

    def _proxy(self, namespace: str, target: str, port: Any, path: str, timeout: float) -> ProxyResponse:
        service = self.objects.get(("Service", namespace, target))
        pods = self.selected_pods(service) if service else [p for p in self.pods if p["metadata"]["name"] == target]
        if not pods:
            return ProxyResponse(503, b"no endpoints")
        if any(p["metadata"]["labels"].get(VERSION_LABEL) in self.bad_versions for p in pods):
            return ProxyResponse(500, b'{"status":"down"}')
        return ProxyResponse(200, b'{"status":"ok"}')

    # -- what the tests look at -----------------------------------------------------------------

    def selector(self, namespace: str, name: str = "user-service") -> Dict[str, str]:
        return dict(self.objects[("Service", namespace, name)]["spec"]["selector"])

    def replicas(self, namespace: str, app: str = "user-service") -> Dict[str, Optional[int]]:
        out: Dict[str, Optional[int]] = {}
        for slot in ("blue", "green"):
            deployment = self.objects.get(("Deployment", namespace, "%s-%s" % (app, slot)))
            out[slot] = None if deployment is None else int(deployment["spec"]["replicas"])
        return out

    def serving_replicas(self, namespace: str) -> int:
        """Ready pods behind the active Service: 0 is an outage."""
        return len(self.selected_pods(self.objects.get(("Service", namespace, "user-service"))))
