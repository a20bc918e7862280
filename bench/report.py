"""Writes one section of docs/benchmarks.md, leaving the other sections as they are."""

from __future__ import annotations

import datetime
import platform
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nFigures measured on this project's machines; each timing is a ratio to a baseline measured in the same run.\n"


def write_section(title: str, body: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    stamp = "_Measured %s on %s (%s)._" % (
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        platform.node(),
        platform.machine(),
    )
    section = "## %s\n\n%s\n\n%s\n" % (title, stamp, body.rstrip())
    pattern = re.compile(r"^## %s\n.*?(?=^## |\Z)" % re.escape(title), re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip() + "\n")
