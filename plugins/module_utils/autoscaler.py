# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The autoscaler follows traffic: sizing new capacity from what serves now, and one HPA on the serving slot.

A new slot is started at the size that serves now, not at the HPA's floor:
``max(floor, the serving Deployment's replicas, its HPA's current and desired
replicas)``, as Argo Rollouts sizes a new ReplicaSet. After traffic moves (a
switch, a flip-back, a rollback) the HPA is pointed at the slot that serves
within the same run, before anything else can fail, so there is no window in
which the serving slot has no autoscaler.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    canonical_hash,
    replicas_of,
)

KIND = "HorizontalPodAutoscaler"


class Autoscaler:
    def __init__(
        self,
        client: Any,
        namespace: str,
        app: str,
        spec: Optional[Dict[str, Any]],
        *,
        manage: bool = True,
        before_write: Callable[[], None],
        log: Callable[[str], None],
    ) -> None:
        self.client = client
        self.ns = namespace
        self.app = app
        # autoscaling/v2 HPA spec without scaleTargetRef. None: an existing slot HPA follows traffic with
        # its own spec (a rollback or monitor run has no new spec to give).
        self.spec = spec
        self.manage = manage
        self.before_write = before_write
        self.log = log

    def read(self, deployment_name: str) -> Optional[Dict[str, Any]]:
        return self.client.read_optional(KIND, self.ns, deployment_name)

    def live_size(self, deployment: Optional[Dict[str, Any]]) -> int:
        """What serves now: the Deployment's replicas and, when an HPA drives it, the HPA's count."""
        if deployment is None:
            return 0
        size = replicas_of(deployment) or 0
        hpa = self.read(deployment["metadata"]["name"])
        status = (hpa or {}).get("status") or {}
        for key in ("currentReplicas", "desiredReplicas"):
            size = max(size, int(status.get(key) or 0))
        return size

    def size_for(self, floor: int, serving: Optional[Dict[str, Any]]) -> int:
        return max(int(floor), self.live_size(serving))

    def spec_to_follow(self, names: Any) -> Optional[Dict[str, Any]]:
        if self.spec is not None:
            return self.spec
        for name in names:
            hpa = self.read(name)
            if hpa is not None:
                spec = dict(hpa.get("spec") or {})
                spec.pop("scaleTargetRef", None)
                return spec
        return None

    def desired(self, deployment_name: str, spec: Dict[str, Any]) -> Dict[str, Any]:
        spec = json.loads(json.dumps(spec))
        spec["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name}
        return {
            "apiVersion": "autoscaling/v2",
            "kind": KIND,
            "metadata": {
                "name": deployment_name,
                "namespace": self.ns,
                "labels": {NAME_LABEL: self.app, MANAGED_BY_LABEL: MANAGER},
                # The API server fills in defaults (behavior): compare what we asked for, not what it stored.
                "annotations": {TEMPLATE_HASH_ANNOTATION: canonical_hash(spec)},
            },
            "spec": spec,
        }

    def follow(self, serving: str, others: Any) -> Dict[str, Any]:
        """Point the HPA at ``serving`` and remove the others' HPAs; returns what it did, as data."""
        done: Dict[str, Any] = {"serving": serving, "applied": False, "removed": []}
        others = list(others)
        spec = self.spec_to_follow([serving] + [name for name in others if name != serving]) if self.manage else None
        if spec is None:
            return done
        desired = self.desired(serving, spec)
        current = self.read(serving)
        if current is None:
            self.before_write()
            self.log("create HorizontalPodAutoscaler %s" % serving)
            self.client.create(KIND, self.ns, desired)
            done["applied"] = True
        elif (current.get("metadata") or {}).get("annotations", {}).get(TEMPLATE_HASH_ANNOTATION) != desired[
            "metadata"
        ]["annotations"][TEMPLATE_HASH_ANNOTATION]:
            self.before_write()
            body = dict(
                desired, metadata=dict(desired["metadata"], resourceVersion=current["metadata"]["resourceVersion"])
            )
            self.log("update HorizontalPodAutoscaler %s" % serving)
            self.client.replace(KIND, self.ns, body)
            done["applied"] = True
        for name in others:
            if name != serving and self.read(name) is not None:
                self.before_write()
                self.log("delete HorizontalPodAutoscaler %s" % name)
                self.client.delete(KIND, self.ns, name)
                done["removed"].append(name)
        return done
