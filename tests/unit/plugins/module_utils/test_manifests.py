# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""manifests: what counts as a change, Secret redaction, where a manifest lives and how it is applied."""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, Tuple

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils import manifests
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ReleaseError
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fake_apiserver import FakeApiServer

NS = "user-service-dev"
MANAGER = "userservice.deploy"


def live_deployment() -> Dict[str, Any]:
    """A Deployment as the API server returns it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "user-service",
            "namespace": NS,
            "uid": "3d1c5a8e",
            "resourceVersion": "48211",
            "generation": 7,
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "selfLink": "/apis/apps/v1/namespaces/%s/deployments/user-service" % NS,
            "managedFields": [{"manager": MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
            "labels": {"app.kubernetes.io/name": "user-service"},
            "annotations": {"deployment.kubernetes.io/revision": "7", "team": "users"},
        },
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 7, "replicas": 2, "availableReplicas": 2},
    }


def secret(**fields: Any) -> Dict[str, Any]:
    return dict({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "user-service-env-0c1d2e3f4a"}}, **fields)


# ---------------------------------------------------------------------------
# comparable
# ---------------------------------------------------------------------------


def test_comparable_keeps_only_what_a_manifest_can_change() -> None:
    assert manifests.comparable(live_deployment()) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "user-service",
            "namespace": NS,
            "labels": {"app.kubernetes.io/name": "user-service"},
            "annotations": {"team": "users"},
        },
        "spec": {"replicas": 2},
    }


def test_comparable_ignores_bookkeeping_status_and_the_revision_annotation() -> None:
    before = live_deployment()
    after = copy.deepcopy(before)
    after["metadata"].update(resourceVersion="48299", generation=8, managedFields=[], uid="other")
    after["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "8"
    after["status"] = {"observedGeneration": 8, "replicas": 3}
    assert manifests.comparable(before) == manifests.comparable(after)


@pytest.mark.parametrize(
    "change",
    [
        lambda obj: obj["spec"].update(replicas=3),
        lambda obj: obj["metadata"]["labels"].update(tier="web"),
        lambda obj: obj["metadata"]["annotations"].update(team="billing"),
        lambda obj: obj.update(data={"k": "v"}),
    ],
)
def test_comparable_sees_a_change_of_content(change: Any) -> None:
    before = live_deployment()
    after = copy.deepcopy(before)
    change(after)
    assert manifests.comparable(before) != manifests.comparable(after)


def test_comparable_drops_annotations_holding_only_the_revision() -> None:
    obj = live_deployment()
    obj["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "7"}
    without = live_deployment()
    del without["metadata"]["annotations"]
    assert "annotations" not in manifests.comparable(obj)["metadata"]
    assert manifests.comparable(obj) == manifests.comparable(without)


def test_comparable_of_none_is_none_and_the_input_is_not_changed() -> None:
    assert manifests.comparable(None) is None
    obj = live_deployment()
    manifests.comparable(obj)
    assert obj == live_deployment()


# ---------------------------------------------------------------------------
# redacted
# ---------------------------------------------------------------------------


def test_redacted_hides_every_secret_value_and_keeps_the_keys() -> None:
    obj = secret(
        data={"token": "czNjcjN0LXZhbHVl", "ca.crt": "LS0t"}, stringData={"password": "hunter2"}, type="Opaque"
    )
    out = manifests.redacted(obj)
    assert out == secret(
        data={"token": "<hidden>", "ca.crt": "<hidden>"}, stringData={"password": "<hidden>"}, type="Opaque"
    )
    # The input is untouched.
    assert obj["data"]["token"] == "czNjcjN0LXZhbHVl" and obj["stringData"]["password"] == "hunter2"


def test_redacted_leaves_a_secret_without_values_as_it_is() -> None:
    assert manifests.redacted(secret(type="Opaque")) == secret(type="Opaque")


@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment", "secret"])
def test_redacted_leaves_other_kinds_alone(kind: str) -> None:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, "data": {"token": "plain"}}
    assert manifests.redacted(obj) is obj
    assert obj["data"] == {"token": "plain"}


def test_redacted_of_none_is_none() -> None:
    assert manifests.redacted(None) is None


def test_redacted_hides_the_values_in_kubectls_last_applied_annotation() -> None:
    applied = secret(data={"token": "czNjcjN0LXZhbHVl"}, stringData={"password": "hunter2"})
    obj = copy.deepcopy(applied)
    obj["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}
    text = json.dumps(manifests.redacted(obj))
    assert "czNjcjN0LXZhbHVl" not in text
    assert "hunter2" not in text


def test_a_diff_of_a_secret_shows_keys_not_values() -> None:
    target = manifests.Target("Secret", "s", NS, "/api/v1/namespaces/%s/secrets/s" % NS)
    before = secret(data={"token": "b2xk"})
    before["metadata"]["resourceVersion"] = "1"
    after = secret(data={"token": "bmV3", "extra": "eHl6"})
    diff = manifests.Applied(target, "updated", before, after).diff()
    assert diff == {
        "before_header": "Secret/s (live)",
        "after_header": "Secret/s (applied)",
        "before": secret(data={"token": "<hidden>"}),
        "after": secret(data={"token": "<hidden>", "extra": "<hidden>"}),
    }


def test_a_created_object_diffs_from_nothing() -> None:
    target = manifests.Target("ConfigMap", "c", NS, "/api/v1/namespaces/%s/configmaps/c" % NS)
    after = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}, "data": {"a": "1"}}
    applied = manifests.Applied(target, "created", None, after)
    assert applied.changed is True
    assert applied.diff()["before"] == {}
    assert applied.diff()["after"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1"},
    }
    assert applied.report() == {"kind": "ConfigMap", "name": "c", "namespace": NS, "action": "created"}
    assert manifests.Applied(target, "unchanged", after, after).changed is False


# ---------------------------------------------------------------------------
# Where a manifest lives
# ---------------------------------------------------------------------------


def _target(server: FakeApiServer, manifest: Dict[str, Any]) -> manifests.Target:
    cache: Dict[Tuple[str, str], Tuple[str, bool]] = {}
    return manifests.target_of(KubeClient(server), manifest, NS, cache)


@pytest.mark.parametrize(
    "manifest, expected",
    [
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            ("ConfigMap", "c", NS, "/api/v1/namespaces/%s/configmaps/c" % NS),
        ),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "other"}},
            ("Deployment", "d", "other", "/apis/apps/v1/namespaces/other/deployments/d"),
        ),
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            ("Namespace", NS, None, "/api/v1/namespaces/%s" % NS),
        ),
        (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "system:deployer"},
            },
            (
                "ClusterRole",
                "system:deployer",
                None,
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Adeployer",
            ),
        ),
        (
            {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}},
            ("HorizontalPodAutoscaler", "h", NS, "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/h" % NS),
        ),
    ],
)
def test_known_kinds_need_no_discovery(manifest: Dict[str, Any], expected: Tuple[str, str, Any, str]) -> None:
    server = FakeApiServer()
    assert tuple(_target(server, manifest)) == expected
    assert server.calls == []


def test_unknown_kinds_are_discovered_once_per_api_version() -> None:
    server = FakeApiServer()
    server.discovery["v1"] = [
        {"name": "persistentvolumeclaims", "namespaced": True, "kind": "PersistentVolumeClaim"},
        {"name": "persistentvolumeclaims/status", "namespaced": True, "kind": "PersistentVolumeClaim"},
        {"name": "persistentvolumes", "namespaced": False, "kind": "PersistentVolume"},
    ]
    client = KubeClient(server)
    cache: Dict[str, Dict[str, Tuple[str, bool]]] = {}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}}
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"}}

    first = manifests.target_of(client, claim, NS, cache)
    again = manifests.target_of(client, dict(claim, metadata={"name": "logs"}), NS, cache)
    cluster = manifests.target_of(client, volume, NS, cache)

    assert first.path == "/api/v1/namespaces/%s/persistentvolumeclaims/data" % NS
    assert again.path == "/api/v1/namespaces/%s/persistentvolumeclaims/logs" % NS
    assert (cluster.namespace, cluster.path) == (None, "/api/v1/persistentvolumes/pv-1")
    # One discovery read for the apiVersion serves both kinds.
    assert [c.path for c in server.calls] == ["/api/v1"]
    assert cache["v1"]["PersistentVolumeClaim"] == ("persistentvolumeclaims", True)
    assert cache["v1"]["PersistentVolume"] == ("persistentvolumes", False)


def test_an_unserved_api_version_is_a_clear_error() -> None:
    server = FakeApiServer()
    with pytest.raises(ReleaseError) as info:
        _target(server, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert str(info.value) == (
        "Widget: the API server does not serve example.com/v1; expected an apiVersion the cluster serves "
        "(is its CRD installed?); saw 404 for /apis/example.com/v1."
    )


# ---------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------


def configmap(name: str = "c", value: str = "1", namespace: str = "") -> Dict[str, Any]:
    metadata: Dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": value}}


def test_apply_all_reports_created_unchanged_and_updated() -> None:
    server = FakeApiServer()
    server.add_namespace(NS)
    client = KubeClient(server)

    created = manifests.apply_all(client, NS, [configmap("a"), configmap("b")], MANAGER, False)
    again = manifests.apply_all(client, NS, [configmap("a"), configmap("b", value="2")], MANAGER, False)

    assert [item.action for item in created] == ["created", "created"]
    assert [item.action for item in again] == ["unchanged", "updated"]
    assert again[1].before["data"] == {"a": "1"} and again[1].after["data"] == {"a": "2"}
    assert server.stored("/api/v1/namespaces/%s/configmaps/b" % NS)["data"] == {"a": "2"}
    body = server.requests("PATCH")[0].body
    assert body == configmap("a", namespace=NS)


def test_apply_all_sends_the_namespace_the_object_names() -> None:
    server = FakeApiServer()
    server.add_namespace(NS)
    server.add_namespace("shared")
    applied = manifests.apply_all(KubeClient(server), NS, [configmap("a", namespace="shared")], MANAGER, False)
    assert applied[0].target.namespace == "shared"
    assert server.patch_paths() == ["/api/v1/namespaces/shared/configmaps/a"]


def test_a_dry_run_plans_objects_of_a_missing_namespace_and_sends_the_rest() -> None:
    server = FakeApiServer()
    server.add_namespace(NS)
    client = KubeClient(server, dry_run=True)

    applied = manifests.apply_all(client, NS, [configmap("a"), configmap("b", namespace="new")], MANAGER, True)

    assert [(item.action, item.target.namespace) for item in applied] == [("created", NS), ("planned", "new")]
    assert applied[1].after == configmap("b", namespace="new")
    assert [(c.path, c.query) for c in server.requests("PATCH")] == [
        ("/api/v1/namespaces/%s/configmaps/a" % NS, {"fieldManager": MANAGER, "force": "true", "dryRun": "All"})
    ]
    assert "/api/v1/namespaces/%s/configmaps/a" % NS not in server.objects


def test_a_namespace_the_token_may_not_read_is_taken_as_existing() -> None:
    server = FakeApiServer()
    server.add_namespace(NS)
    server.forbidden.add("/api/v1/namespaces/%s" % NS)
    assert manifests.namespace_exists(KubeClient(server), NS) is True
    assert manifests.namespace_exists(KubeClient(server), "absent") is False


def test_a_real_run_into_a_missing_namespace_fails_naming_it() -> None:
    server = FakeApiServer()
    with pytest.raises(ReleaseError) as info:
        manifests.apply_all(KubeClient(server), NS, [configmap("a")], MANAGER, False)
    assert 'namespaces "%s" not found' % NS in str(info.value)
    assert server.objects == {}
