# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""apply through its main(), with the API server replaced at the HTTP boundary by FakeApiServer."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.userservice.deploy.plugins.module_utils import waiter
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient
from ansible_collections.userservice.deploy.plugins.modules import apply as apply_module
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fake_apiserver import (
    APPLY_PATCH,
    SELF_SUBJECT_ACCESS_REVIEWS,
    Call,
    FakeApiServer,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock

NS = "user-service-dev"
APP = "user-service"
MANAGER = "userservice.deploy"
CM = "user-service-app-3f2a9c1b7d"
SECRET = "user-service-env-0c1d2e3f4a"
TOKEN = "s3cr3t-value"
TOKEN_B64 = base64.b64encode(TOKEN.encode()).decode()
IMAGE_V1 = "registry.example/user-service:1.0.0"
IMAGE_V2 = "registry.example/user-service:1.1.0"

NS_PATH = "/api/v1/namespaces/%s" % NS
CM_PATH = "/api/v1/namespaces/%s/configmaps/%s" % (NS, CM)
SECRET_PATH = "/api/v1/namespaces/%s/secrets/%s" % (NS, SECRET)
DEPLOY_PATH = "/apis/apps/v1/namespaces/%s/deployments/%s" % (NS, APP)
SVC_PATH = "/api/v1/namespaces/%s/services/%s" % (NS, APP)

CONFIG_LABELS = {
    "app.kubernetes.io/name": APP,
    "app.kubernetes.io/managed-by": MANAGER,
    "deploy.userservice.io/config": "app",
}


# ---------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------


def namespace_manifest() -> Dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"team": "users"}}}


def configmap(name: str = CM, data: Optional[Dict[str, str]] = None, entry: str = "app") -> Dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": dict(CONFIG_LABELS, **{"deploy.userservice.io/config": entry})},
        "data": data if data is not None else {"LOG_LEVEL": "info"},
        "immutable": True,
    }


def secret(name: str = SECRET, data: Optional[Dict[str, str]] = None, **extra: Any) -> Dict[str, Any]:
    labels = dict(CONFIG_LABELS, **{"deploy.userservice.io/config": "env"})
    manifest: Dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "type": "Opaque"}
    if data is not None or not extra:
        manifest["data"] = data if data is not None else {"token": TOKEN_B64}
    manifest.update(extra)
    return manifest


def deployment(image: str = IMAGE_V1, config: str = CM, replicas: int = 2) -> Dict[str, Any]:
    labels = {"app.kubernetes.io/name": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "app", "image": image, "envFrom": [{"secretRef": {"name": SECRET}}]}],
                    "volumes": [{"name": "config", "configMap": {"name": config}}],
                },
            },
        },
    }


def service() -> Dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP},
        "spec": {"selector": {"app.kubernetes.io/name": APP}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def secret_as_applied(manifest: Dict[str, Any]) -> Dict[str, Any]:
    """A ``secrets`` entry as the module sends it (the argument spec's defaults filled in)."""
    return dict({"apiVersion": "v1", "kind": "Secret"}, **manifest)


# ---------------------------------------------------------------------------
# Running the module
# ---------------------------------------------------------------------------


class Api:
    """The fake API server the module talks to, the fake clock, and what from_params was asked for."""

    def __init__(self, server: FakeApiServer, clock: FakeClock) -> None:
        self.server = server
        self.clock = clock
        self.dry_runs: List[bool] = []


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    holder = Api(FakeApiServer(), FakeClock())

    def from_params(cls: Any, params: Dict[str, Any], dry_run: bool = False) -> KubeClient:
        holder.dry_runs.append(dry_run)
        return KubeClient(holder.server, dry_run=dry_run, sleep=holder.clock.sleep, monotonic=holder.clock.monotonic)

    monkeypatch.setattr(KubeClient, "from_params", classmethod(from_params))
    # apply.work passes no clock to wait_for_rollout, so the poll loop builds waiter.SystemClock(): the fake
    # clock stands in for it and no test really sleeps.
    monkeypatch.setattr(waiter, "SystemClock", lambda: holder.clock)
    return holder


def run_raw(capsys: pytest.CaptureFixture[str], **args: Any) -> Tuple[Dict[str, Any], str]:
    # No schema cache unless a test asks for one: a run must not read or write the user's ~/.cache.
    params = dict({"namespace": NS, "schema_cache": ""}, **args)
    with patch_module_args(params), pytest.raises(SystemExit) as exit_info:
        apply_module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    result["rc"] = exit_info.value.code
    return result, out


def run(capsys: pytest.CaptureFixture[str], **args: Any) -> Dict[str, Any]:
    return run_raw(capsys, **args)[0]


def actions(result: Dict[str, Any]) -> List[Tuple[str, str, Optional[str], str]]:
    return [(o["kind"], o["name"], o["namespace"], o["action"]) for o in result["objects"]]


def with_namespace(api: Api) -> FakeApiServer:
    api.server.add_namespace(NS)
    return api.server


# ---------------------------------------------------------------------------
# 1. Create, then idempotency; the order objects are sent in
# ---------------------------------------------------------------------------


def test_first_run_creates_in_order_and_the_second_run_changes_nothing(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = api.server
    args = dict(objects=[configmap(), deployment(), namespace_manifest(), service()], secrets=[secret()])

    first = run(capsys, **args)

    assert first["rc"] == 0, first.get("msg")
    assert first["changed"] is True
    assert actions(first) == [
        ("Namespace", NS, None, "created"),
        ("Secret", SECRET, NS, "created"),
        ("ConfigMap", CM, NS, "created"),
        ("Deployment", APP, NS, "created"),
        ("Service", APP, NS, "created"),
    ]
    # Namespace first (the namespaced objects would get 404 before it), then secrets, then the rest in order.
    assert server.patch_paths() == [NS_PATH, SECRET_PATH, CM_PATH, DEPLOY_PATH, SVC_PATH]
    for call in server.requests("PATCH"):
        assert call.query == {"fieldManager": MANAGER, "force": "false"}
        assert call.content_type == APPLY_PATCH
    assert server.requests("PATCH", SECRET_PATH)[0].body == dict(
        secret_as_applied(secret()), metadata=dict(secret()["metadata"], namespace=NS)
    )
    assert server.stored(CM_PATH)["data"] == {"LOG_LEVEL": "info"}
    assert server.stored(DEPLOY_PATH)["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V1
    assert first["rollout"] is None and first["pruned"] == [] and first["access"] is None
    assert first["schema_checked"] == 0
    assert "diff" not in first
    assert api.dry_runs == [False]

    versions = server.resource_versions()
    server.calls.clear()
    second = run(capsys, **args)

    assert second["rc"] == 0
    assert second["changed"] is False
    assert [o["action"] for o in second["objects"]] == ["unchanged"] * 5
    # The applies are sent again, but nothing stored changes.
    assert server.patch_paths() == [NS_PATH, SECRET_PATH, CM_PATH, DEPLOY_PATH, SVC_PATH]
    assert server.resource_versions() == versions
    assert server.requests("DELETE") == []


def test_a_changed_manifest_is_updated_and_only_that_one(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    run(capsys, objects=[configmap(), deployment()])
    versions = server.resource_versions()

    result = run(capsys, objects=[configmap(), deployment(image=IMAGE_V2)])

    assert result["changed"] is True
    assert actions(result) == [("ConfigMap", CM, NS, "unchanged"), ("Deployment", APP, NS, "updated")]
    after = server.resource_versions()
    assert after[CM_PATH] == versions[CM_PATH]
    assert after[DEPLOY_PATH] != versions[DEPLOY_PATH]
    assert server.stored(DEPLOY_PATH)["metadata"]["generation"] == 2


def test_status_written_between_read_and_apply_is_not_a_change(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.seed(DEPLOY_PATH, deployment())

    def controller_writes_status(server: FakeApiServer, call: Call) -> None:
        # The Deployment controller updates status (and so resourceVersion and the revision annotation) while
        # the module works: the object the apply returns differs from the one read only in what the server owns.
        if call.method == "PATCH" and call.path == DEPLOY_PATH:
            obj = server.objects[DEPLOY_PATH]
            obj["status"] = complete_status(obj["metadata"]["generation"])
            obj["metadata"]["resourceVersion"] = server.bump()
            obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "3"

    server.hooks.append(controller_writes_status)

    result = run(capsys, objects=[deployment()], _ansible_diff=True)

    assert result["changed"] is False
    assert actions(result) == [("Deployment", APP, NS, "unchanged")]
    assert result["diff"] == []


def test_field_manager_is_sent(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    run(capsys, objects=[configmap()], field_manager="config-role")
    assert [c.query for c in server.requests("PATCH")] == [{"fieldManager": "config-role", "force": "false"}]


# ---------------------------------------------------------------------------
# 2. Check mode
# ---------------------------------------------------------------------------


def test_check_mode_dry_runs_every_apply_and_stores_nothing(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    before = copy.deepcopy(server.objects)

    result = run(capsys, objects=[configmap(), deployment()], secrets=[secret()], _ansible_check_mode=True)

    assert result["rc"] == 0, result.get("msg")
    assert result["changed"] is True
    assert actions(result) == [
        ("Secret", SECRET, NS, "created"),
        ("ConfigMap", CM, NS, "created"),
        ("Deployment", APP, NS, "created"),
    ]
    patches = server.requests("PATCH")
    assert [c.path for c in patches] == [SECRET_PATH, CM_PATH, DEPLOY_PATH]
    assert all(c.query == {"fieldManager": MANAGER, "force": "false", "dryRun": "All"} for c in patches)
    assert server.objects == before
    assert api.dry_runs == [True]


def test_check_mode_reports_what_a_real_run_would_do(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    run(capsys, objects=[configmap(), deployment()], secrets=[secret()])
    stored = copy.deepcopy(server.objects)

    result = run(
        capsys,
        objects=[configmap(), deployment(image=IMAGE_V2)],
        secrets=[secret()],
        _ansible_check_mode=True,
    )

    assert result["changed"] is True
    assert actions(result) == [
        ("Secret", SECRET, NS, "unchanged"),
        ("ConfigMap", CM, NS, "unchanged"),
        ("Deployment", APP, NS, "updated"),
    ]
    assert server.objects == stored
    assert server.stored(DEPLOY_PATH)["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V1

    server.calls.clear()
    same = run(capsys, objects=[configmap(), deployment()], secrets=[secret()], _ansible_check_mode=True)
    assert same["changed"] is False
    assert [o["action"] for o in same["objects"]] == ["unchanged"] * 3


def test_check_mode_in_a_new_namespace_plans_namespaced_objects_and_dry_runs_the_namespace(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = api.server  # the namespace does not exist

    result = run(
        capsys,
        objects=[namespace_manifest(), configmap(), deployment()],
        secrets=[secret()],
        rollout={"name": APP},
        prune={"app_name": APP},
        _ansible_check_mode=True,
    )

    assert result["rc"] == 0, result.get("msg")
    assert result["changed"] is True
    assert actions(result) == [
        ("Namespace", NS, None, "created"),
        ("Secret", SECRET, NS, "planned"),
        ("ConfigMap", CM, NS, "planned"),
        ("Deployment", APP, NS, "planned"),
    ]
    patches = server.requests("PATCH")
    assert [(c.path, c.query) for c in patches] == [
        (NS_PATH, {"fieldManager": MANAGER, "force": "false", "dryRun": "All"})
    ]
    # Planned objects are neither read nor sent; no rollout wait and no pruning without the namespace.
    touched = {c.path for c in server.calls}
    assert not touched & {CM_PATH, SECRET_PATH, DEPLOY_PATH}
    assert server.requests("DELETE") == []
    assert server.objects == {}
    assert result["rollout"] is None and result["pruned"] == []


def test_check_mode_without_namespace_object_sends_no_write(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = api.server

    result = run(capsys, objects=[configmap(), service()], secrets=[secret()], _ansible_check_mode=True)

    assert [o["action"] for o in result["objects"]] == ["planned"] * 3
    assert result["changed"] is True
    assert server.writes() == []
    assert [(c.method, c.path) for c in server.calls] == [("GET", NS_PATH)]


# ---------------------------------------------------------------------------
# 3. Diff
# ---------------------------------------------------------------------------


def test_diff_has_one_entry_per_changed_object_with_secret_values_hidden(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = with_namespace(api)
    run(capsys, objects=[configmap(), deployment()], secrets=[secret()])
    new_token = base64.b64encode(b"n3w-t0ken").decode()

    result = run(
        capsys,
        objects=[configmap(data={"LOG_LEVEL": "debug"}), deployment()],
        secrets=[secret(data={"token": new_token, "api-key": TOKEN_B64})],
        _ansible_diff=True,
    )

    assert result["rc"] == 0
    assert [(d["before_header"], d["after_header"]) for d in result["diff"]] == [
        ("Secret/%s (live)" % SECRET, "Secret/%s (applied)" % SECRET),
        ("ConfigMap/%s (live)" % CM, "ConfigMap/%s (applied)" % CM),
    ]
    secret_diff, cm_diff = result["diff"]
    assert secret_diff["before"]["data"] == {"token": "<hidden>"}
    assert secret_diff["after"]["data"] == {"token": "<hidden>", "api-key": "<hidden>"}
    assert secret_diff["after"]["metadata"]["name"] == SECRET
    assert cm_diff["before"]["data"] == {"LOG_LEVEL": "info"}
    assert cm_diff["after"]["data"] == {"LOG_LEVEL": "debug"}
    # Server bookkeeping is not part of the diff.
    for side in ("before", "after"):
        assert "resourceVersion" not in cm_diff[side]["metadata"]
        assert "managedFields" not in cm_diff[side]["metadata"]
    assert server.stored(SECRET_PATH)["data"]["token"] == new_token


def test_diff_of_a_first_run_has_empty_befores(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    with_namespace(api)
    result = run(capsys, objects=[configmap()], secrets=[secret()], _ansible_diff=True)
    assert [d["before"] for d in result["diff"]] == [{}, {}]
    assert result["diff"][0]["after"]["data"] == {"token": "<hidden>"}
    assert result["diff"][1]["after"]["data"] == {"LOG_LEVEL": "info"}


def test_no_diff_entries_when_nothing_changes(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    with_namespace(api)
    run(capsys, objects=[configmap(), deployment()], secrets=[secret()])
    result = run(capsys, objects=[configmap(), deployment()], secrets=[secret()], _ansible_diff=True)
    assert result["changed"] is False
    assert result["diff"] == []


# ---------------------------------------------------------------------------
# 4. Secret values never leave the module
# ---------------------------------------------------------------------------


def _assert_no_secret_values(out: str, *values: str) -> None:
    for value in values:
        assert value not in out
    # A masked value would mean one reached the output and only Ansible's no_log filter caught it.
    assert "********" not in out


def test_secret_values_never_reach_the_output(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    plain = "pl41n-passw0rd"
    plain_b64 = base64.b64encode(plain.encode()).decode()
    rotated = base64.b64encode(b"r0tated-value").decode()
    secrets = [secret(), secret(name="user-service-db-1a2b3c4d5e", data=None, stringData={"password": plain})]
    outputs = []

    normal, out = run_raw(capsys, objects=[configmap()], secrets=secrets)
    outputs.append(out)
    # The server turned stringData into base64 data: a value the module's no_log options never saw.
    assert server.stored("/api/v1/namespaces/%s/secrets/user-service-db-1a2b3c4d5e" % NS)["data"] == {
        "password": plain_b64
    }
    changed = [secret(data={"token": rotated}), secrets[1]]
    diffed, out = run_raw(capsys, objects=[configmap()], secrets=changed, _ansible_diff=True)
    outputs.append(out)
    checked, out = run_raw(
        capsys, objects=[configmap()], secrets=[secret()], _ansible_diff=True, _ansible_check_mode=True
    )
    outputs.append(out)

    for result, out in zip((normal, diffed, checked), outputs):
        assert result["rc"] == 0, result.get("msg")
        _assert_no_secret_values(out, TOKEN, TOKEN_B64, plain, plain_b64, rotated, "r0tated-value")
        # No over-masking: the Secrets' names, keys and namespace are there.
        assert ("Secret", SECRET, NS) in [(o["kind"], o["name"], o["namespace"]) for o in result["objects"]]
    assert [d["before_header"] for d in diffed["diff"]] == ["Secret/%s (live)" % SECRET]
    assert diffed["diff"][0]["after"]["data"] == {"token": "<hidden>"}
    assert [o["action"] for o in checked["objects"]] == ["updated", "unchanged"]
    assert checked["diff"][0]["before"]["data"] == {"token": "<hidden>"}


def test_secret_values_do_not_reach_the_output_of_a_planned_run(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    result, out = run_raw(capsys, secrets=[secret()], _ansible_diff=True, _ansible_check_mode=True)
    assert [o["action"] for o in result["objects"]] == ["planned"]
    assert result["diff"][0]["after"]["data"] == {"token": "<hidden>"}
    _assert_no_secret_values(out, TOKEN, TOKEN_B64)
    assert SECRET in out and NS in out


def test_secret_values_do_not_reach_a_schema_error(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    bad = secret()
    bad["metadata"]["lables"] = {"team": "users"}
    result, out = run_raw(capsys, secrets=[bad], kubernetes_version="1.34")
    assert result["failed"] is True
    assert (
        "Secret/%s: metadata: Additional properties are not allowed ('lables' was unexpected)" % SECRET in result["msg"]
    )
    _assert_no_secret_values(out, TOKEN, TOKEN_B64)


def test_secret_values_in_the_last_applied_annotation_do_not_reach_the_diff(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = with_namespace(api)
    old = base64.b64encode(b"0ld-t0ken-value").decode()
    live = secret_as_applied(secret(data={"token": old}))
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(live, sort_keys=True)
    }
    server.seed(SECRET_PATH, live, manager="kubectl-client-side-apply")

    result, out = run_raw(capsys, secrets=[secret()], _ansible_diff=True)

    assert [o["action"] for o in result["objects"]] == ["updated"]
    assert old not in out
    assert "0ld-t0ken-value" not in out


# ---------------------------------------------------------------------------
# 5. Schema check
# ---------------------------------------------------------------------------


def test_a_manifest_with_an_unknown_field_fails_before_any_request(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = with_namespace(api)
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"

    result = run(capsys, objects=[configmap(), bad], secrets=[secret()], kubernetes_version="1.34")

    assert result["rc"] == 1
    assert result["failed"] is True
    assert result["msg"].startswith("rendered manifests do not match the Kubernetes 1.34 schema")
    assert (
        "Deployment/%s: spec.template.spec.containers.0: Additional properties are not allowed "
        "('imagePullPolcy' was unexpected)" % APP
    ) in result["msg"]
    assert "ConfigMap/" not in result["msg"] and "Secret/" not in result["msg"]
    assert server.calls == []
    assert api.dry_runs == []
    assert result["changed"] is False and result["objects"] == []


def test_a_valid_set_passes_the_schema_check_and_is_applied(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    result = run(capsys, objects=[configmap(), deployment(), service()], secrets=[secret()], kubernetes_version="1.34")
    assert result["rc"] == 0, result.get("msg")
    assert result["schema_checked"] == 4
    assert len(server.requests("PATCH")) == 4


def test_schema_check_only_contacts_nobody(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(
        capsys,
        objects=[configmap(), deployment()],
        secrets=[secret()],
        kubernetes_version="1.34",
        schema_check_only=True,
        permissions=[{"group": "", "resource": "configmaps", "verbs": ["patch"]}],
        refuse_slots_of=APP,
        rollout={"name": APP},
        prune={"app_name": APP},
    )
    assert result["rc"] == 0, result.get("msg")
    assert result["changed"] is False
    assert result["schema_checked"] == 3
    assert result["objects"] == [] and result["access"] is None and result["rollout"] is None
    assert api.server.calls == []
    assert api.dry_runs == []


def test_the_schema_cache_records_passed_manifests_without_secret_values(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    args = dict(kubernetes_version="1.34", schema_check_only=True, schema_cache=str(tmp_path / "cache"))

    failed = run(capsys, objects=[configmap(), bad], secrets=[secret()], **args)
    assert failed["failed"] is True
    files = list((tmp_path / "cache").iterdir())
    assert [f.name.startswith("k8s-1.34_kubernetes-validate-") for f in files] == [True]
    assert len(json.loads(files[0].read_text())) == 2  # the ConfigMap and the Secret, not the failing Deployment

    passed = run(capsys, objects=[configmap(), deployment()], secrets=[secret(data={"token": "b3RoZXI="})], **args)
    assert passed["rc"] == 0 and passed["schema_checked"] == 3
    text = files[0].read_text()
    assert len(json.loads(text)) == 3  # the Secret with another value is the same manifest to the check
    for value in (TOKEN, TOKEN_B64, "b3RoZXI=", CM, SECRET):
        assert value not in text
    assert api.server.calls == []


def test_schema_check_only_requires_kubernetes_version(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, objects=[configmap()], schema_check_only=True)
    assert result["failed"] is True
    assert result["msg"] == "schema_check_only is True but all of the following are missing: kubernetes_version"
    assert api.server.calls == []
    assert api.dry_runs == []


def test_a_kind_without_a_schema_is_not_an_unexplained_failure(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    result = run(capsys, objects=[widget], kubernetes_version="1.34", schema_check_only=True)
    # Skipped with a warning naming it, as `kubernetes_validate --strict` did (a warning, exit 0).
    assert not result.get("failed"), result
    # Ansible 2.19 returns each warning as a WarningSummary with the text in event.msg.
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]
    assert any("Widget/w" in warning and "not checked offline" in warning for warning in warnings), result
    assert api.server.calls == []


# ---------------------------------------------------------------------------
# 6. Access review
# ---------------------------------------------------------------------------

PERMISSIONS = [
    {"group": "", "resource": "configmaps", "verbs": ["get", "patch"]},
    {"group": "", "resource": "secrets", "verbs": ["get", "patch", "delete"]},
    {"group": "apps", "resource": "deployments", "verbs": ["get", "patch"]},
]


def test_a_denied_permission_fails_naming_it_and_writes_nothing(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.denied = {("patch", "", "secrets"), ("patch", "apps", "deployments")}

    result = run(capsys, objects=[configmap(), deployment()], secrets=[secret()], permissions=PERMISSIONS)

    assert result["rc"] == 1
    assert result["failed"] is True
    assert result["msg"].startswith(
        'user "%s" may not, in namespace "%s": patch secrets, patch deployments.apps.' % (server.user, NS)
    )
    assert [(d["verb"], d["resource"]) for d in result["access"]["denied"]] == [
        ("patch", "secrets"),
        ("patch", "deployments"),
    ]
    assert result["access"]["checked"] == 7
    assert server.writes() == []
    assert server.requests("PATCH") == [] and server.requests("DELETE") == []
    assert result["objects"] == [] and result["changed"] is False


def test_all_permissions_granted_lets_the_apply_run(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    result = run(capsys, objects=[configmap()], permissions=PERMISSIONS, _ansible_check_mode=True)
    assert result["rc"] == 0
    assert result["access"]["denied"] == [] and result["access"]["checked"] == 7
    reviews = server.requests("POST", SELF_SUBJECT_ACCESS_REVIEWS)
    assert len(reviews) == 7
    # Reviews go first, never with dryRun; the apply after them is a dry run.
    assert all(c.query is None for c in reviews)
    assert server.calls.index(reviews[-1]) < server.calls.index(server.requests("PATCH")[0])


# ---------------------------------------------------------------------------
# 7. refuse_slots_of
# ---------------------------------------------------------------------------


def _slot(slot: str, app: str = APP) -> Dict[str, Any]:
    labels = {"app.kubernetes.io/name": app, "deploy.userservice.io/slot": slot}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "%s-%s" % (app, slot), "labels": labels},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}},
    }


def test_blue_green_slots_refuse_a_rolling_apply(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.seed("/apis/apps/v1/namespaces/%s/deployments/%s-blue" % (NS, APP), _slot("blue"))

    result = run(capsys, objects=[configmap(), deployment()], refuse_slots_of=APP)

    assert result["rc"] == 1
    assert result["failed"] is True
    assert "runs blue/green slots (%s-blue)" % APP in result["msg"]
    assert "workload_release_strategy" in result["msg"]
    assert server.writes() == []
    lists = server.requests("GET", "/apis/apps/v1/namespaces/%s/deployments" % NS)
    assert [c.query for c in lists] == [{"labelSelector": "app.kubernetes.io/name=%s,deploy.userservice.io/slot" % APP}]


def test_without_slots_of_the_app_a_rolling_apply_passes(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    # A rolling Deployment of the app (no slot label) and another app's slot do not count.
    server.seed(DEPLOY_PATH, deployment())
    server.seed("/apis/apps/v1/namespaces/%s/deployments/billing-green" % NS, _slot("green", app="billing"))

    result = run(capsys, objects=[configmap(), deployment()], refuse_slots_of=APP)

    assert result["rc"] == 0, result.get("msg")
    assert actions(result) == [("ConfigMap", CM, NS, "created"), ("Deployment", APP, NS, "unchanged")]


# ---------------------------------------------------------------------------
# 8. Prune
# ---------------------------------------------------------------------------

CM_LIVE = "user-service-app-aaaaaaaaaa"  # the Deployment's volume
CM_RS = "user-service-app-bbbbbbbbbb"  # an old ReplicaSet's projected volume
CM_THIS_RUN = "user-service-app-dddddddddd"
CM_KEEP = "user-service-app-eeeeeeeeee"
FLAGS_RS = "user-service-flags-cccccccccc"  # an old ReplicaSet's env valueFrom
SECRET_LIVE = "user-service-env-1111111111"  # the Deployment's envFrom
SECRET_RS = "user-service-env-2222222222"  # an old ReplicaSet's projected volume


def _labelled(kind: str, name: str, created: str, entry: str, **labels: str) -> Dict[str, Any]:
    metadata = {
        "name": name,
        "namespace": NS,
        "creationTimestamp": created,
        "labels": dict(CONFIG_LABELS, **{"deploy.userservice.io/config": entry}, **labels),
    }
    obj: Dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    obj["data"] = {"token": TOKEN_B64} if kind == "Secret" else {"LOG_LEVEL": "info"}
    return obj


def _day(day: int, hour: int = 10) -> str:
    return "2025-12-%02dT%02d:00:00Z" % (day, hour)


def seed_prune_scene(server: FakeApiServer) -> None:
    """Pod templates and hashed objects: referenced ones are the oldest, so only a reference keeps them."""
    server.add_namespace(NS)
    live = deployment(config=CM_LIVE)
    live["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": SECRET_LIVE}}]
    server.seed(DEPLOY_PATH, live)
    rs_labels = {"app.kubernetes.io/name": APP, "pod-template-hash": "5d9f7c"}
    server.put(
        "/apis/apps/v1/namespaces/%s/replicasets/%s-5d9f7c" % (NS, APP),
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "%s-5d9f7c" % APP, "namespace": NS, "labels": rs_labels},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "env": [
                                    {"name": "FLAG", "valueFrom": {"configMapKeyRef": {"name": FLAGS_RS, "key": "f"}}}
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "all",
                                "projected": {
                                    "sources": [{"configMap": {"name": CM_RS}}, {"secret": {"name": SECRET_RS}}]
                                },
                            }
                        ],
                    }
                }
            },
        },
    )
    configmaps = [
        (CM_LIVE, _day(1), "app"),
        (CM_RS, _day(2), "app"),
        (CM_KEEP, _day(3), "app"),
        ("user-service-app-0000000001", _day(10), "app"),
        ("user-service-app-0000000002", _day(11), "app"),
        ("user-service-app-0000000003", _day(12), "app"),
        ("user-service-app-legacy", _day(1), "app"),  # no hash: never pruned
        ("user-service-app-ABCDEF0123", _day(1), "app"),  # not a lowercase hex hash
        (FLAGS_RS, _day(1), "flags"),
        ("user-service-flags-ffffffffff", _day(2), "flags"),  # the newest unreferenced of its entry
    ]
    for name, created, entry in configmaps:
        server.put("/api/v1/namespaces/%s/configmaps/%s" % (NS, name), _labelled("ConfigMap", name, created, entry))
    # Labelled by another manager, or no config label: not the config role's objects.
    helm = _labelled("ConfigMap", "user-service-app-9999999999", _day(1), "app")
    helm["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"
    server.put("/api/v1/namespaces/%s/configmaps/user-service-app-9999999999" % NS, helm)
    other = _labelled("ConfigMap", "user-service-misc-8888888888", _day(1), "misc")
    del other["metadata"]["labels"]["deploy.userservice.io/config"]
    server.put("/api/v1/namespaces/%s/configmaps/user-service-misc-8888888888" % NS, other)
    # This run's ConfigMap exists already (an unchanged apply), with an old creation time.
    this_run = server.seed("/api/v1/namespaces/%s/configmaps/%s" % (NS, CM_THIS_RUN), configmap(name=CM_THIS_RUN))
    this_run["metadata"]["creationTimestamp"] = _day(1, 9)
    server.put("/api/v1/namespaces/%s/configmaps/%s" % (NS, CM_THIS_RUN), this_run)
    for name, created in (
        (SECRET_LIVE, _day(1)),
        (SECRET_RS, _day(2)),
        ("user-service-env-3333333333", _day(10)),
        ("user-service-env-4444444444", _day(11)),
    ):
        server.put("/api/v1/namespaces/%s/secrets/%s" % (NS, name), _labelled("Secret", name, created, "env"))


EXPECTED_PRUNED = [
    {"kind": "ConfigMap", "name": "user-service-app-0000000002", "created": _day(11)},
    {"kind": "ConfigMap", "name": "user-service-app-0000000001", "created": _day(10)},
    {"kind": "Secret", "name": "user-service-env-3333333333", "created": _day(10)},
]


def _path_of(item: Dict[str, str]) -> str:
    return "/api/v1/namespaces/%s/%s/%s" % (
        NS,
        "configmaps" if item["kind"] == "ConfigMap" else "secrets",
        item["name"],
    )


def test_prune_deletes_exactly_the_unreferenced_beyond_the_history_limit(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = api.server
    seed_prune_scene(server)
    paths_before = set(server.objects)

    result = run(
        capsys,
        objects=[configmap(name=CM_THIS_RUN)],
        prune={"app_name": APP, "history_limit": 1, "keep": [CM_KEEP]},
    )

    assert result["rc"] == 0, result.get("msg")
    assert actions(result) == [("ConfigMap", CM_THIS_RUN, NS, "unchanged")]
    assert result["pruned"] == EXPECTED_PRUNED
    assert result["changed"] is True
    deletes = server.requests("DELETE")
    assert [c.path for c in deletes] == [_path_of(item) for item in EXPECTED_PRUNED]
    assert all("dryRun" not in c.body for c in deletes)
    assert paths_before - set(server.objects) == {_path_of(item) for item in EXPECTED_PRUNED}
    # The lists the plan is made of.
    assert [c.query for c in server.requests("GET", "/apis/apps/v1/namespaces/%s/deployments" % NS)] == [
        {"labelSelector": "app.kubernetes.io/name=%s" % APP}
    ]
    assert [c.query for c in server.requests("GET", "/api/v1/namespaces/%s/configmaps" % NS)] == [
        {
            "labelSelector": "app.kubernetes.io/name=%s,app.kubernetes.io/managed-by=%s,deploy.userservice.io/config"
            % (APP, MANAGER)
        }
    ]


def test_prune_in_check_mode_sends_dry_run_deletes_and_deletes_nothing(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = api.server
    seed_prune_scene(server)
    stored = copy.deepcopy(server.objects)

    result = run(
        capsys,
        objects=[configmap(name=CM_THIS_RUN)],
        prune={"app_name": APP, "history_limit": 1, "keep": [CM_KEEP]},
        _ansible_check_mode=True,
    )

    assert result["rc"] == 0, result.get("msg")
    assert result["pruned"] == EXPECTED_PRUNED
    assert result["changed"] is True
    deletes = server.requests("DELETE")
    assert [c.path for c in deletes] == [_path_of(item) for item in EXPECTED_PRUNED]
    assert all(c.body["dryRun"] == ["All"] for c in deletes)
    assert server.objects == stored


def test_prune_with_nothing_to_delete_is_not_a_change(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = api.server
    seed_prune_scene(server)
    result = run(capsys, objects=[configmap(name=CM_THIS_RUN)], prune={"app_name": APP, "history_limit": 5})
    assert result["rc"] == 0
    assert result["pruned"] == []
    assert result["changed"] is False
    assert server.requests("DELETE") == []


def test_prune_history_limit_zero_keeps_referenced_and_kept_names_only(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = api.server
    seed_prune_scene(server)
    result = run(capsys, objects=[configmap(name=CM_THIS_RUN)], prune={"app_name": APP, "history_limit": 0})
    pruned = {item["name"] for item in result["pruned"]}
    assert pruned == {
        CM_KEEP,
        "user-service-app-0000000001",
        "user-service-app-0000000002",
        "user-service-app-0000000003",
        "user-service-flags-ffffffffff",
        "user-service-env-3333333333",
        "user-service-env-4444444444",
    }
    for never in (CM_LIVE, CM_RS, CM_THIS_RUN, FLAGS_RS, SECRET_LIVE, SECRET_RS, "user-service-app-legacy"):
        assert "/api/v1/namespaces/%s/%s/%s" % (NS, "secrets" if "-env-" in never else "configmaps", never) in (
            server.objects
        )


# ---------------------------------------------------------------------------
# 9. Rollout
# ---------------------------------------------------------------------------

PDE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "user-service-5d9f7c" has timed out progressing.',
}


def complete_status(generation: int) -> Dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def controller(clock: FakeClock, after: float) -> Callable[[FakeApiServer, Call], None]:
    """The Deployment controller: from ``after`` seconds on, each read finds the current generation rolled out."""

    def hook(server: FakeApiServer, call: Call) -> None:
        obj = server.objects.get(DEPLOY_PATH)
        if call.method == "GET" and call.path == DEPLOY_PATH and obj is not None and clock.elapsed >= after:
            server.set_status(DEPLOY_PATH, complete_status(obj["metadata"]["generation"]))

    return hook


def test_a_complete_rollout_returns_its_counts(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.hooks.append(controller(api.clock, after=0))

    result = run(capsys, objects=[configmap(), deployment()], rollout={"name": APP, "timeout": 60, "poll": 2})

    assert result["rc"] == 0, result.get("msg")
    assert result["rollout"] == {"name": APP, "replicas": 2, "available": 2, "updated": 2}
    assert api.clock.sleeps == []


def test_progress_deadline_of_the_current_generation_fails(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.seed(DEPLOY_PATH, deployment())
    server.set_status(DEPLOY_PATH, dict(complete_status(1), availableReplicas=0, conditions=[PDE]))

    result = run(capsys, objects=[deployment()], rollout={"name": APP, "timeout": 60, "poll": 2})

    assert result["rc"] == 1
    assert result["failed"] is True
    assert result["msg"].startswith("Deployment %s/%s: rollout exceeded its progress deadline" % (NS, APP))
    assert PDE["message"].rstrip(".") in result["msg"]
    assert result["error"]["type"] == "RolloutFailedError"
    assert result["error"]["data"] == {"condition": "ProgressDeadlineExceeded"}
    # The waiter's fix for the cause, then what a rolling update leaves serving.
    assert result["error"]["hint"] == (
        "Inspect the new pods (kubectl describe) and fix the image or configuration; the pods of the previous "
        "template keep serving as far as maxUnavailable allows (kubectl -n %s rollout undo deployment/%s returns "
        "to it)" % (NS, APP)
    )
    # What was applied before the wait is still reported.
    assert actions(result) == [("Deployment", APP, NS, "unchanged")]
    assert api.clock.sleeps == []


def test_a_stale_progress_deadline_of_an_older_generation_is_waited_out(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = with_namespace(api)
    server.seed(DEPLOY_PATH, deployment())
    server.set_status(DEPLOY_PATH, dict(complete_status(1), availableReplicas=0, conditions=[PDE]))
    server.hooks.append(controller(api.clock, after=4))

    result = run(capsys, objects=[deployment(image=IMAGE_V2)], rollout={"name": APP, "timeout": 60, "poll": 2})

    assert result["rc"] == 0, result.get("msg")
    assert actions(result) == [("Deployment", APP, NS, "updated")]
    assert server.stored(DEPLOY_PATH)["metadata"]["generation"] == 2
    assert result["rollout"] == {"name": APP, "replicas": 2, "available": 2, "updated": 2}
    # Read at 0 s and 2 s (not observed yet, the old condition ignored), complete at 4 s.
    assert api.clock.sleeps == [2, 2]
    assert len(server.requests("GET", DEPLOY_PATH)) == 1 + 3


def test_a_stale_progress_deadline_never_observed_times_out_instead(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = with_namespace(api)
    server.seed(DEPLOY_PATH, deployment())
    server.set_status(DEPLOY_PATH, dict(complete_status(1), availableReplicas=0, conditions=[PDE]))

    result = run(capsys, objects=[deployment(image=IMAGE_V2)], rollout={"name": APP, "timeout": 10, "poll": 2})

    assert result["rc"] == 1
    assert result["error"]["type"] == "WaitTimeoutError"
    assert result["msg"].startswith("Deployment %s/%s: timed out after 10s waiting for Deployment" % (NS, APP))
    assert "controller has observed generation 1 of 2" in result["msg"]
    assert "progress deadline" not in result["msg"] and "ProgressDeadlineExceeded" not in result["msg"]
    assert api.clock.elapsed == 10
    assert len(server.requests("GET", DEPLOY_PATH)) == 1 + 6


def test_check_mode_does_not_wait_for_the_rollout(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.seed(DEPLOY_PATH, deployment())

    result = run(
        capsys,
        objects=[deployment(image=IMAGE_V2)],
        rollout={"name": APP, "timeout": 10, "poll": 2},
        _ansible_check_mode=True,
    )

    assert result["rc"] == 0, result.get("msg")
    assert result["rollout"] is None
    assert actions(result) == [("Deployment", APP, NS, "updated")]
    # One read: the apply's own.
    assert len(server.requests("GET", DEPLOY_PATH)) == 1
    assert server.requests("GET", "/apis/apps/v1/namespaces/%s/replicasets" % NS) == []
    assert api.clock.sleeps == []


# ---------------------------------------------------------------------------
# 10. Conflicts
# ---------------------------------------------------------------------------

CONFLICT = 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.LOG_LEVEL'


def test_a_conflict_fails_naming_force_conflicts(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.conflicts[CM_PATH] = CONFLICT

    result = run(capsys, objects=[configmap(), deployment()])

    assert result["rc"] == 1
    assert result["msg"].startswith(
        "ConfigMap %s/%s: server-side apply of ConfigMap/%s met fields another manager owns" % (NS, CM, CM)
    )
    assert "force_conflicts" in result["msg"]
    assert result["error"]["seen"] == CONFLICT
    # The run stopped there: the Deployment was not sent.
    assert server.patch_paths() == [CM_PATH]
    assert CM_PATH not in server.objects


def test_force_conflicts_sends_force_true(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.conflicts[CM_PATH] = CONFLICT

    result = run(capsys, objects=[configmap(), deployment()], force_conflicts=True)

    assert result["rc"] == 0, result.get("msg")
    assert [o["action"] for o in result["objects"]] == ["created", "created"]
    assert [c.query["force"] for c in server.requests("PATCH")] == ["true", "true"]


def test_a_failure_half_way_reports_what_was_already_applied(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.conflicts[DEPLOY_PATH] = CONFLICT

    result = run(capsys, objects=[configmap(), deployment()])

    assert result["failed"] is True
    assert CM_PATH in server.objects  # the ConfigMap was created before the Deployment's conflict
    assert result["changed"] is True
    assert actions(result)[:1] == [("ConfigMap", CM, NS, "created")]


# ---------------------------------------------------------------------------
# 11. Bad input
# ---------------------------------------------------------------------------


def test_an_object_without_a_name_fails_before_any_request(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    nameless = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"labels": {"a": "b"}}, "data": {}}

    result = run(capsys, objects=[configmap(), nameless])

    assert result["rc"] == 1
    assert result["msg"] == (
        "objects[1] is not a manifest this module can apply; expected a dict with metadata.name; "
        "saw kind 'ConfigMap', name None."
    )
    assert api.server.calls == []
    assert api.dry_runs == []


def test_an_object_without_kind_fails(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, objects=[{"apiVersion": "v1", "metadata": {"name": "x"}}])
    assert result["msg"].startswith(
        "objects[0] is not a manifest this module can apply; expected a dict with apiVersion and kind"
    )
    assert api.server.calls == []


def test_a_secret_entry_of_another_kind_fails(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, secrets=[secret(), dict(secret(), kind="ConfigMap")])
    assert result["msg"].startswith(
        "secrets[1] is not a manifest this module can apply; expected a dict with kind Secret"
    )
    assert api.server.calls == []


def test_a_bad_namespace_fails_naming_the_option(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, namespace="Bad_NS", objects=[configmap()])
    assert result["rc"] == 1
    assert result["msg"].startswith("invalid value for option namespace; expected a namespace name")
    assert "'Bad_NS'" in result["msg"]
    assert api.server.calls == []
    assert api.dry_runs == []


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("rollout", {"name": APP, "poll": 0}, "rollout.poll is out of range; expected an integer >= 1; saw 0."),
        ("rollout", {"name": APP, "timeout": 0}, "rollout.timeout is out of range; expected an integer >= 1; saw 0."),
        (
            "prune",
            {"app_name": APP, "history_limit": -1},
            "prune.history_limit is out of range; expected an integer >= 0; saw -1.",
        ),
    ],
)
def test_out_of_range_numbers_fail_before_any_request(
    api: Api, capsys: pytest.CaptureFixture[str], option: str, value: Dict[str, Any], message: str
) -> None:
    result = run(capsys, objects=[configmap()], **{option: value})
    assert result["msg"] == message
    assert api.server.calls == []


# ---------------------------------------------------------------------------
# 13. Kinds found by discovery
# ---------------------------------------------------------------------------

WIDGET_RESOURCES = [
    {"name": "widgets", "singularName": "widget", "namespaced": True, "kind": "Widget", "verbs": ["get", "patch"]},
    {"name": "widgets/status", "singularName": "", "namespaced": True, "kind": "Widget", "verbs": ["get", "patch"]},
    {"name": "gadgets", "singularName": "gadget", "namespaced": False, "kind": "Gadget", "verbs": ["get", "patch"]},
]


def widget(name: str, api_version: str = "example.com/v1", kind: str = "Widget") -> Dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": {"size": 3}}


def test_an_unknown_kind_is_found_by_discovery_once(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.discovery["example.com/v1"] = WIDGET_RESOURCES

    result = run(capsys, objects=[widget("a"), configmap(), widget("b"), widget("g", kind="Gadget")])

    assert result["rc"] == 0, result.get("msg")
    assert actions(result) == [
        ("Widget", "a", NS, "created"),
        ("ConfigMap", CM, NS, "created"),
        ("Widget", "b", NS, "created"),
        ("Gadget", "g", None, "created"),
    ]
    # One discovery read for the apiVersion: the second Widget and the Gadget come from the cache.
    assert len(server.requests("GET", "/apis/example.com/v1")) == 1
    assert server.patch_paths() == [
        "/apis/example.com/v1/namespaces/%s/widgets/a" % NS,
        CM_PATH,
        "/apis/example.com/v1/namespaces/%s/widgets/b" % NS,
        "/apis/example.com/v1/gadgets/g",
    ]


def test_two_objects_of_one_unknown_kind_make_one_discovery_read(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.discovery["example.com/v1"] = WIDGET_RESOURCES

    result = run(capsys, objects=[widget("a"), widget("b")], _ansible_check_mode=True)

    assert [o["action"] for o in result["objects"]] == ["created", "created"]
    widgets = ["/apis/example.com/v1/namespaces/%s/widgets/%s" % (NS, name) for name in ("a", "b")]
    reads = [c.path for c in server.requests("GET") if "example.com" in c.path]
    # Discovery first and once; then each Widget's read (those go out side by side, in any order).
    assert reads[0] == "/apis/example.com/v1" and reads.count("/apis/example.com/v1") == 1
    assert sorted(reads[1:]) == widgets
    assert server.patch_paths() == widgets


def test_an_api_version_the_server_does_not_serve_fails_before_any_write(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    server = with_namespace(api)
    server.discovery["example.com/v1"] = WIDGET_RESOURCES

    result = run(capsys, objects=[configmap(), widget("a", api_version="example.com/v2")])

    assert result["rc"] == 1
    assert result["msg"].startswith("Widget: the API server does not serve example.com/v2")
    assert "is its CRD installed?" in result["msg"]
    assert "404 for /apis/example.com/v2" in result["msg"]
    assert server.writes() == []


def test_a_kind_the_group_version_does_not_list_fails_naming_it(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    server = with_namespace(api)
    server.discovery["example.com/v1"] = WIDGET_RESOURCES

    result = run(capsys, objects=[widget("s", kind="Sprocket")])

    assert result["rc"] == 1
    assert result["msg"].startswith("Sprocket: the API server serves no kind Sprocket in example.com/v1")
    assert "Gadget" in result["msg"] and "Widget" in result["msg"]
    assert server.writes() == []
