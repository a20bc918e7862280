# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hashed ConfigMaps and Secrets of an app may go.

The config role names each ConfigMap and Secret by a hash of its content, so every change is a new object
next to the old. An old one stays while any pod template refers to it: a Deployment's, or a ReplicaSet's
(`kubectl rollout undo` and the other blue/green slot run on those). Of the unreferenced ones, the newest
``history_limit`` per entry are kept; the rest are deleted. The objects of the current run are always kept,
even before a Deployment points at them.

Only names and creation times are read from the listed objects: a Secret's payload is never kept.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Set

from ansible_collections.userservice.deploy.plugins.module_utils.client import concurrently

KINDS = ("ConfigMap", "Secret")


def referenced_names(pod_specs: Iterable[Dict[str, Any]]) -> Set[str]:
    """Every ConfigMap and Secret name a pod spec refers to (volumes, projected sources, envFrom, env)."""
    names: Set[str] = set()
    for spec in pod_specs:
        for volume in spec.get("volumes") or []:
            names.add((volume.get("configMap") or {}).get("name", ""))
            names.add((volume.get("secret") or {}).get("secretName", ""))
            for source in (volume.get("projected") or {}).get("sources") or []:
                names.add((source.get("configMap") or {}).get("name", ""))
                names.add((source.get("secret") or {}).get("name", ""))
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for env_from in container.get("envFrom") or []:
                names.add((env_from.get("configMapRef") or {}).get("name", ""))
                names.add((env_from.get("secretRef") or {}).get("name", ""))
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                names.add((value_from.get("configMapKeyRef") or {}).get("name", ""))
                names.add((value_from.get("secretKeyRef") or {}).get("name", ""))
    names.discard("")
    return names


def choose(
    kind: str,
    existing: Iterable[Dict[str, Any]],
    keep: Set[str],
    history_limit: int,
    hash_length: int,
) -> List[Dict[str, str]]:
    """The objects of ``kind`` to delete: unreferenced, named ``<entry>-<hash>``, beyond the newest
    ``history_limit`` of their entry. ``existing`` are listed objects; only name and creation time are read."""
    pattern = re.compile(r"^(.+)-[0-9a-f]{%d}$" % hash_length)
    groups: Dict[str, List[Dict[str, str]]] = {}
    for obj in existing:
        metadata = obj.get("metadata") or {}
        name = metadata.get("name", "")
        match = pattern.match(name)
        if name in keep or not match:
            continue
        groups.setdefault(match.group(1), []).append(
            {"kind": kind, "name": name, "created": metadata.get("creationTimestamp") or ""}
        )
    doomed: List[Dict[str, str]] = []
    for prefix in sorted(groups):
        newest_first = sorted(groups[prefix], key=lambda item: (item["created"], item["name"]), reverse=True)
        doomed.extend(newest_first[history_limit:])
    return doomed


def plan(
    client: Any,
    namespace: str,
    app_name: str,
    managed_by: str,
    group_label: str,
    keep: Set[str],
    history_limit: int,
    hash_length: int,
) -> List[Dict[str, str]]:
    """List pod templates and hashed objects of the app and return what to delete (kind, name, created)."""
    app = "app.kubernetes.io/name=%s" % app_name
    hashed = "%s,app.kubernetes.io/managed-by=%s,%s" % (app, managed_by, group_label)
    # Four independent listings, a few in flight at once.
    deployments, replica_sets, configmaps, secrets = concurrently(
        lambda query: client.list(query[0], namespace, query[1]),
        [("Deployment", app), ("ReplicaSet", app), ("ConfigMap", hashed), ("Secret", hashed)],
    )
    pod_specs = [
        ((owner.get("spec") or {}).get("template") or {}).get("spec") or {} for owner in deployments + replica_sets
    ]
    keep = set(keep) | referenced_names(pod_specs)
    return choose("ConfigMap", configmaps, keep, history_limit, hash_length) + choose(
        "Secret", secrets, keep, history_limit, hash_length
    )
