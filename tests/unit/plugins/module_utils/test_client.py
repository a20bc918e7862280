# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils import client as client_mod
from ansible_collections.userservice.deploy.plugins.module_utils.client import (
    AUTH_ARG_SPEC,
    KubeClient,
    Response,
    build_configuration,
    library_transport,
    missing_libraries,
    require_libraries,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiError,
    ApiUnreachableError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ReleaseError,
)


class FakeTransport:
    """The HTTP boundary of KubeClient: records requests, replays answers."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.requests: List[Dict[str, Any]] = []

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
        timeout: float = 30,
    ) -> Response:
        self.requests.append(
            dict(method=method, path=path, query=query, body=body, content_type=content_type, timeout=timeout)
        )
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def ok(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode())


def status(code: int, reason: str, message: str) -> Response:
    return Response(
        code,
        json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": reason,
                "message": message,
                "code": code,
            }
        ).encode(),
    )


NS = "user-service-dev"


class TestRequests:
    def test_read_path(self) -> None:
        transport = FakeTransport(ok({"metadata": {"name": "user-service-green"}}))
        KubeClient(transport).read_deployment(NS, "user-service-green")
        assert (
            transport.requests[0]["path"] == "/apis/apps/v1/namespaces/user-service-dev/deployments/user-service-green"
        )
        assert transport.requests[0]["method"] == "GET"

    def test_lease_and_config_map_paths(self) -> None:
        transport = FakeTransport(ok({"metadata": {}}))
        kube = KubeClient(transport)
        kube.read_lease(NS, "user-service-release")
        kube.create_config_map(NS, {"metadata": {"name": "x"}})
        assert (
            transport.requests[0]["path"]
            == "/apis/coordination.k8s.io/v1/namespaces/user-service-dev/leases/user-service-release"
        )
        assert transport.requests[1]["path"] == "/api/v1/namespaces/user-service-dev/configmaps"
        assert transport.requests[1]["method"] == "POST"

    def test_patch_with_resource_version_and_content_type(self) -> None:
        transport = FakeTransport(ok({"metadata": {"resourceVersion": "8"}}))
        KubeClient(transport).patch_service(
            NS, "user-service", {"spec": {"selector": {"slot": "green"}}}, resource_version="7"
        )
        request = transport.requests[0]
        assert request["content_type"] == "application/merge-patch+json"
        assert request["body"]["metadata"]["resourceVersion"] == "7"
        assert request["body"]["spec"]["selector"] == {"slot": "green"}
        assert request["query"] == {"fieldManager": "userservice.deploy"}

    def test_json_patch_guard_is_a_test_op(self) -> None:
        transport = FakeTransport(ok({}))
        KubeClient(transport).patch(
            "Deployment",
            NS,
            "d",
            [{"op": "replace", "path": "/spec/replicas", "value": 0}],
            patch_type="json",
            resource_version="5",
        )
        body = transport.requests[0]["body"]
        assert body[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "5"}
        assert transport.requests[0]["content_type"] == "application/json-patch+json"

    def test_dry_run_on_every_write_not_on_reads(self) -> None:
        transport = FakeTransport(ok({"metadata": {"name": "x"}, "items": []}))
        kube = KubeClient(transport, dry_run=True)
        kube.read_service(NS, "s")
        kube.list_pods(NS, {"b": "2", "a": "1"})
        kube.create_lease(NS, {"metadata": {"name": "l"}})
        kube.patch_deployment(NS, "d", {"spec": {"replicas": 0}})
        kube.delete_config_map(NS, "c")
        reads, lists, create, patch, delete = transport.requests
        assert reads["query"] is None
        assert lists["query"] == {"labelSelector": "a=1,b=2"}
        assert create["query"]["dryRun"] == "All" and patch["query"]["dryRun"] == "All"
        assert delete["body"]["dryRun"] == ["All"]

    def test_delete_precondition(self) -> None:
        transport = FakeTransport(ok({}))
        KubeClient(transport).delete_deployment(NS, "d", resource_version="3")
        assert transport.requests[0]["body"]["preconditions"] == {"resourceVersion": "3"}

    def test_request_timeout_passed(self) -> None:
        transport = FakeTransport(ok({}))
        KubeClient(transport, request_timeout=4.5).read_config_map(NS, "c")
        assert transport.requests[0]["timeout"] == 4.5


class TestErrors:
    def test_not_found(self) -> None:
        kube = KubeClient(FakeTransport(status(404, "NotFound", 'deployments.apps "x" not found')))
        with pytest.raises(NotFoundError) as info:
            kube.read_deployment(NS, "x")
        assert str(info.value).startswith("Deployment user-service-dev/x: not found")
        assert kube.read_optional("Deployment", NS, "x") is None

    def test_conflict(self) -> None:
        kube = KubeClient(FakeTransport(status(409, "Conflict", "the object has been modified")))
        with pytest.raises(ConflictError) as info:
            kube.patch_lease(NS, "user-service-release", {"spec": {}}, resource_version="1")
        assert "the object has been modified" in str(info.value)
        assert info.value.status == 409

    def test_forbidden_names_verb_resource_namespace(self) -> None:
        message = 'leases.coordination.k8s.io is forbidden: User "ci" cannot create resource "leases"'
        kube = KubeClient(FakeTransport(status(403, "Forbidden", message)))
        with pytest.raises(ForbiddenError) as info:
            kube.create_lease(NS, {"metadata": {"name": "user-service-release"}})
        text = str(info.value)
        assert "forbidden to create leases in namespace user-service-dev" in text
        assert "Grant" in text and info.value.verb == "create"

    def test_unauthorized(self) -> None:
        kube = KubeClient(FakeTransport(status(401, "Unauthorized", "Unauthorized")))
        with pytest.raises(ApiError) as info:
            kube.read_service(NS, "s")
        assert "rejected the credentials" in str(info.value) and "K8S_AUTH_" in str(info.value)

    def test_invalid(self) -> None:
        kube = KubeClient(FakeTransport(status(422, "Invalid", "spec.replicas: Invalid value: -1")))
        with pytest.raises(ApiError) as info:
            kube.patch_deployment(NS, "d", {"spec": {"replicas": -1}})
        assert "Invalid value: -1" in str(info.value) and info.value.status == 422

    def test_from_api_exception(self) -> None:
        class FakeApiException(Exception):
            status = 404
            reason = "Not Found"
            body = json.dumps({"kind": "Status", "status": "Failure", "message": "gone"})

        with pytest.raises(NotFoundError):
            client_mod.from_api_exception(FakeApiException(), "get", "Service", NS, "s")


class TestProxy:
    def test_pod_proxy_path_and_app_errors_are_answers(self) -> None:
        transport = FakeTransport(Response(503, b'{"status":"starting"}'))
        answer = KubeClient(transport).pod_proxy_get(NS, "pod-1", 3000, "/api/health/status", timeout=2)
        assert answer.status == 503 and answer.json() == {"status": "starting"}
        assert (
            transport.requests[0]["path"]
            == "/api/v1/namespaces/user-service-dev/pods/pod-1:3000/proxy/api/health/status"
        )
        assert transport.requests[0]["timeout"] == 2

    def test_service_proxy_with_scheme_and_query(self) -> None:
        transport = FakeTransport(Response(200, b"ok"))
        KubeClient(transport).service_proxy_get(NS, "user-service", "https", "/api/users?limit=1", 3, "https")
        assert (
            transport.requests[0]["path"]
            == "/api/v1/namespaces/user-service-dev/services/https:user-service:https/proxy/api/users?limit=1"
        )

    def test_api_server_refusal_of_proxy_is_forbidden(self) -> None:
        kube = KubeClient(FakeTransport(status(403, "Forbidden", 'cannot get resource "pods/proxy"')))
        with pytest.raises(ForbiddenError) as info:
            kube.pod_proxy_get(NS, "pod-1", 3000, "/", timeout=2)
        assert "forbidden to get pods/proxy" in str(info.value)

    def test_app_403_is_an_answer(self) -> None:
        kube = KubeClient(FakeTransport(Response(403, b"<html>no</html>")))
        assert kube.pod_proxy_get(NS, "pod-1", 3000, "/", timeout=2).status == 403


KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "from-kubeconfig"}}],
    "contexts": [
        {"name": "ctx", "context": {"cluster": "c", "user": "u"}},
        {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "x"}},
    ],
    "current-context": "ctx",
}


class TestConfiguration:
    def test_kubeconfig_dict_with_overrides(self) -> None:
        config = build_configuration(
            {
                "kubeconfig": KUBECONFIG,
                "context": "other",
                "api_key": "override",
                "validate_certs": False,
                "proxy": "http://proxy:3128",
            }
        )
        assert config.host == "https://10.0.0.1:6443"
        assert config.api_key["authorization"] == "Bearer override"
        assert config.verify_ssl is False
        assert config.proxy == "http://proxy:3128"

    def test_host_and_token_need_no_kubeconfig(self, monkeypatch: Any) -> None:
        monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
        config = build_configuration({"host": "https://127.0.0.1:6443/", "api_key": "t"})
        assert config.host == "https://127.0.0.1:6443"

    def test_transport_headers_include_token_and_impersonation(self) -> None:
        api_client = client_mod.build_api_client({"kubeconfig": KUBECONFIG})
        transport = library_transport(api_client, {"impersonate_user": "deployer", "impersonate_groups": ["a", "b"]})
        headers = transport._headers("application/json")
        assert headers["authorization"] == "Bearer from-kubeconfig"
        assert headers["Impersonate-User"] == "deployer"
        assert headers.getlist("Impersonate-Group") == ["a", "b"]

    def test_unreadable_kubeconfig_is_a_release_error(self) -> None:
        with pytest.raises(ReleaseError) as info:
            KubeClient.from_params({"kubeconfig": "/nonexistent/kubeconfig"})
        assert "K8S_AUTH_KUBECONFIG" in str(info.value)
        assert "/nonexistent/kubeconfig" in str(info.value)

    def test_unreachable_api_server(self) -> None:
        api_client = client_mod.build_api_client({"host": "http://127.0.0.1:9", "api_key": "t"})
        with pytest.raises(ApiUnreachableError) as info:
            library_transport(api_client).request("GET", "/readyz", timeout=2)
        assert "127.0.0.1:9" in str(info.value)

    def test_env_fallbacks_follow_kubernetes_core_names(self) -> None:
        names = {key: spec["fallback"][1] for key, spec in AUTH_ARG_SPEC.items() if "fallback" in spec}
        assert names["kubeconfig"] == ["K8S_AUTH_KUBECONFIG"]
        assert "K8S_AUTH_VERIFY_SSL" in names["validate_certs"]
        assert "K8S_AUTH_SSL_CA_CERT" in names["ca_cert"]
        assert all(AUTH_ARG_SPEC[k].get("no_log") for k in ("api_key", "password"))

    def test_missing_library_reported_through_module(self, monkeypatch: Any) -> None:
        monkeypatch.setattr(client_mod, "HAS_KUBERNETES", False)
        assert missing_libraries()[0][0] == "kubernetes"
        failures: List[Dict[str, Any]] = []

        class Module:
            def fail_json(self, **kwargs: Any) -> None:
                failures.append(kwargs)

        require_libraries(Module())
        assert "kubernetes" in failures[0]["msg"] and "not installed" in failures[0]["exception"]


class RaisingTransport(FakeTransport):
    """Answers from a script in which an exception stands for a request that got no answer."""

    def request(self, method: str, path: str, **kwargs: Any) -> Response:  # type: ignore[override]
        self.requests.append(dict(method=method, path=path))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class TestTransientRetries:
    def client(self, *answers: Any) -> Any:
        slept: List[float] = []
        transport = RaisingTransport(*answers)
        return KubeClient(transport, sleep=slept.append, monotonic=lambda: sum(slept)), transport, slept

    def test_a_read_survives_a_reset_a_429_and_a_503(self) -> None:
        unreachable = ApiUnreachableError("no answer from the Kubernetes API server", seen="reset")
        kube, transport, slept = self.client(
            unreachable,
            status(429, "TooManyRequests", "slow down"),
            status(503, "ServiceUnavailable", "x"),
            ok({"a": 1}),
        )
        assert kube.read("Service", "ns", "svc") == {"a": 1}
        assert len(transport.requests) == 4 and slept == [0.5, 1.0, 2.0] and kube.retries == 3

    def test_reads_give_up_at_the_deadline(self) -> None:
        kube, transport, slept = self.client(status(503, "ServiceUnavailable", "down"))
        with pytest.raises(ApiError) as info:
            kube.read("Service", "ns", "svc")
        assert info.value.status == 503 and sum(slept) <= client_mod.RETRY_DEADLINE

    def test_writes_and_definite_answers_are_not_repeated(self) -> None:
        kube, transport, _slept = self.client(status(503, "ServiceUnavailable", "down"))
        with pytest.raises(ApiError):
            kube.patch("Service", "ns", "svc", {"spec": {}})
        assert len(transport.requests) == 1
        kube, transport, _slept = self.client(status(404, "NotFound", "gone"))
        with pytest.raises(NotFoundError):
            kube.read("Service", "ns", "svc")
        assert len(transport.requests) == 1

    def test_the_server_clock_comes_from_the_date_header(self) -> None:
        answer = Response(200, b"{}", "application/json", "Wed, 02 Dec 2026 00:00:00 GMT")
        kube, _transport, _slept = self.client(answer)
        kube.read("Lease", "ns", "l")
        assert kube.server_now().isoformat() == "2026-12-02T00:00:00+00:00"
