# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings read without the kubernetes library, for the connections that do not need it.

Importing ``kubernetes.client`` (its generated API and models) takes about 0.3 s of every module run, a
fifth of a short action's whole ``ansible -m`` run. Most connections need none of it: a host with a token
or a password, or a kubeconfig whose user holds a token, a password or a client certificate. Those are
read here. Anything else (exec and auth-provider plugins, a token file, impersonation in the kubeconfig,
the in-cluster service account, several kubeconfig files, a proxy, cluster settings not listed below)
gives ``None``, and the caller builds the connection with the library, which handles every case. The
precedence is the library's and kubernetes.core's: explicit options override what the kubeconfig says.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False

# What this reader understands in a kubeconfig; any other key sends the connection to the library.
CLUSTER_KEYS = {
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "extensions",
}
USER_KEYS = {
    "token",
    "client-certificate",
    "client-certificate-data",
    "client-key",
    "client-key-data",
    "username",
    "password",
    "extensions",
}
IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class Connection:
    """Where the API server is and how to prove who we are to it."""

    def __init__(self) -> None:
        self.host = ""
        self.token: Optional[str] = None
        self.username: Optional[str] = None
        self.password: Optional[str] = None
        self.verify = True
        self.ca_file: Optional[str] = None
        self.ca_data: Optional[str] = None
        self.cert_file: Optional[str] = None
        self.key_file: Optional[str] = None


def _named(entries: Any, name: Optional[str], key: str) -> Optional[Dict[str, Any]]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key)
            return value if isinstance(value, dict) else {}
    return None


def _path(base: str, value: str) -> str:
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.join(base, value)


_private_dir: Optional[str] = None


def _private_file(data: bytes) -> str:
    """A 0600 file in a private directory removed when the module exits (TLS libraries read files only)."""
    global _private_dir
    if _private_dir is None:
        _private_dir = tempfile.mkdtemp(prefix="userservice-deploy-")
        atexit.register(shutil.rmtree, _private_dir, True)
    fd, path = tempfile.mkstemp(dir=_private_dir)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _decoded(value: str) -> bytes:
    return base64.b64decode(value)


def _kubeconfig(params: Dict[str, Any], environ: Mapping[str, str]) -> Optional[Any]:
    """The kubeconfig to read (a dict, or a path's parsed content with its directory), or None for the library."""
    given = params.get("kubeconfig")
    if isinstance(given, dict):
        return given, os.getcwd()
    if not given:
        if not params.get("context") and environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(IN_CLUSTER_TOKEN):
            return None  # the library reads the in-cluster service account
        given = environ.get("KUBECONFIG") or "~/.kube/config"
        if os.pathsep in given:
            return None  # several files, merged: the library's job
    path = os.path.expanduser(given)
    with open(path, encoding="utf-8") as handle:
        content = yaml.safe_load(handle)
    if not isinstance(content, dict):
        raise ValueError("the kubeconfig %s holds no mapping" % path)
    return content, os.path.dirname(os.path.abspath(path))


def _from_kubeconfig(conn: Connection, content: Dict[str, Any], base: str, context: Optional[str]) -> bool:
    """Fill ``conn`` from a kubeconfig; False when it needs something only the library does."""
    name = context or content.get("current-context")
    ctx = _named(content.get("contexts"), name, "context")
    if ctx is None:
        raise ValueError("the kubeconfig has no context %r" % name)
    cluster = _named(content.get("clusters"), ctx.get("cluster"), "cluster")
    if cluster is None:
        raise ValueError("the kubeconfig has no cluster %r (context %r)" % (ctx.get("cluster"), name))
    user = _named(content.get("users"), ctx.get("user"), "user") or {}
    if set(cluster) - CLUSTER_KEYS or set(user) - USER_KEYS:
        return False
    conn.host = str(cluster.get("server") or "")
    conn.verify = not cluster.get("insecure-skip-tls-verify", False)
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _decoded(cluster["certificate-authority-data"]).decode("ascii")
    elif cluster.get("certificate-authority"):
        conn.ca_file = _path(base, cluster["certificate-authority"])
    # The library's order: a token wins over a user name and password.
    if user.get("token"):
        conn.token = str(user["token"])
    elif user.get("username") and user.get("password"):
        conn.username, conn.password = str(user["username"]), str(user["password"])
    if user.get("client-certificate-data"):
        conn.cert_file = _private_file(_decoded(user["client-certificate-data"]))
    elif user.get("client-certificate"):
        conn.cert_file = _path(base, user["client-certificate"])
    if user.get("client-key-data"):
        conn.key_file = _private_file(_decoded(user["client-key-data"]))
    elif user.get("client-key"):
        conn.key_file = _path(base, user["client-key"])
    return True


def direct_connection(params: Dict[str, Any], environ: Optional[Mapping[str, str]] = None) -> Optional[Connection]:
    """The connection for the module's options, or None when only the kubernetes library can build it."""
    if not HAS_YAML or params.get("proxy") or params.get("no_proxy"):
        return None
    environ = os.environ if environ is None else environ
    conn = Connection()
    host = params.get("host")
    if not (host and (params.get("api_key") or (params.get("username") and params.get("password")))):
        found = _kubeconfig(params, environ)
        if found is None or not _from_kubeconfig(conn, found[0], found[1], params.get("context")):
            return None
    if host:
        conn.host = host
    if params.get("api_key"):
        conn.token = params["api_key"]
    if params.get("username"):
        conn.username = params["username"]
    if params.get("password"):
        conn.password = params["password"]
    if params.get("validate_certs") is not None:
        conn.verify = bool(params["validate_certs"])
    if params.get("ca_cert"):
        conn.ca_file, conn.ca_data = params["ca_cert"], None
    if params.get("client_cert"):
        conn.cert_file = params["client_cert"]
    if params.get("client_key"):
        conn.key_file = params["client_key"]
    conn.host = conn.host.rstrip("/")
    if not conn.host:
        raise ValueError("no API server address: set host, or a kubeconfig whose cluster has a server")
    return conn
