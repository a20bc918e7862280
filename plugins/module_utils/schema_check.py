# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline schema check of manifests against a Kubernetes version, before anything is sent.

It uses the kubernetes-validate library in strict mode (unknown fields are errors), in the module's own
process: the same check the roles ran as ``python -m kubernetes_validate --strict``, without a process per
role. Secrets are checked with their values replaced, so a payload never reaches an error message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.errors import ReleaseError
from ansible_collections.userservice.deploy.plugins.module_utils.manifests import redacted

_SPEC = importlib.util.find_spec("kubernetes_validate")
HAS_KUBERNETES_VALIDATE = _SPEC is not None
DEFAULT_CACHE = "~/.cache/userservice-deploy/schema-checked"
# The cache keeps the digests of this many manifests per Kubernetes version and library release.
CACHE_SIZE = 2000


def library_release() -> str:
    """kubernetes-validate's release, read from its version file (importing it costs a twentieth of a second)."""
    if _SPEC is None or not _SPEC.origin:
        return "none"
    try:
        with open(os.path.join(os.path.dirname(_SPEC.origin), "version.py"), encoding="utf-8") as handle:
            return handle.read().split("=", 1)[1].strip().strip("'\"") or "unknown"
    except (OSError, IndexError):
        return "unknown"


def digest(manifest: Dict[str, Any]) -> str:
    """What the check saw of a manifest: its canonical JSON with Secret values replaced."""
    return hashlib.sha256(json.dumps(redacted(manifest), sort_keys=True).encode("utf-8")).hexdigest()


class PassedCache:
    """Digests of manifests that passed, per Kubernetes version and library release, in one file.

    A manifest that passed once passes again: the check is a pure function of the manifest, the schema
    version and the library. A cache that cannot be read or written is ignored (the check just runs).
    """

    def __init__(self, directory: Optional[str], kubernetes_version: str) -> None:
        self.path = None
        if directory:
            name = "k8s-%s_kubernetes-validate-%s.json" % (kubernetes_version, library_release())
            self.path = os.path.join(os.path.expanduser(directory), name)
        self.known: List[str] = []
        if self.path:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    loaded = json.load(handle)
                self.known = [item for item in loaded if isinstance(item, str)] if isinstance(loaded, list) else []
            except (OSError, ValueError):
                self.known = []
        self.passed: Set[str] = set(self.known)

    def save(self, new: List[str]) -> None:
        if not self.path or not new:
            return
        keep = (self.known + new)[-CACHE_SIZE:]
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".schema-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(keep, handle)
            os.replace(tmp, self.path)
        except OSError:
            pass


def problems(
    manifests: List[Dict[str, Any]], kubernetes_version: str, cache_dir: Optional[str] = None
) -> Tuple[List[str], List[str]]:
    """``(problems, skipped)``: one line per manifest that does not match the schema
    (``Kind/name: field.path: problem``), and the manifests of kinds with no bundled schema.

    Manifests recorded in the cache under ``cache_dir`` as having passed are not checked again."""
    cache = PassedCache(cache_dir, kubernetes_version)
    pending = [(manifest, digest(manifest)) for manifest in manifests]
    pending = [(manifest, key) for manifest, key in pending if key not in cache.passed]
    if not pending:
        return [], []
    import kubernetes_validate  # deferred: only manifests not seen before pay for the import

    version = kubernetes_version if kubernetes_version.count(".") >= 2 else kubernetes_version + ".0"
    found = []
    skipped: List[str] = []
    newly_passed = []
    for manifest, key in pending:
        label = "%s/%s" % (manifest.get("kind", "?"), (manifest.get("metadata") or {}).get("name", "?"))
        try:
            kubernetes_validate.validate(redacted(manifest), version, strict=True)
            newly_passed.append(key)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path) or "(top level)"
            found.append("%s: %s: %s" % (label, where, exc.message))
        except kubernetes_validate.SchemaNotFoundError:
            # A custom resource: the library bundles only the built-in kinds. The API server's own
            # validation still applies (a dry run in check mode), as it did for the roles' former CLI check.
            skipped.append(label)
        except kubernetes_validate.InvalidSchemaError as exc:
            found.append("%s: %s" % (label, getattr(exc, "message", "") or type(exc).__name__))
        except Exception as exc:  # noqa: BLE001 - VersionNotSupportedError and friends are not exported
            raise ReleaseError(
                "the offline schema check cannot run",
                expected="a Kubernetes version kubernetes-validate %s knows" % library_release(),
                seen="kubernetes_version %s: %s: %s" % (kubernetes_version, type(exc).__name__, exc),
                hint="Set kubernetes_version (workload_kubernetes_version) to the cluster's minor version, "
                "or upgrade kubernetes-validate",
            ) from exc
    cache.save(newly_passed)
    return found, skipped


def check(manifests: List[Dict[str, Any]], kubernetes_version: str, cache_dir: Optional[str] = None) -> List[str]:
    """Raise one error naming every manifest that does not match the schema; return warnings for the
    manifests that could not be checked (kinds with no bundled schema)."""
    found, skipped = problems(manifests, kubernetes_version, cache_dir)
    if found:
        raise ReleaseError(
            "rendered manifests do not match the Kubernetes %s schema" % kubernetes_version,
            expected="manifests valid against the schema (object: field: problem)",
            seen="; ".join(found),
            hint="Fix the variable that renders the named field; nothing was sent to the cluster",
        )
    return (
        [
            "no Kubernetes %s schema for %s: not checked offline (the API server still validates it)"
            % (kubernetes_version, ", ".join(skipped))
        ]
        if skipped
        else []
    )
