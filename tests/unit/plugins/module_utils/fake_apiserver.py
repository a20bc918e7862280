# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake Kubernetes API server at the HTTP transport boundary (``transport.request``).

It keeps objects keyed by their API path and answers the way the API server does for what the apply
module sends: GET of an object or a list (with ``labelSelector``), server-side apply as a PATCH with
``application/apply-patch+yaml`` (a deep merge with the server's bookkeeping, ``dryRun=All`` honoured),
DELETE (``dryRun`` in the body honoured), SelfSubjectAccessReview / SelfSubjectReview POSTs and API
discovery of a group version. Every request is recorded, so a test can assert which were sent, or that
none were.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import threading
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple
from urllib.parse import unquote

from ansible_collections.userservice.deploy.plugins.module_utils.client import Response

APPLY_PATCH = "application/apply-patch+yaml"
SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
EPOCH = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
USER = "system:serviceaccount:user-service-dev:user-service-deployer"

# Fields the server keeps for itself: a change in them alone is not a change of the object.
_BOOKKEEPING = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp", "selfLink")


class Call(NamedTuple):
    """One request as the client sent it."""

    method: str
    path: str
    query: Optional[Dict[str, Any]]
    body: Any
    content_type: Optional[str]


class Where(NamedTuple):
    """An API path taken apart: ``prefix`` is /api/v1 or /apis/<group>/<version>."""

    prefix: str
    namespace: Optional[str]
    plural: str
    name: Optional[str]


def parse_path(path: str) -> Optional[Where]:
    """The parts of an object or collection path; ``None`` for a discovery path (/api/v1, /apis/g/v)."""
    segments = [unquote(part) for part in path.strip("/").split("/")]
    if segments[0] == "api" and len(segments) >= 2:
        prefix, rest = "/api/%s" % segments[1], segments[2:]
    elif segments[0] == "apis" and len(segments) >= 3:
        prefix, rest = "/apis/%s/%s" % (segments[1], segments[2]), segments[3:]
    else:
        raise ValueError("not an API path: %s" % path)
    if not rest:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        return Where(prefix, rest[1], rest[2], rest[3] if len(rest) > 3 else None)
    return Where(prefix, None, rest[0], rest[1] if len(rest) > 1 else None)


def matches_selector(labels: Dict[str, str], selector: str) -> bool:
    """``k=v``, ``k==v``, ``k!=v``, ``k`` (exists) and ``!k`` (does not exist), comma-separated, all must hold."""
    for term in (part.strip() for part in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def deep_merge(current: Any, patch: Any) -> Any:
    """Dicts merge key by key, anything else (lists included) replaces; ``None`` removes a field."""
    if not isinstance(patch, dict) or not isinstance(current, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = deep_merge(out.get(key), value)
    return out


def content(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """What a write can change: the object without status and the server's bookkeeping."""
    if obj is None:
        return None
    out = {key: value for key, value in obj.items() if key != "status"}
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _BOOKKEEPING}
    return out


def _spec_part(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """What moves ``metadata.generation``: everything but metadata and status."""
    if obj is None:
        return None
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _fields_v1(body: Any) -> Any:
    """Field ownership as FieldsV1: the keys only, never the values."""
    if isinstance(body, dict):
        return {"f:%s" % key: _fields_v1(value) for key, value in body.items()}
    return {}


def _status(code: int, reason: str, message: str, details: Optional[Dict[str, Any]] = None) -> Response:
    body: Dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return Response(code, json.dumps(body).encode("utf-8"), "application/json")


def _json(code: int, body: Any) -> Response:
    return Response(code, json.dumps(body).encode("utf-8"), "application/json")


def _is_dry_run(value: Any) -> bool:
    return value == "All" or (isinstance(value, list) and "All" in value)


class FakeApiServer:
    """The API server, in memory. Pass it as the transport of a ``KubeClient``."""

    def __init__(self, user: str = USER) -> None:
        self.objects: Dict[str, Dict[str, Any]] = {}
        self.calls: List[Call] = []
        self.version = 1000
        self.uids = 0
        self.ticks = 0
        self.user = user
        # (verb, group, resource) the SelfSubjectAccessReview answers "no" for.
        self.denied: Set[Tuple[str, str, str]] = set()
        # Apply paths that meet a field another manager owns: 409 unless the apply forces.
        self.conflicts: Dict[str, str] = {}
        # "group/version" (or "v1") -> resources of its discovery document.
        self.discovery: Dict[str, List[Dict[str, Any]]] = {}
        # Paths the caller may not touch: any request to them is answered 403.
        self.forbidden: Set[str] = set()
        # Called with each request before it is answered (a controller updating status, say).
        self.hooks: List[Callable[["FakeApiServer", Call], None]] = []
        # The client sends independent reads from a few threads at once: one request is answered at a time.
        self.lock = threading.RLock()

    # -- the transport -------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
        timeout: float = 30,
    ) -> Response:
        with self.lock:
            return self._answer(Call(method, path, copy.deepcopy(query), copy.deepcopy(body), content_type))

    def _answer(self, call: Call) -> Response:
        method, path, query, body, content_type = call
        self.calls.append(call)
        for hook in list(self.hooks):
            hook(self, call)
        if method == "POST" and path == SELF_SUBJECT_ACCESS_REVIEWS:
            return self._access_review(body)
        if method == "POST" and path == SELF_SUBJECT_REVIEWS:
            info = {"username": self.user, "uid": "deployer-uid", "groups": ["system:authenticated"]}
            return _json(201, dict(body, status={"userInfo": info}))
        if path in self.forbidden:
            return _status(403, "Forbidden", '%s is forbidden: User "%s" cannot %s it' % (path, self.user, method))
        where = parse_path(path)
        if where is None:
            return self._discover(method, path)
        if method == "GET":
            return self._get(path, where, query or {})
        if method == "PATCH":
            return self._apply(path, where, query or {}, body, content_type)
        if method == "DELETE":
            return self._delete(path, where, query or {}, body)
        return _status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- answers ---------------------------------------------------------------

    def _not_found(self, where: Where) -> Response:
        return _status(
            404,
            "NotFound",
            '%s "%s" not found' % (where.plural, where.name),
            {"name": where.name, "kind": where.plural},
        )

    def _get(self, path: str, where: Where, query: Dict[str, Any]) -> Response:
        if where.name is not None:
            if path not in self.objects:
                return self._not_found(where)
            return _json(200, self.objects[path])
        selector = query.get("labelSelector") or ""
        items = []
        for stored_path, obj in self.objects.items():
            stored = parse_path(stored_path)
            if stored is None or stored.name is None:
                continue
            if (stored.prefix, stored.namespace, stored.plural) != (where.prefix, where.namespace, where.plural):
                continue
            if matches_selector((obj.get("metadata") or {}).get("labels") or {}, selector):
                items.append(obj)
        items.sort(key=lambda obj: obj["metadata"]["name"])
        return _json(
            200,
            {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.version)}, "items": items},
        )

    def _discover(self, method: str, path: str) -> Response:
        group_version = path.strip("/").split("/", 1)[1]
        if method != "GET" or group_version not in self.discovery:
            return _status(404, "NotFound", "the server could not find the requested resource")
        return _json(
            200,
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": self.discovery[group_version],
            },
        )

    def _access_review(self, body: Dict[str, Any]) -> Response:
        attributes = body["spec"]["resourceAttributes"]
        key = (attributes["verb"], attributes.get("group", ""), attributes["resource"])
        allowed = key not in self.denied
        status: Dict[str, Any] = {"allowed": allowed}
        if not allowed:
            status["reason"] = "no RBAC policy matched"
        return _json(201, dict(body, status=status))

    def _apply(
        self, path: str, where: Where, query: Dict[str, Any], body: Any, content_type: Optional[str]
    ) -> Response:
        if content_type != APPLY_PATCH:
            return _status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
        manager = query.get("fieldManager")
        if not manager:
            return _status(400, "BadRequest", "PATCH /apply requests require a fieldManager")
        if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
            return _status(400, "BadRequest", "apiVersion and kind must be set")
        metadata = body.get("metadata") or {}
        if metadata.get("name") != where.name:
            return _status(400, "BadRequest", "the name of the object does not match the name on the URL")
        if where.namespace is not None and metadata.get("namespace") not in (None, where.namespace):
            return _status(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if where.namespace is not None and "/api/v1/namespaces/%s" % where.namespace not in self.objects:
            return _status(
                404,
                "NotFound",
                'namespaces "%s" not found' % where.namespace,
                {"name": where.namespace, "kind": "namespaces"},
            )
        if path in self.conflicts and query.get("force") != "true":
            return _status(409, "Conflict", self.conflicts[path])
        stored, created = self._merge(path, where, body, manager)
        if not _is_dry_run(query.get("dryRun")):
            self.objects[path] = stored
        return _json(201 if created else 200, stored)

    def _merge(self, path: str, where: Where, body: Dict[str, Any], manager: str) -> Tuple[Dict[str, Any], bool]:
        current = self.objects.get(path)
        patch = {key: value for key, value in body.items() if key != "status"}
        merged = deep_merge(current or {}, patch)
        if where.namespace is not None:
            merged["metadata"]["namespace"] = where.namespace
        if merged.get("kind") == "Secret" and merged.get("stringData"):
            # The API server turns stringData into base64 data on every write and never stores stringData.
            data = dict(merged.get("data") or {})
            for key, value in merged.pop("stringData").items():
                data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
            merged["data"] = data
        meta = merged["metadata"]
        if current is None:
            self.uids += 1
            meta["uid"] = "uid-%04d" % self.uids
            meta["creationTimestamp"] = self._now()
            meta["generation"] = 1
            meta["resourceVersion"] = self.bump()
        elif content(merged) != content(current):
            meta["resourceVersion"] = self.bump()
            if _spec_part(merged) != _spec_part(current):
                meta["generation"] = int(meta.get("generation") or 1) + 1
        entries = [entry for entry in meta.get("managedFields") or [] if entry.get("manager") != manager]
        previous = [entry for entry in meta.get("managedFields") or [] if entry.get("manager") == manager]
        if previous and content(merged) == content(current):
            # A no-op apply leaves the manager's entry (and its time) as it was.
            entry = previous[0]
        else:
            entry = {
                "manager": manager,
                "operation": "Apply",
                "apiVersion": body["apiVersion"],
                "time": self._now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(patch),
            }
        meta["managedFields"] = entries + [entry]
        return merged, current is None

    def _delete(self, path: str, where: Where, query: Dict[str, Any], body: Any) -> Response:
        if where.name is None:
            return _status(405, "MethodNotAllowed", "deletecollection is not emulated")
        if path not in self.objects:
            return self._not_found(where)
        obj = self.objects[path]
        dry_run = _is_dry_run(query.get("dryRun")) or _is_dry_run((body or {}).get("dryRun"))
        if not dry_run:
            del self.objects[path]
        return _json(200, obj)

    # -- helpers for tests -----------------------------------------------------

    def bump(self) -> str:
        self.version += 1
        return str(self.version)

    def _now(self) -> str:
        self.ticks += 1
        return (EPOCH + datetime.timedelta(seconds=self.ticks)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def seed(self, path: str, manifest: Dict[str, Any], manager: str = "userservice.deploy") -> Dict[str, Any]:
        """Store ``manifest`` at ``path`` as an apply by ``manager`` would, without recording a call."""
        where = parse_path(path)
        assert where is not None and where.name == manifest["metadata"]["name"], path
        stored, _created = self._merge(path, where, manifest, manager)
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def put(self, path: str, obj: Dict[str, Any]) -> None:
        """Store ``obj`` exactly as given (status, timestamps and all)."""
        self.objects[path] = copy.deepcopy(obj)

    def add_namespace(self, name: str) -> None:
        self.seed("/api/v1/namespaces/%s" % name, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def set_status(self, path: str, status: Dict[str, Any]) -> None:
        self.objects[path]["status"] = copy.deepcopy(status)

    def stored(self, path: str) -> Optional[Dict[str, Any]]:
        obj = self.objects.get(path)
        return copy.deepcopy(obj) if obj is not None else None

    def resource_versions(self) -> Dict[str, str]:
        return {path: obj["metadata"].get("resourceVersion", "") for path, obj in self.objects.items()}

    # -- what was sent ---------------------------------------------------------

    def requests(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Call]:
        return [
            call
            for call in self.calls
            if (method is None or call.method == method) and (path is None or call.path == path)
        ]

    def writes(self) -> List[Call]:
        """Requests that may change something (the reviews' POSTs are answered, never stored)."""
        reviews = (SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS)
        return [
            c
            for c in self.calls
            if c.method in ("PATCH", "PUT", "DELETE") or (c.method == "POST" and c.path not in reviews)
        ]

    def patch_paths(self) -> List[str]:
        return [call.path for call in self.calls if call.method == "PATCH"]
