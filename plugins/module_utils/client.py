# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options, the Kubernetes API client and the thin facade the engine uses.

The connection options are the ones kubernetes.core documents, with the same
``K8S_AUTH_*`` environment variables, so one ``module_defaults`` block or one
AWX credential serves both collections.

The facade talks JSON over the ``ApiClient``'s own connection pool instead of
the generated typed methods: the generated code changed its PATCH content type
and model classes between client releases, while the REST paths did not. The
engine therefore sees plain dicts shaped exactly like ``kubectl get -o json``.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote, urlencode

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiError,
    ApiUnreachableError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ReleaseError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.kube_connection import Connection, direct_connection

try:
    import urllib3

    HAS_URLLIB3 = True
    URLLIB3_IMPORT_ERROR: Optional[str] = None
except ImportError:
    HAS_URLLIB3 = False
    URLLIB3_IMPORT_ERROR = traceback.format_exc()

# The kubernetes library is imported only for the connections kube_connection cannot read itself (exec
# plugins, in-cluster, proxies): its import is a fifth of a short module run.
HAS_KUBERNETES = importlib.util.find_spec("kubernetes") is not None

FIELD_MANAGER = "userservice.deploy"
DEFAULT_REQUEST_TIMEOUT = 30.0
# Reads are retried on transient failures (no answer, 429, 5xx) for this long: well inside the release
# lease's TTL (60 s by default, renewed every TTL/3), so a retried renewal still lands before expiry.
RETRY_DEADLINE = 20.0
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)


def _env(*names: str) -> Dict[str, Any]:
    return {"fallback": (env_fallback, list(names))}


# One source for the connection options; plugins/doc_fragments/auth.py documents
# exactly these keys (tests/unit/.../test_doc_fragments.py keeps them in step).
AUTH_ARG_SPEC: Dict[str, Dict[str, Any]] = {
    "kubeconfig": dict(type="raw", **_env("K8S_AUTH_KUBECONFIG")),
    "context": dict(type="str", **_env("K8S_AUTH_CONTEXT")),
    "host": dict(type="str", **_env("K8S_AUTH_HOST")),
    "api_key": dict(type="str", no_log=True, **_env("K8S_AUTH_API_KEY")),
    "username": dict(type="str", **_env("K8S_AUTH_USERNAME")),
    "password": dict(type="str", no_log=True, **_env("K8S_AUTH_PASSWORD")),
    "validate_certs": dict(
        type="bool", aliases=["verify_ssl"], **_env("K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL")
    ),
    "ca_cert": dict(type="path", aliases=["ssl_ca_cert"], **_env("K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT")),
    "client_cert": dict(type="path", aliases=["cert_file"], **_env("K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE")),
    "client_key": dict(
        type="path", aliases=["key_file"], no_log=False, **_env("K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE")
    ),
    "proxy": dict(type="str", **_env("K8S_AUTH_PROXY")),
    "no_proxy": dict(type="str", **_env("K8S_AUTH_NO_PROXY")),
    "impersonate_user": dict(type="str", **_env("K8S_AUTH_IMPERSONATE_USER")),
    "impersonate_groups": dict(type="list", elements="str", **_env("K8S_AUTH_IMPERSONATE_GROUPS")),
    "request_timeout": dict(type="float", default=DEFAULT_REQUEST_TIMEOUT),
}


def missing_libraries() -> List[Tuple[str, str]]:
    """``(library, import traceback)`` for every Python library the engine cannot import."""
    missing = []
    if not HAS_KUBERNETES:
        missing.append(("kubernetes", "the module 'kubernetes' is not installed for %s" % sys.executable))
    if not HAS_URLLIB3:
        missing.append(("urllib3", URLLIB3_IMPORT_ERROR or ""))
    return missing


def require_libraries(module: Any) -> None:
    """Fail the module with ansible's standard message when a library is missing."""
    for library, trace in missing_libraries():
        module.fail_json(msg=missing_required_lib(library), exception=trace)


# ---------------------------------------------------------------------------
# Building the kubernetes ApiClient from the options
# ---------------------------------------------------------------------------


def _load_kubeconfig(configuration: Any, kubeconfig: Any, context: Optional[str]) -> None:
    import kubernetes.config

    if isinstance(kubeconfig, dict):
        kubernetes.config.load_kube_config_from_dict(
            config_dict=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    else:
        kubernetes.config.load_kube_config(
            config_file=kubeconfig or None, context=context, client_configuration=configuration, persist_config=False
        )


def _override(configuration: Any, params: Dict[str, Any]) -> None:
    """The explicit options over whatever a kubeconfig set."""
    if params.get("host"):
        configuration.host = params["host"].rstrip("/")
    if params.get("api_key"):
        # The library (37) sends api_key["BearerToken"], older ones api_key["authorization"].
        bearer = "Bearer %s" % params["api_key"]
        configuration.api_key = {"BearerToken": bearer, "authorization": bearer}
        configuration.api_key_prefix = {}
    if params.get("username"):
        configuration.username = params["username"]
    if params.get("password"):
        configuration.password = params["password"]
    if params.get("validate_certs") is not None:
        configuration.verify_ssl = params["validate_certs"]
    if params.get("ca_cert"):
        configuration.ssl_ca_cert = params["ca_cert"]
    if params.get("client_cert"):
        configuration.cert_file = params["client_cert"]
    if params.get("client_key"):
        configuration.key_file = params["client_key"]
    if params.get("proxy"):
        configuration.proxy = params["proxy"]
    if params.get("no_proxy"):
        configuration.no_proxy = params["no_proxy"]


def build_configuration(params: Dict[str, Any]) -> Any:
    """A ``kubernetes.client.Configuration`` from the connection options.

    Same precedence as kubernetes.core: host plus token (or user/password) is
    enough on its own; otherwise the kubeconfig (explicit file, dict or the
    default location) and, before the default kubeconfig, the in-cluster
    service account. Explicit options always override what a kubeconfig says.
    """
    import kubernetes.client
    import kubernetes.config

    configuration = kubernetes.client.Configuration()
    host = params.get("host")
    has_credentials = bool(host and (params.get("api_key") or (params.get("username") and params.get("password"))))
    if not has_credentials:
        if params.get("kubeconfig") or params.get("context"):
            _load_kubeconfig(configuration, params.get("kubeconfig"), params.get("context"))
        else:
            try:
                kubernetes.config.load_incluster_config(client_configuration=configuration)
            except kubernetes.config.ConfigException:
                _load_kubeconfig(configuration, None, None)
    _override(configuration, params)
    # A kubeconfig's refresh hook (exec and auth-provider tokens) reloads the kubeconfig before each request's
    # credentials are read, host included; the explicit options go back on top after every refresh.
    refresh = getattr(configuration, "refresh_api_key_hook", None)
    if refresh is not None:

        def refresh_then_override(conf: Any) -> None:
            refresh(conf)
            _override(conf, params)

        configuration.refresh_api_key_hook = refresh_then_override
    return configuration


def build_api_client(params: Dict[str, Any]) -> Any:
    """A ``kubernetes.client.ApiClient`` configured from the connection options."""
    import kubernetes.client

    return kubernetes.client.ApiClient(build_configuration(params))


# ---------------------------------------------------------------------------
# Transport: the HTTP boundary (mocked in unit tests)
# ---------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, body: bytes, content_type: str = "", date: str = "") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        # The API server's own clock (HTTP Date header): lease expiry is judged on it, not on ours.
        self.date = date

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def text(self, limit: int = 512) -> str:
        return self.body.decode("utf-8", "replace")[:limit]


class HttpTransport:
    """Sends requests to ``host`` through a urllib3 pool, with the credentials' headers and impersonation."""

    def __init__(self, host: str, pool: Any, auth: Dict[str, str], params: Optional[Dict[str, Any]] = None) -> None:
        self.host = host.rstrip("/")
        self.pool = pool
        self.auth = auth
        params = params or {}
        self.impersonate_user = params.get("impersonate_user")
        self.impersonate_groups = list(params.get("impersonate_groups") or [])

    def _headers(self, content_type: Optional[str]) -> Any:
        headers = urllib3.HTTPHeaderDict()
        headers["Accept"] = "application/json, */*"
        headers["User-Agent"] = "userservice.deploy"
        if content_type:
            headers["Content-Type"] = content_type
        for key, value in self.auth.items():
            headers[key] = value
        if self.impersonate_user:
            headers["Impersonate-User"] = self.impersonate_user
        for group in self.impersonate_groups:
            # Each group is its own header line: the API server does not split commas.
            headers.add("Impersonate-Group", group)
        return headers

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> Response:
        url = self.host + path
        if query:
            url += "?" + urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        try:
            raw = self.pool.request(
                method,
                url,
                body=data,
                headers=self._headers(content_type if data is not None else None),
                timeout=urllib3.Timeout(total=timeout),
                retries=False,
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiUnreachableError(
                "no answer from the Kubernetes API server at %s" % self.host,
                seen="%s: %s" % (type(exc).__name__, exc),
                hint="Check host/kubeconfig, the network path and validate_certs/ca_cert",
            ) from exc
        return Response(raw.status, raw.data or b"", raw.headers.get("Content-Type", ""), raw.headers.get("Date", ""))

    def first_event(self, path: str, query: Dict[str, Any], seconds: float) -> Tuple[int, bytes]:
        """Open a watch on ``path`` and return ``(status, first line)`` within ``seconds``; b"" when none came.

        The stream is read only as far as its first event, then the connection is closed (never handed back
        half-read: the pool reconnects it on its next use). Raises ApiUnreachableError when the API server
        does not answer at all. Connecting and reading share one timeout of ``seconds``, so this never waits
        much longer than that.
        """
        url = self.host + path + "?" + urlencode(query)
        limit = max(seconds, 0.05)
        try:
            raw = self.pool.request(
                "GET",
                url,
                headers=self._headers(None),
                timeout=urllib3.Timeout(total=limit),
                retries=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiUnreachableError(
                "no answer from the Kubernetes API server at %s" % self.host, seen="%s: %s" % (type(exc).__name__, exc)
            ) from exc
        line = b""
        try:
            if raw.status == 200:
                for data in raw.stream(65536):
                    line += data
                    if b"\n" in line:
                        break
        except urllib3.exceptions.HTTPError:
            pass  # no event before the read timeout, or the stream ended: nothing changed that we saw
        finally:
            raw.close()
            raw.release_conn()
        return raw.status, line.split(b"\n", 1)[0]


def _basic(username: Optional[str], password: Optional[str]) -> Dict[str, str]:
    if username and password:
        return {"authorization": urllib3.util.make_headers(basic_auth="%s:%s" % (username, password))["authorization"]}
    return {}


def library_transport(api_client: Any, params: Optional[Dict[str, Any]] = None) -> HttpTransport:
    """A transport with the kubernetes library's ApiClient: its pool (TLS settings, proxy) and credentials."""
    configuration = api_client.configuration
    auth = {
        setting["key"]: setting["value"]
        for setting in configuration.auth_settings().values()
        if setting.get("in") == "header" and setting.get("value")
    }
    if "authorization" not in auth:
        auth.update(_basic(configuration.username, configuration.password))
    return HttpTransport(configuration.host, api_client.rest_client.pool_manager, auth, params)


def direct_transport(conn: Connection, params: Optional[Dict[str, Any]] = None) -> HttpTransport:
    """A transport from settings kube_connection read itself, with a pool of our own (no kubernetes import)."""
    tls: Dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if conn.verify else "CERT_NONE", "num_pools": 4, "maxsize": 8}
    if conn.verify and conn.ca_file:
        tls["ca_certs"] = conn.ca_file
    if conn.verify and conn.ca_data:
        tls["ca_cert_data"] = conn.ca_data
    if conn.cert_file:
        tls["cert_file"] = conn.cert_file
        tls["key_file"] = conn.key_file
    auth = {"authorization": "Bearer %s" % conn.token} if conn.token else _basic(conn.username, conn.password)
    return HttpTransport(conn.host, urllib3.PoolManager(**tls), auth, params)


def build_transport(params: Dict[str, Any]) -> HttpTransport:
    """The transport for the module's connection options: read directly when it can be, else by the library."""
    conn = direct_connection(params)
    if conn is not None:
        return direct_transport(conn, params)
    return library_transport(build_api_client(params), params)


# ---------------------------------------------------------------------------
# The facade
# ---------------------------------------------------------------------------

# kind -> (API prefix, plural)
RESOURCES: Dict[str, Tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "Service": ("/api/v1", "services"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "VirtualService": ("/apis/networking.istio.io/v1", "virtualservices"),
}


def is_transient(exc: Exception) -> bool:
    """An API failure worth retrying: no answer at all, throttling, or a server-side error."""
    if isinstance(exc, ApiUnreachableError):
        return True
    return isinstance(exc, ApiError) and exc.status in TRANSIENT_STATUSES


PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


def _is_status(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("kind") == "Status" and "status" in payload


def raise_for_status(response: Response, verb: str, kind: str, namespace: Optional[str], name: Optional[str]) -> None:
    """Turn an API error answer into a typed error naming the object and the verb."""
    if 200 <= response.status < 300:
        return
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    detail = payload.get("message") if _is_status(payload) else response.text(200)
    reason = payload.get("reason") if _is_status(payload) else None
    where = dict(kind=kind, namespace=namespace, name=name)
    if response.status == 404:
        raise NotFoundError(
            "not found", status=404, verb=verb, reason=reason, expected="the object to exist", seen=detail, **where
        )
    if response.status == 409:
        raise ConflictError(
            "changed or created by someone else while this run was working",
            status=409,
            verb=verb,
            reason=reason,
            seen=detail,
            hint="Re-read the object and retry; another run or controller is writing it",
            **where,
        )
    if response.status == 403:
        plural = RESOURCES.get(kind, ("", kind.lower()))[1] if kind else "resource"
        raise ForbiddenError(verb, plural, namespace, name, detail or "")
    if response.status == 401:
        raise ApiError(
            "the API server rejected the credentials",
            status=401,
            verb=verb,
            seen=detail,
            hint="Check api_key / kubeconfig / client_cert (or their K8S_AUTH_* variables)",
            **where,
        )
    raise ApiError(
        "%s failed with HTTP %s" % (verb, response.status),
        status=response.status,
        verb=verb,
        reason=reason,
        seen=detail,
        **where,
    )


def from_api_exception(exc: Any, verb: str, kind: str, namespace: Optional[str], name: Optional[str]) -> None:
    """Typed error from a ``kubernetes.client.ApiException`` (for callers using the generated API)."""
    body = exc.body if isinstance(exc.body, bytes) else (exc.body or "").encode("utf-8")
    raise_for_status(Response(int(exc.status or 0), body), verb, kind, namespace, name)
    raise ApiError(
        "%s failed: %s" % (verb, exc.reason),
        status=int(exc.status or 0),
        verb=verb,
        kind=kind,
        namespace=namespace,
        name=name,
    )


class ProxyResponse:
    """An answer relayed by the API server proxy; non-2xx statuses are answers, not errors."""

    def __init__(self, status: int, body: bytes, elapsed: float = 0.0, content_type: str = "") -> None:
        self.status = status
        self.body = body
        self.elapsed = elapsed
        self.content_type = content_type

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def text(self, limit: int = 200) -> str:
        return self.body.decode("utf-8", "replace")[:limit]


def _proxy_path(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    # Keep the path and query structure; escape only what cannot travel in a URL.
    return quote(path, safe="/?=&%:@-._~+,;!$'()*")


class KubeClient:
    """The API calls the release engine makes, with dry-run and typed errors.

    ``dry_run=True`` adds ``dryRun=All`` to every write, so check mode runs the
    same code path and the API server validates (and admission-checks) each
    change without persisting it.
    """

    def __init__(
        self,
        transport: Any,
        dry_run: bool = False,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry_deadline: float = RETRY_DEADLINE,
        sleep: Any = time.sleep,
        monotonic: Any = time.monotonic,
    ) -> None:
        self.transport = transport
        self.dry_run = dry_run
        self.request_timeout = request_timeout
        self.retry_deadline = retry_deadline
        self.sleep = sleep
        self.monotonic = monotonic
        # The Date header of the last answer that had one; parsed only when asked for (server_now).
        self.server_date = ""
        self.retries = 0
        # Set when the API server refuses a watch: the waits then only poll.
        self.watch_refused = False

    def server_now(self) -> Optional[Any]:
        """The API server's time at its last answer (from the Date header), or None before any."""
        if not self.server_date:
            return None
        import email.utils  # deferred: a fiftieth of a second of import for the runs that ask (the lock)

        try:
            return email.utils.parsedate_to_datetime(self.server_date)
        except (TypeError, ValueError):
            return None

    def _send(self, method: str, path: str, **kwargs: Any) -> Response:
        response = self.transport.request(method, path, **kwargs)
        if getattr(response, "date", ""):
            self.server_date = response.date
        return response

    @classmethod
    def from_params(cls, params: Dict[str, Any], dry_run: bool = False) -> "KubeClient":
        """The client for a module's connection options; ``dry_run`` is the module's check mode."""
        try:
            transport = build_transport(params)
        except Exception as exc:  # the library's ConfigException, an unreadable or malformed kubeconfig
            if isinstance(exc, ReleaseError):
                raise
            raise ReleaseError(
                "cannot load Kubernetes connection settings",
                expected="a readable kubeconfig (option kubeconfig/context) or host with api_key",
                seen="%s%s: %s"
                % (
                    "kubeconfig %s: " % params["kubeconfig"] if isinstance(params.get("kubeconfig"), str) else "",
                    type(exc).__name__,
                    exc,
                ),
                hint="Set kubeconfig or K8S_AUTH_KUBECONFIG, or host and api_key (K8S_AUTH_HOST, K8S_AUTH_API_KEY)",
            ) from exc
        timeout = params.get("request_timeout") or DEFAULT_REQUEST_TIMEOUT
        return cls(transport, dry_run=dry_run, request_timeout=timeout)

    # -- generic -----------------------------------------------------------

    @staticmethod
    def _path(kind: str, namespace: str, name: Optional[str] = None) -> str:
        prefix, plural = RESOURCES[kind]
        path = "%s/namespaces/%s/%s" % (prefix, quote(namespace, safe=""), plural)
        if name is not None:
            path += "/" + quote(name, safe="")
        return path

    def _write_query(self) -> Dict[str, str]:
        query = {"fieldManager": FIELD_MANAGER}
        if self.dry_run:
            query["dryRun"] = "All"
        return query

    def _call(
        self,
        verb: str,
        method: str,
        kind: str,
        namespace: str,
        name: Optional[str],
        query: Optional[Dict[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
        path: Optional[str] = None,
    ) -> Dict[str, Any]:
        """One API call with typed errors; reads are retried on transient failures. ``path`` overrides the
        path built from ``kind`` (for kinds outside RESOURCES, as the apply module sends them)."""
        if path is None:
            path = self._path(kind, namespace, name if verb not in ("create", "list") else None)
        deadline = self.monotonic() + self.retry_deadline
        delay = 0.5
        while True:
            try:
                response = self._send(
                    method,
                    path,
                    query=query,
                    body=body,
                    content_type=content_type,
                    timeout=self.request_timeout,
                )
                raise_for_status(response, verb, kind, namespace, name)
                break
            except ApiError as exc:
                # Only reads are repeated here: a write that timed out may have landed, and its caller
                # (guarded by resourceVersion) is the one that knows how to re-check.
                if method != "GET" or not is_transient(exc) or self.monotonic() + delay > deadline:
                    raise
                self.retries += 1
                self.sleep(delay)
                delay = min(delay * 2, 4.0)
        try:
            return response.json() if response.body else {}
        except ValueError as exc:
            raise ApiError(
                "the API server answered %s with something that is not JSON" % verb,
                status=response.status,
                verb=verb,
                kind=kind,
                namespace=namespace,
                name=name,
                seen=response.text(120),
            ) from exc

    def get_path(
        self, path: str, verb: str = "get", kind: str = "", namespace: Optional[str] = None, name: Optional[str] = None
    ) -> Dict[str, Any]:
        """GET any API path (retried like every read); kind/namespace/name only label errors."""
        return self._call(verb, "GET", kind, namespace or "", name, path=path)

    def send_path(
        self,
        method: str,
        path: str,
        verb: str,
        kind: str,
        namespace: Optional[str],
        name: Optional[str],
        query: Optional[Dict[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Send a write to any API path; the caller's query carries dryRun and the field manager."""
        return self._call(verb, method, kind, namespace or "", name, query, body, content_type, path=path)

    def read(self, kind: str, namespace: str, name: str) -> Dict[str, Any]:
        return self._call("get", "GET", kind, namespace, name)

    def read_optional(self, kind: str, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        try:
            return self.read(kind, namespace, name)
        except NotFoundError:
            return None

    def create(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        name = (body.get("metadata") or {}).get("name")
        return self._call("create", "POST", kind, namespace, name, self._write_query(), body, "application/json")

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Any,
        patch_type: str = "merge",
        resource_version: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Patch an object; with ``resource_version`` the API server refuses (409) if it changed since."""
        if resource_version is not None:
            if patch_type == "json":
                patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}] + list(patch)
            else:
                patch = dict(patch)
                patch["metadata"] = dict(patch.get("metadata") or {}, resourceVersion=resource_version)
        return self._call("patch", "PATCH", kind, namespace, name, self._write_query(), patch, PATCH_TYPES[patch_type])

    def replace(self, kind: str, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        name = body["metadata"]["name"]
        return self._call("update", "PUT", kind, namespace, name, self._write_query(), body, "application/json")

    def delete(self, kind: str, namespace: str, name: str, resource_version: Optional[str] = None) -> Dict[str, Any]:
        body: Dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if resource_version is not None:
            body["preconditions"] = {"resourceVersion": resource_version}
        if self.dry_run:
            body["dryRun"] = ["All"]
        return self._call("delete", "DELETE", kind, namespace, name, None, body, "application/json")

    def list(self, kind: str, namespace: str, selector: Any = None) -> List[Dict[str, Any]]:
        """Objects of ``kind`` matching ``selector``: a dict of labels, or a label selector string."""
        if selector:
            query: Optional[Dict[str, str]] = {
                "labelSelector": selector if isinstance(selector, str) else format_selector(selector)
            }
        else:
            query = None
        return list(self._call("list", "GET", kind, namespace, None, query).get("items") or [])

    def wait_for_change(self, kind: str, namespace: str, name: str, resource_version: str, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``name`` to change after ``resource_version``; True as soon as it does.

        This is how a wait ends when the controller writes instead of at its next poll, as ``kubectl rollout
        status`` does. It never waits much longer than ``seconds`` and never fails: a watch the API server
        refuses (no ``watch`` permission: not asked again in this run), an expired resourceVersion (410), no
        answer or a cut stream all fall back to sleeping out the rest of ``seconds``.
        """
        started = self.monotonic()
        if not self.watch_refused and resource_version:
            query = {
                "watch": "1",
                "fieldSelector": "metadata.name=%s" % name,
                "resourceVersion": resource_version,
                "timeoutSeconds": str(max(1, int(seconds + 0.999))),
                "allowWatchBookmarks": "false",
            }
            try:
                status, line = self.transport.first_event(self._path(kind, namespace), query, seconds)
            except ApiUnreachableError:
                status, line = 0, b""
            if status in (401, 403, 404, 405):
                self.watch_refused = True
            if line:
                try:
                    event = json.loads(line.decode("utf-8"))
                except ValueError:
                    event = {}
                if isinstance(event, dict) and event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    return True
        rest = seconds - (self.monotonic() - started)
        if rest > 0:
            self.sleep(rest)
        return False

    # -- named calls the engine uses ------------------------------------------

    def read_deployment(self, namespace: str, name: str) -> Dict[str, Any]:
        return self.read("Deployment", namespace, name)

    def patch_deployment(self, namespace: str, name: str, patch: Any, **kwargs: Any) -> Dict[str, Any]:
        return self.patch("Deployment", namespace, name, patch, **kwargs)

    def create_deployment(self, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.create("Deployment", namespace, body)

    def delete_deployment(self, namespace: str, name: str, **kwargs: Any) -> Dict[str, Any]:
        return self.delete("Deployment", namespace, name, **kwargs)

    def read_service(self, namespace: str, name: str) -> Dict[str, Any]:
        return self.read("Service", namespace, name)

    def patch_service(self, namespace: str, name: str, patch: Any, **kwargs: Any) -> Dict[str, Any]:
        return self.patch("Service", namespace, name, patch, **kwargs)

    def create_service(self, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.create("Service", namespace, body)

    def delete_service(self, namespace: str, name: str, **kwargs: Any) -> Dict[str, Any]:
        return self.delete("Service", namespace, name, **kwargs)

    def read_config_map(self, namespace: str, name: str) -> Dict[str, Any]:
        return self.read("ConfigMap", namespace, name)

    def patch_config_map(self, namespace: str, name: str, patch: Any, **kwargs: Any) -> Dict[str, Any]:
        return self.patch("ConfigMap", namespace, name, patch, **kwargs)

    def create_config_map(self, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.create("ConfigMap", namespace, body)

    def delete_config_map(self, namespace: str, name: str, **kwargs: Any) -> Dict[str, Any]:
        return self.delete("ConfigMap", namespace, name, **kwargs)

    def read_lease(self, namespace: str, name: str) -> Dict[str, Any]:
        return self.read("Lease", namespace, name)

    def patch_lease(self, namespace: str, name: str, patch: Any, **kwargs: Any) -> Dict[str, Any]:
        return self.patch("Lease", namespace, name, patch, **kwargs)

    def create_lease(self, namespace: str, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.create("Lease", namespace, body)

    def delete_lease(self, namespace: str, name: str, **kwargs: Any) -> Dict[str, Any]:
        return self.delete("Lease", namespace, name, **kwargs)

    def list_pods(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        return self.list("Pod", namespace, selector)

    def list_replica_sets(self, namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
        return self.list("ReplicaSet", namespace, selector)

    def pod_log(self, namespace: str, pod: str, tail_lines: int = 50, container: Optional[str] = None) -> str:
        """The last lines a pod's container wrote (``pods/log``)."""
        # tailLines bounds the lines, limitBytes their length: a log line can be megabytes.
        query: Dict[str, Any] = {"tailLines": int(tail_lines), "limitBytes": 65536}
        if container:
            query["container"] = container
        path = "/api/v1/namespaces/%s/pods/%s/log" % (quote(namespace, safe=""), quote(pod, safe=""))
        response = self._send("GET", path, query=query, timeout=self.request_timeout)
        if response.status == 403:
            payload = response.json() if response.body else {}
            raise ForbiddenError("get", "pods/log", namespace, pod, (payload or {}).get("message") or "")
        raise_for_status(response, "get", "Pod", namespace, pod)
        return response.body.decode("utf-8", "replace")

    # -- proxies ---------------------------------------------------------------

    def _proxy_get(self, resource: str, namespace: str, target: str, path: str, timeout: float) -> ProxyResponse:
        prefix = "/api/v1/namespaces/%s/%s/%s/proxy" % (quote(namespace, safe=""), resource, quote(target, safe=":"))
        response = self._send("GET", prefix + _proxy_path(path), timeout=timeout)
        if response.status in (401, 403):
            # Only the API server's own refusal is an error; the app's 401/403 is an answer.
            try:
                payload = response.json()
            except ValueError:
                payload = None
            if _is_status(payload):
                kind = "Pod" if resource == "pods" else "Service"
                plural = "%s/proxy" % resource
                if response.status == 403:
                    raise ForbiddenError("get", plural, namespace, target, payload.get("message") or "")
                raise_for_status(response, "get", kind, namespace, target)
        return ProxyResponse(response.status, response.body, content_type=getattr(response, "content_type", ""))

    def pod_proxy_get(
        self, namespace: str, pod: str, port: Any, path: str, timeout: float, scheme: str = "http"
    ) -> ProxyResponse:
        """GET ``path`` on a pod through the API server (``pods/proxy``), with a request timeout."""
        target = "%s:%s" % (pod, port) if scheme == "http" else "%s:%s:%s" % (scheme, pod, port)
        return self._proxy_get("pods", namespace, target, path, timeout)

    def service_proxy_get(
        self, namespace: str, service: str, port: Any, path: str, timeout: float, scheme: str = "http"
    ) -> ProxyResponse:
        """GET ``path`` through a Service via the API server (``services/proxy``)."""
        target = "%s:%s" % (service, port) if scheme == "http" else "%s:%s:%s" % (scheme, service, port)
        return self._proxy_get("services", namespace, target, path, timeout)


def concurrently(call: Any, items: Sequence[Any], workers: int = 8) -> List[Any]:
    """``[call(item) for item in items]``, with up to ``workers`` API calls in flight (the transport's pool
    keeps 8 connections). Results keep the order of ``items``; the first exception is raised."""
    if len(items) < 2:
        return [call(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(call, items))


def format_selector(selector: Dict[str, str]) -> str:
    return ",".join("%s=%s" % (key, value) for key, value in sorted(selector.items()))
