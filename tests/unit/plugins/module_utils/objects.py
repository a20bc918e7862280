# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API objects as the API server returns them, for tests."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

NS = "user-service-dev"


def deployment(
    generation: int = 2,
    observed: int = 2,
    replicas: int = 3,
    updated: int = 3,
    total: int = 3,
    available: int = 3,
    conditions: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    return {
        "metadata": {
            "name": "user-service-green",
            "namespace": NS,
            "generation": generation,
            "uid": "dep-uid",
            "annotations": {"deployment.kubernetes.io/revision": "4"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": "user-service", "deploy.userservice.io/slot": "green"}
            },
        },
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


def replica_set(revision: str, template_hash: str, owner: str = "dep-uid") -> Dict[str, Any]:
    return {
        "metadata": {
            "name": "rs-" + template_hash,
            "ownerReferences": [{"uid": owner}],
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "labels": {"pod-template-hash": template_hash},
        }
    }


def pod(name: str, template_hash: str, waiting: Optional[str] = None, restarts: int = 0) -> Dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "back-off 40s"}} if waiting else {"running": {}}
    return {
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "user-service",
                "deploy.userservice.io/slot": "green",
                "pod-template-hash": template_hash,
            },
        },
        "status": {
            "containerStatuses": [{"name": "app", "state": state, "restartCount": restarts}],
            "conditions": [{"type": "Ready", "status": "False" if waiting else "True"}],
        },
    }


PDE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "user-service-green-abc" has timed out progressing.',
}
