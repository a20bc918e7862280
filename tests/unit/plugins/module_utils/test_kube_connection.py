# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connections read without the kubernetes library must be the ones the library builds."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from ansible_collections.userservice.deploy.plugins.module_utils import client as client_mod
from ansible_collections.userservice.deploy.plugins.module_utils.client import (
    KubeClient,
    build_configuration,
    build_transport,
    direct_transport,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ApiUnreachableError, ReleaseError
from ansible_collections.userservice.deploy.plugins.module_utils.kube_connection import direct_connection

CA = "-----BEGIN CERTIFICATE-----\nMIIBfake-ca\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake-client\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcfake-key\n-----END EC PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(cluster: Dict[str, Any], user: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": cluster},
            {"name": "other", "cluster": {"server": "https://other:6443", "insecure-skip-tls-verify": True}},
        ],
        "users": [{"name": "u", "user": user}, {"name": "t", "user": {"token": "other-token"}}],
        "contexts": [
            {"name": "ctx", "context": {"cluster": "c", "user": "u"}},
            {"name": "second", "context": {"cluster": "other", "user": "t", "namespace": "x"}},
        ],
        "current-context": "ctx",
    }
    config.update(extra)
    return config


def read(path: Any) -> str:
    return Path(path).read_text() if path else ""


def library_view(params: Dict[str, Any]) -> Dict[str, Any]:
    config = build_configuration(params)
    headers = [
        v["value"] for v in config.auth_settings().values() if v.get("key") == "authorization" and v.get("value")
    ]
    basic = "Basic " + b64("%s:%s" % (config.username, config.password)) if config.username else None
    auth = headers[0] if headers else basic
    return {
        "host": config.host.rstrip("/"),
        "verify": config.verify_ssl,
        "auth": auth,
        "ca": read(config.ssl_ca_cert),
        "cert": read(config.cert_file),
        "key": read(config.key_file),
    }


def direct_view(params: Dict[str, Any]) -> Dict[str, Any]:
    conn = direct_connection(params)
    assert conn is not None, "expected a connection read without the library"
    basic = "Basic " + b64("%s:%s" % (conn.username, conn.password)) if conn.username else None
    auth = "Bearer %s" % conn.token if conn.token else basic
    return {
        "host": conn.host,
        "verify": conn.verify,
        "auth": auth,
        "ca": conn.ca_data or read(conn.ca_file),
        "cert": read(conn.cert_file),
        "key": read(conn.key_file),
    }


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ca.crt").write_text(CA)
    (tmp_path / "client.crt").write_text(CERT)
    (tmp_path / "client.key").write_text(KEY)
    return tmp_path


CASES = {
    "token and CA data": (
        {"server": "https://10.0.0.1:6443/", "certificate-authority-data": b64(CA)},
        {"token": "tok"},
    ),
    "client certificate data": (
        {"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(CA)},
        {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)},
    ),
    "user name and password, insecure": (
        {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True},
        {"username": "admin", "password": "pw"},
    ),
    "token wins over a password": (
        {"server": "https://h:6443", "insecure-skip-tls-verify": True},
        {"token": "t", "username": "a", "password": "b"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_kubeconfig_is_read_as_the_library_reads_it(name: str) -> None:
    cluster, user = CASES[name]
    params = {"kubeconfig": kubeconfig(cluster, user)}
    assert direct_view(params) == library_view(params)


def test_files_relative_to_the_kubeconfig_and_a_chosen_context(files: Path, monkeypatch: Any) -> None:
    config = kubeconfig(
        {"server": "https://10.0.0.1:6443", "certificate-authority": "ca.crt"},
        {"client-certificate": "client.crt", "client-key": str(files / "client.key")},
    )
    path = files / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.chdir("/")
    for params in ({"kubeconfig": str(path)}, {"kubeconfig": str(path), "context": "second"}):
        assert direct_view(params) == library_view(params)
    # The default location ($KUBECONFIG; the library reads that variable once, at its import).
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert direct_view({}) == library_view({"kubeconfig": str(path)})


def test_explicit_options_override_the_kubeconfig() -> None:
    base = kubeconfig({"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(CA)}, {"token": "tok"})
    for params in (
        {"kubeconfig": base, "api_key": "override", "validate_certs": False},
        {"kubeconfig": base, "host": "https://elsewhere:443/"},
        {"host": "https://h:6443", "api_key": "t"},
        {"host": "https://h:6443", "username": "u", "password": "p", "validate_certs": False},
    ):
        assert direct_view(params) == library_view(params), params


@pytest.mark.parametrize(
    "user,params,environ",
    [
        ({"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}}, {}, {}),
        ({"auth-provider": {"name": "oidc"}}, {}, {}),
        ({"tokenFile": "/var/token"}, {}, {}),
        ({"as": "someone"}, {}, {}),
        ({"token": "t"}, {"proxy": "http://proxy:3128"}, {}),
    ],
)
def test_what_only_the_library_does_goes_to_the_library(
    user: Dict[str, Any], params: Dict[str, Any], environ: Any
) -> None:
    config = kubeconfig({"server": "https://h:6443"}, user)
    assert direct_connection(dict(params, kubeconfig=config), environ) is None


def test_several_kubeconfig_files_and_in_cluster_go_to_the_library(tmp_path: Path, monkeypatch: Any) -> None:
    assert direct_connection({}, {"KUBECONFIG": "/a/config%s/b/config" % os.pathsep}) is None
    token = tmp_path / "token"
    token.write_text("sa")
    monkeypatch.setattr(
        "ansible_collections.userservice.deploy.plugins.module_utils.kube_connection.IN_CLUSTER_TOKEN", str(token)
    )
    assert direct_connection({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}) is None


def test_a_missing_context_or_server_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no context 'nope'"):
        direct_connection({"kubeconfig": kubeconfig({"server": "https://h"}, {"token": "t"}), "context": "nope"})
    with pytest.raises(ValueError, match="no API server address"):
        direct_connection({"kubeconfig": kubeconfig({}, {"token": "t"})})
    with pytest.raises(ReleaseError) as info:
        KubeClient.from_params({"kubeconfig": kubeconfig({"server": "https://h"}, {"token": "t"}), "context": "nope"})
    assert "no context 'nope'" in str(info.value)


def test_certificate_data_goes_to_private_files() -> None:
    config = kubeconfig(
        {"server": "https://h:6443"}, {"client-certificate-data": b64(CERT), "client-key-data": b64(KEY)}
    )
    conn = direct_connection({"kubeconfig": config})
    assert conn is not None and read(conn.key_file) == KEY
    assert os.stat(conn.key_file).st_mode & 0o077 == 0
    assert os.stat(os.path.dirname(conn.key_file)).st_mode & 0o077 == 0


def test_the_direct_transport_sends_the_credentials_and_impersonation() -> None:
    conn = direct_connection({"host": "https://h:6443", "api_key": "tok"})
    headers = direct_transport(conn, {"impersonate_user": "deployer", "impersonate_groups": ["a", "b"]})._headers(None)
    assert headers["authorization"] == "Bearer tok" and headers["Impersonate-User"] == "deployer"
    assert headers.getlist("Impersonate-Group") == ["a", "b"]
    basic = direct_transport(direct_connection({"host": "https://h", "username": "u", "password": "p"}))._headers(None)
    assert basic["authorization"] == "Basic " + b64("u:p")


def test_the_direct_transport_reports_an_unreachable_server() -> None:
    transport = build_transport({"host": "http://127.0.0.1:9", "api_key": "t"})
    assert "kubernetes" not in type(transport.pool).__module__
    with pytest.raises(ApiUnreachableError) as info:
        transport.request("GET", "/readyz", timeout=2)
    assert "127.0.0.1:9" in str(info.value)


def test_a_token_connection_never_imports_the_kubernetes_library(monkeypatch: Any) -> None:
    for name in [m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")]:
        monkeypatch.delitem(sys.modules, name)
    build_transport({"kubeconfig": kubeconfig({"server": "https://h:6443"}, {"token": "t"})})
    assert "kubernetes.client" not in sys.modules
    assert client_mod.HAS_KUBERNETES  # still required (the fallback), and checked without importing it


def test_the_library_keeps_explicit_options_after_its_refresh_hook() -> None:
    # The library's kubeconfig loader reloads the kubeconfig (host included) whenever credentials are read;
    # the explicit host and token used to be undone at the first request.
    base = kubeconfig({"server": "https://10.0.0.1:6443"}, {"token": "tok"})
    config = build_configuration({"kubeconfig": base, "host": "https://elsewhere:443", "api_key": "override"})
    assert config.auth_settings()["BearerToken"]["value"] == "Bearer override"
    assert config.host == "https://elsewhere:443"
