# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""config_prune: which names pod templates reference, and which hashed objects may go."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils import config_prune
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fake_apiserver import FakeApiServer

NS = "user-service-dev"
APP = "user-service"


# ---------------------------------------------------------------------------
# referenced_names
# ---------------------------------------------------------------------------


def test_every_kind_of_reference_is_found() -> None:
    spec = {
        "volumes": [
            {"name": "config", "configMap": {"name": "cm-volume"}},
            {"name": "tls", "secret": {"secretName": "secret-volume"}},
            {
                "name": "all",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "cm-projected"}},
                        {"secret": {"name": "secret-projected"}},
                        {"serviceAccountToken": {"path": "token"}},
                        {"downwardAPI": {"items": []}},
                    ]
                },
            },
            {"name": "scratch", "emptyDir": {}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "not-a-config"}},
        ],
        "initContainers": [
            {"name": "migrate", "envFrom": [{"configMapRef": {"name": "cm-init-envfrom"}}]},
        ],
        "containers": [
            {
                "name": "app",
                "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}, {"secretRef": {"name": "secret-envfrom"}}],
                "env": [
                    {"name": "PLAIN", "value": "not-a-config"},
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-keyref", "key": "a"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "secret-keyref", "key": "b"}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
            },
            {"name": "sidecar", "env": [{"name": "D", "valueFrom": {"secretKeyRef": {"name": "secret-sidecar"}}}]},
        ],
    }
    assert config_prune.referenced_names([spec]) == {
        "cm-volume",
        "secret-volume",
        "cm-projected",
        "secret-projected",
        "cm-init-envfrom",
        "cm-envfrom",
        "secret-envfrom",
        "cm-keyref",
        "secret-keyref",
        "secret-sidecar",
    }


def test_references_of_several_pod_specs_are_joined() -> None:
    specs = [
        {"volumes": [{"name": "c", "configMap": {"name": "one"}}]},
        {"containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "two"}}]}]},
        {},
    ]
    assert config_prune.referenced_names(specs) == {"one", "two"}


def test_a_spec_without_references_names_nothing() -> None:
    spec = {
        "containers": [{"name": "app", "image": "x", "env": [{"name": "A", "value": "1"}]}],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "odd", "configMap": {}}],
    }
    assert config_prune.referenced_names([spec]) == set()
    assert config_prune.referenced_names([]) == set()


# ---------------------------------------------------------------------------
# choose
# ---------------------------------------------------------------------------


def obj(name: str, created: str = "") -> Dict[str, Any]:
    metadata: Dict[str, Any] = {"name": name}
    if created:
        metadata["creationTimestamp"] = created
    return {"metadata": metadata, "data": {"token": "czNjcjN0"}}


def names(doomed: List[Dict[str, str]]) -> List[str]:
    return [item["name"] for item in doomed]


EXISTING = [
    obj("user-service-app-0000000001", "2026-01-01T10:00:00Z"),
    obj("user-service-app-0000000003", "2026-01-03T10:00:00Z"),
    obj("user-service-app-0000000002", "2026-01-02T10:00:00Z"),
    obj("user-service-flags-aaaaaaaaaa", "2026-01-01T10:00:00Z"),
    obj("user-service-flags-bbbbbbbbbb", "2026-01-05T10:00:00Z"),
]


@pytest.mark.parametrize(
    "history_limit, expected",
    [
        (
            0,
            [
                "user-service-app-0000000003",
                "user-service-app-0000000002",
                "user-service-app-0000000001",
                "user-service-flags-bbbbbbbbbb",
                "user-service-flags-aaaaaaaaaa",
            ],
        ),
        (1, ["user-service-app-0000000002", "user-service-app-0000000001", "user-service-flags-aaaaaaaaaa"]),
        (2, ["user-service-app-0000000001"]),
        (3, []),
    ],
)
def test_the_newest_history_limit_per_entry_are_kept(history_limit: int, expected: List[str]) -> None:
    assert names(config_prune.choose("ConfigMap", EXISTING, set(), history_limit, 10)) == expected


def test_the_result_names_kind_name_and_creation_time_only() -> None:
    doomed = config_prune.choose("Secret", EXISTING, set(), 2, 10)
    assert doomed == [{"kind": "Secret", "name": "user-service-app-0000000001", "created": "2026-01-01T10:00:00Z"}]


def test_kept_names_are_never_chosen_and_do_not_count_towards_the_limit() -> None:
    keep = {"user-service-app-0000000003", "user-service-app-0000000001"}
    assert names(config_prune.choose("ConfigMap", EXISTING, keep, 1, 10)) == ["user-service-flags-aaaaaaaaaa"]
    keep = {"user-service-app-0000000003"}
    assert names(config_prune.choose("ConfigMap", EXISTING, keep, 1, 10)) == [
        "user-service-app-0000000001",
        "user-service-flags-aaaaaaaaaa",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "user-service-app",  # no hash at all
        "user-service-app-legacy",
        "user-service-app-ABCDEF0123",  # upper case is not the role's hash
        "user-service-app-000000001",  # one short
        "user-service-app-00000000011",  # one long
        "0123456789",  # a hash without an entry
    ],
)
def test_names_without_the_hash_suffix_are_never_chosen(name: str) -> None:
    existing = [obj(name, "2020-01-01T00:00:00Z"), obj("user-service-app-0000000009", "2026-01-01T00:00:00Z")]
    doomed = names(config_prune.choose("ConfigMap", existing, set(), 0, 10))
    assert doomed == ["user-service-app-0000000009"]


def test_the_hash_length_is_honoured() -> None:
    existing = [obj("app-cfg-deadbeef", "2026-01-01T00:00:00Z"), obj("app-cfg-0123456789", "2026-01-02T00:00:00Z")]
    assert names(config_prune.choose("ConfigMap", existing, set(), 0, 8)) == ["app-cfg-deadbeef"]


def test_ties_and_missing_creation_times_order_deterministically() -> None:
    existing = [
        obj("app-cfg-000000000b", "2026-01-01T00:00:00Z"),
        obj("app-cfg-000000000a", "2026-01-01T00:00:00Z"),
        obj("app-cfg-000000000c"),  # no creation time: the oldest
    ]
    doomed = config_prune.choose("ConfigMap", existing, set(), 1, 10)
    assert doomed == [
        {"kind": "ConfigMap", "name": "app-cfg-000000000a", "created": "2026-01-01T00:00:00Z"},
        {"kind": "ConfigMap", "name": "app-cfg-000000000c", "created": ""},
    ]


def test_choose_reads_nothing_but_names_and_times() -> None:
    doomed = config_prune.choose("Secret", [obj("app-env-0000000001", "2026-01-01T00:00:00Z")], set(), 0, 10)
    assert "czNjcjN0" not in repr(doomed)


# ---------------------------------------------------------------------------
# plan, against the fake API server
# ---------------------------------------------------------------------------

HASHED = {"app.kubernetes.io/name": APP, "app.kubernetes.io/managed-by": "userservice.deploy"}


def _put(server: FakeApiServer, plural: str, name: str, created: str, labels: Dict[str, str]) -> None:
    kind = "ConfigMap" if plural == "configmaps" else "Secret"
    server.put(
        "/api/v1/namespaces/%s/%s/%s" % (NS, plural, name),
        {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": NS, "creationTimestamp": created, "labels": labels},
        },
    )


def test_plan_lists_templates_and_hashed_objects_and_chooses() -> None:
    server = FakeApiServer()
    server.put(
        "/apis/apps/v1/namespaces/%s/deployments/%s" % (NS, APP),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": APP, "namespace": NS, "labels": {"app.kubernetes.io/name": APP}},
            "spec": {
                "template": {"spec": {"volumes": [{"name": "c", "configMap": {"name": "user-service-app-0000000001"}}]}}
            },
        },
    )
    server.put(
        "/apis/apps/v1/namespaces/%s/replicasets/%s-abc" % (NS, APP),
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "%s-abc" % APP, "namespace": NS, "labels": {"app.kubernetes.io/name": APP}},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "envFrom": [{"secretRef": {"name": "user-service-env-0000000001"}}]}
                        ]
                    }
                }
            },
        },
    )
    config = dict(HASHED, **{"deploy.userservice.io/config": "app"})
    env = dict(HASHED, **{"deploy.userservice.io/config": "env"})
    _put(server, "configmaps", "user-service-app-0000000001", "2025-01-01T00:00:00Z", config)
    _put(server, "configmaps", "user-service-app-0000000002", "2025-01-02T00:00:00Z", config)
    _put(server, "configmaps", "user-service-app-0000000003", "2025-01-03T00:00:00Z", config)
    _put(server, "configmaps", "user-service-app-0000000004", "2025-01-04T00:00:00Z", config)
    _put(server, "secrets", "user-service-env-0000000001", "2025-01-01T00:00:00Z", env)
    _put(server, "secrets", "user-service-env-0000000002", "2025-01-02T00:00:00Z", env)
    # Not the config role's: another manager, and no config label.
    _put(
        server,
        "configmaps",
        "user-service-app-0000000000",
        "2024-01-01T00:00:00Z",
        dict(config, **{"app.kubernetes.io/managed-by": "Helm"}),
    )
    _put(server, "configmaps", "user-service-xyz-0000000000", "2024-01-01T00:00:00Z", HASHED)

    doomed = config_prune.plan(
        KubeClient(server),
        NS,
        APP,
        "userservice.deploy",
        "deploy.userservice.io/config",
        {"user-service-app-0000000004"},
        1,
        10,
    )

    assert doomed == [
        {"kind": "ConfigMap", "name": "user-service-app-0000000002", "created": "2025-01-02T00:00:00Z"},
    ]
    queries = sorted((c.path, c.query["labelSelector"]) for c in server.requests("GET"))
    hashed = (
        "app.kubernetes.io/name=%s,app.kubernetes.io/managed-by=userservice.deploy,deploy.userservice.io/config" % APP
    )
    assert queries == [
        ("/api/v1/namespaces/%s/configmaps" % NS, hashed),
        ("/api/v1/namespaces/%s/secrets" % NS, hashed),
        ("/apis/apps/v1/namespaces/%s/deployments" % NS, "app.kubernetes.io/name=%s" % APP),
        ("/apis/apps/v1/namespaces/%s/replicasets" % NS, "app.kubernetes.io/name=%s" % APP),
    ]
    assert server.writes() == []
