#!/usr/bin/env python
"""Profiling aid: where the time of one blue/green release goes, request by request.

Runs the `bluegreen` module's code in this process (no Ansible start-up, no AnsiballZ) with the gates of
bench/bluegreen_release.py, and prints every API request with its start time and duration, then the gaps
between requests (time spent waiting or computing). It measures nothing on its own and writes no report:
use it to find what to cut, then measure the cut with bench/bluegreen_release.py.

Usage: bench/bluegreen_trace.py [--runs N]   (needs the local platform: make cluster)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "build" / "collections"))

from bluegreen_release import first_release, module_args, no_cluster, pod_template  # noqa: E402
from conftest import KUBECONFIG, kubectl  # noqa: E402

Event = Tuple[float, float, str]


def traced_run(args: dict) -> Tuple[float, List[Event]]:
    """One module run in this process; returns its wall time and the requests (start, seconds, what)."""
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    from ansible_collections.userservice.deploy.plugins.module_utils import client
    from ansible_collections.userservice.deploy.plugins.modules import bluegreen

    events: List[Event] = []
    started = time.monotonic()
    request, first_event = client.HttpTransport.request, client.HttpTransport.first_event

    def timed(name: str, call: Any) -> Any:
        def wrapper(self: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.monotonic()
            try:
                return call(self, *a, **kw)
            finally:
                path = a[1] if name == "request" else a[0]
                verb = a[0] if name == "request" else "WATCH"
                events.append((t0 - started, time.monotonic() - t0, "%s %s" % (verb, path.split("/namespaces/")[-1])))

        return wrapper

    client.HttpTransport.request = timed("request", request)
    client.HttpTransport.first_event = timed("watch", first_event)
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    basic._ANSIBLE_PROFILE = "legacy"
    real_stdout = sys.stdout
    try:
        sys.stdout = open(os.devnull, "w")
        bluegreen.main()
    except SystemExit:
        pass
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
        client.HttpTransport.request, client.HttpTransport.first_event = request, first_event
    return time.monotonic() - started, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    options = parser.parse_args()
    if no_cluster():
        return 2
    os.environ["K8S_AUTH_KUBECONFIG"] = str(KUBECONFIG)
    image, namespace, _release = first_release("bench-trace")
    try:
        active = "blue"
        for index in range(options.runs):
            args = module_args(namespace, image, pod_template(namespace, active), "1.%d.0" % index)
            seconds, events = traced_run(args)
            print("run %d: %.2f s in-process, %d requests" % (index + 1, seconds, len(events)))
            previous_end = 0.0
            for start, took, what in sorted(events):
                gap = start - previous_end
                print("  %6.3f  +%5.3f gap  %6.3f s  %s" % (start, gap, took, what))
                previous_end = max(previous_end, start + took)
            active = "green" if active == "blue" else "blue"
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
