"""Report Debian packages in an image that have a newer version in the security suite.

Debian ships fixes for vulnerabilities its security team issued an advisory for
through <codename>-security. An installed package older than the version in that
suite therefore carries at least one fixed, published vulnerability. The suite's
index is read over HTTPS from a Debian mirror (a package registry, so reachable
where image registries and vulnerability feeds are not) and checked against the
SHA256 in the suite's InRelease file.

Output: one JSON document on stdout. Exit 0 when the scan ran (findings or not),
2 when it could not run, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import subprocess
import sys
import tarfile
import urllib.request

# Debian attaches no per-CVE severity to the suite; an advisory-worthy fix is
# counted as high (minor issues wait for point releases instead).
SEVERITY = "high"


class ScanError(Exception):
    pass


def _order(ch: str) -> int:
    if not ch or ch.isdigit():
        return 0
    if ch.isalpha():
        return ord(ch)
    if ch == "~":
        return -1
    return ord(ch) + 256


def _compare_fragment(a: str, b: str) -> int:
    """dpkg's verrevcmp for an upstream version or a revision."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i] if i < len(a) else "")
            bc = _order(b[j] if j < len(b) else "")
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while i < len(a) and j < len(b) and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in version:
        head, version = version.split(":", 1)
        epoch = int(head)
    upstream, revision = version.rsplit("-", 1) if "-" in version else (version, "")
    return epoch, upstream, revision


def compare_versions(a: str, b: str) -> int:
    """Negative, zero or positive as Debian version a sorts before, equal to or after b."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return ea - eb
    return _compare_fragment(ua, ub) or _compare_fragment(ra, rb)


def parse_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t":
            if key:
                current[key] += "\n" + line.strip()
        else:
            key, value = line.split(":", 1) if ":" in line else (line, "")
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _docker(*args: str) -> bytes:
    try:
        return subprocess.run(["docker", *args], check=True, capture_output=True).stdout
    except FileNotFoundError as exc:
        raise ScanError("the docker CLI is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise ScanError(f"docker {args[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from exc


def _copy_out(container: str, path: str) -> str | None:
    try:
        archive = _docker("cp", "-L", f"{container}:{path}", "-")
    except ScanError:
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read().decode("utf-8", errors="replace") if handle else None


def read_image(image: str) -> tuple[str, str, str]:
    """Return (dpkg status, os-release, architecture) of an image without running it."""
    arch = _docker("image", "inspect", "--format", "{{.Architecture}}", image).decode().strip()
    container = _docker("create", image).decode().strip()
    try:
        status = _copy_out(container, "/var/lib/dpkg/status")
        os_release = _copy_out(container, "/etc/os-release") or ""
    finally:
        _docker("rm", container)
    if status is None:
        raise ScanError(
            f"{image} has no /var/lib/dpkg/status: the debian-security scanner applies to Debian-based "
            "images only (set image_scanner to grype, trivy or command)"
        )
    return status, os_release, arch


def codename_of(os_release: str) -> str:
    values = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line and not line.startswith("#"))
    if values.get("ID", "").strip('"') != "debian":
        raise ScanError(f"the image is not Debian (os-release ID={values.get('ID', 'unknown')})")
    codename = values.get("VERSION_CODENAME", "").strip('"')
    if not codename:
        raise ScanError("the image's os-release names no VERSION_CODENAME (a testing or unstable image?)")
    return codename


def _fetch(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https mirror URL
            return response.read()
    except OSError as exc:
        raise ScanError(f"cannot read {url}: {exc}") from exc


def read_security_index(mirror: str, codename: str, arch: str, timeout: float) -> tuple[str, dict[str, str]]:
    base = f"{mirror.rstrip('/')}/dists/{codename}-security"
    release = _fetch(f"{base}/InRelease", timeout).decode("utf-8", errors="replace")
    target = f"main/binary-{arch}/Packages.xz"
    expected = None
    in_sha256 = False
    for line in release.splitlines():
        if line and not line[0].isspace():
            in_sha256 = line.startswith("SHA256:")
        elif in_sha256:
            fields = line.split()
            if len(fields) == 3 and fields[2] == target:
                expected = fields[0]
    if expected is None:
        raise ScanError(f"{base}/InRelease lists no {target}")
    url = f"{base}/{target}"
    packed = _fetch(url, timeout)
    if hashlib.sha256(packed).hexdigest() != expected:
        raise ScanError(f"{url} does not match the SHA256 in InRelease")
    index: dict[str, str] = {}
    for stanza in parse_stanzas(lzma.decompress(packed).decode("utf-8", errors="replace")):
        name, version = stanza.get("Package"), stanza.get("Version")
        if name and version and (name not in index or compare_versions(version, index[name]) > 0):
            index[name] = version
    return url, index


def installed_packages(status: str) -> list[dict[str, str]]:
    return [s for s in parse_stanzas(status) if s.get("Status", "").endswith(" installed") and "Package" in s]


def find_pending_fixes(installed: list[dict[str, str]], index: dict[str, str]) -> list[dict[str, str]]:
    findings = []
    for pkg in installed:
        fixed = index.get(pkg["Package"])
        if fixed and compare_versions(fixed, pkg["Version"]) > 0:
            findings.append(
                {
                    "package": pkg["Package"],
                    "installed": pkg["Version"],
                    "fixed": fixed,
                    "source": pkg.get("Source", pkg["Package"]).split(" ")[0],
                    "severity": SEVERITY,
                }
            )
    return sorted(findings, key=lambda f: f["package"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="image reference or ID in the local Docker engine")
    source.add_argument("--status-file", help="a dpkg status file (with --codename and --arch)")
    parser.add_argument("--codename", help="Debian codename, with --status-file")
    parser.add_argument("--arch", default="amd64", help="Debian architecture, with --status-file")
    parser.add_argument("--mirror", default="https://deb.debian.org/debian-security")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        if args.image:
            status, os_release, arch = read_image(args.image)
            codename = codename_of(os_release)
        else:
            if not args.codename:
                raise ScanError("--status-file needs --codename")
            with open(args.status_file, encoding="utf-8") as handle:
                status = handle.read()
            codename, arch = args.codename, args.arch
        url, index = read_security_index(args.mirror, codename, arch, args.timeout)
        installed = installed_packages(status)
        report = {
            "scanner": "debian-security",
            "distribution": f"{codename}-security",
            "architecture": arch,
            "index": url,
            "packages": len(installed),
            "findings": find_pending_fixes(installed, index),
        }
    except ScanError as exc:
        print(f"debian-security scan: {exc}", file=sys.stderr)
        return 2
    json.dump(report, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
