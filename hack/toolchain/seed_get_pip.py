"""Seed ansible-test's get-pip cache so its sanity venvs bootstrap pip offline.

ansible-test bootstraps pip into every venv it makes by running
``~/.ansible/test/cache/get_pip_<version>.py``, and downloads that script from
a host outside the package registries when it is missing. This writes a stand-in
that installs pip from a wheel taken from PyPI, so only PyPI is needed.

Usage: seed_get_pip.py HOME_DIR   (HOME_DIR is the HOME ansible-test will run with)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SHIM = '''\
"""Stand-in for get-pip.py written by hack/toolchain/seed_get_pip.py.

Installs pip from the wheel next to this file instead of an embedded copy.
"""
import pathlib
import sys

WHEEL = pathlib.Path(__file__).resolve().parent / "{wheel}"


def main():
    sys.path.insert(0, str(WHEEL))
    from pip._internal.cli.main import main as pip_main

    # get-pip.py options that pip install does not know.
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    return pip_main(["install", "--no-index", "--find-links", str(WHEEL.parent), *args])


if __name__ == "__main__":
    sys.exit(main())
'''


def ansible_test_pip_version() -> str:
    """Read the pip version ansible-test pins for its venvs from its own source."""
    import ansible_test  # noqa: PLC0415 - only importable inside the toolchain venv

    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text())
    if not match:
        sys.exit(f"seed_get_pip: cannot find the pinned pip version in {source}")
    return match.group(1)


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cache = Path(sys.argv[1]) / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    version = ansible_test_pip_version()
    wheel = cache / f"pip-{version}-py3-none-any.whl"
    if not wheel.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(cache),
                f"pip=={version}",
            ],
            check=True,
        )
    shim = cache / f"get_pip_{version.replace('.', '_')}.py"
    text = SHIM.format(wheel=wheel.name)
    if not shim.exists() or shim.read_text() != text:
        shim.write_text(text)
    print(f"seed_get_pip: {shim} -> {wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
