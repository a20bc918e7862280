# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes at the engine's boundaries: a clock, an in-memory KubeClient, an HTTP GET."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.client import ProxyResponse
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ConflictError, NotFoundError
from ansible_collections.userservice.deploy.plugins.module_utils.prometheus import HttpResponse

EPOCH = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


class FakeClock:
    """Time that moves only when the code under test sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: List[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def now(self) -> datetime.datetime:
        return EPOCH + datetime.timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeKube:
    """In-memory API objects with resourceVersion semantics like the API server's."""

    def __init__(self) -> None:
        self.objects: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
        self.version = 100
        self.calls: List[Tuple[str, ...]] = []
        self.before_write: Optional[Callable[[str, str, str], None]] = None
        self.pods: List[Dict[str, Any]] = []
        self.replica_sets: List[Dict[str, Any]] = []
        self.proxy: Callable[..., ProxyResponse] = lambda *a: ProxyResponse(200, b"{}")
        self.deployments: List[Dict[str, Any]] = []

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    def put(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        body = copy.deepcopy(body)
        body.setdefault("metadata", {})["resourceVersion"] = self._bump()
        body["metadata"]["namespace"] = namespace
        self.objects[(kind, namespace, body["metadata"]["name"])] = body
        return body

    def read(self, kind: str, namespace: str, name: str) -> Dict[str, Any]:
        self.calls.append(("read", kind, name))
        try:
            return copy.deepcopy(self.objects[(kind, namespace, name)])
        except KeyError:
            raise NotFoundError("not found", status=404, kind=kind, namespace=namespace, name=name) from None

    def read_optional(self, kind: str, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        try:
            return self.read(kind, namespace, name)
        except NotFoundError:
            return None

    def create(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(("create", kind, name))
        if self.before_write:
            self.before_write("create", kind, name)
        if (kind, namespace, name) in self.objects:
            raise ConflictError("already exists", status=409, kind=kind, namespace=namespace, name=name)
        return copy.deepcopy(self.put(kind, namespace, body))

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        resource_version: Optional[str] = None,
    ) -> Dict[str, Any]:
        self.calls.append(("patch", kind, name))
        if self.before_write:
            self.before_write("patch", kind, name)
        current = self.read(kind, namespace, name)
        if resource_version is not None and current["metadata"]["resourceVersion"] != resource_version:
            raise ConflictError("conflict", status=409, kind=kind, namespace=namespace, name=name)
        merged = merge_patch(current, patch)
        return copy.deepcopy(self.put(kind, namespace, merged))

    def read_deployment(self, namespace: str, name: str) -> Dict[str, Any]:
        if self.deployments:
            # Scripted sequence of observations for rollout tests; the last one repeats.
            value = self.deployments.pop(0) if len(self.deployments) > 1 else self.deployments[0]
            return copy.deepcopy(value)
        return self.read("Deployment", namespace, name)

    def list_pods(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        self.calls.append(("list", "Pod", json.dumps(selector, sort_keys=True)))
        return [
            p for p in self.pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]

    def list_replica_sets(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        return list(self.replica_sets)

    def pod_proxy_get(
        self, namespace: str, pod: str, port: Any, path: str, timeout: float, scheme: str = "http"
    ) -> ProxyResponse:
        self.calls.append(("proxy", pod, str(port), path))
        return self.proxy(namespace, pod, port, path, timeout)

    def service_proxy_get(
        self, namespace: str, service: str, port: Any, path: str, timeout: float, scheme: str = "http"
    ) -> ProxyResponse:
        self.calls.append(("service-proxy", service, str(port), path))
        return self.proxy(namespace, service, port, path, timeout)

    def replace(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(("replace", kind, name))
        if self.before_write:
            self.before_write("replace", kind, name)
        current = self.read(kind, namespace, name)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and current["metadata"]["resourceVersion"] != wanted:
            raise ConflictError("conflict", status=409, kind=kind, namespace=namespace, name=name)
        body = copy.deepcopy(body)
        body.setdefault("status", current.get("status"))
        return copy.deepcopy(self.put(kind, namespace, body))

    def delete(self, kind: str, namespace: str, name: str, resource_version: Optional[str] = None) -> Dict[str, Any]:
        self.calls.append(("delete", kind, name))
        if self.before_write:
            self.before_write("delete", kind, name)
        if (kind, namespace, name) not in self.objects:
            raise NotFoundError("not found", status=404, kind=kind, namespace=namespace, name=name)
        return self.objects.pop((kind, namespace, name))

    def list(self, kind: str, namespace: str, selector: Optional[Dict[str, str]] = None) -> List[Dict[str, Any]]:
        self.calls.append(("list", kind, json.dumps(selector or {}, sort_keys=True)))
        if kind == "Pod":
            items: List[Dict[str, Any]] = list(self.pods)
        else:
            items = [obj for (k, ns, _name), obj in self.objects.items() if k == kind and ns == namespace]
        return [
            copy.deepcopy(item)
            for item in items
            if all(((item.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in (selector or {}).items())
        ]

    def writes(self) -> List[Tuple[str, ...]]:
        return [c for c in self.calls if c[0] in ("create", "patch", "replace", "delete")]


class FakeHttp:
    """HTTP GET boundary: answers from a script, records the URLs asked for."""

    def __init__(self, answers: List[Any]) -> None:
        self.answers = list(answers)
        self.urls: List[str] = []

    def __call__(self, url: str, headers: Dict[str, str], timeout: float, validate_certs: bool) -> HttpResponse:
        self.urls.append(url)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer):
            answer = answer()
        if isinstance(answer, BaseException):
            raise answer
        status, body = answer
        return HttpResponse(status, body if isinstance(body, bytes) else json.dumps(body).encode())


def prom_vector(*values: Any) -> Dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, str(v)]} for v in values]},
    }
