#!/usr/bin/env python
"""Benchmark: a blue/green release by the `bluegreen` module against a minimal raw kubectl script.

Both do the same steps on the same namespace, alternately, in one invocation (this machine is noisy, so only the
ratio means something): deploy the inactive slot, wait for its rollout, one health answer from each new pod, patch
the Service selector, scale the old slot to 0 (the module's scale-down delay 0). The module also verifies the
endpoints and keeps a state record and a lock; with its defaults it asks for three good answers in a row per pod.
Beside it, the minimal four-command script the earlier figures used (one pod asked, no scale-down).

Also measured, under a steady load from this machine: the time from the selector patch to the moment every
answer comes from the new version.

Writes the figures to docs/benchmarks.md (section "Blue/green release") and prints them as JSON.
Usage: bench/bluegreen_release.py [--rounds N]   (needs the local platform: make cluster)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import (  # noqa: E402
    KUBECONFIG,
    Releaser,
    build_user_service_image,
    cluster_reachable,
    create_release_namespace,
    kubectl,
    kubectl_json,
    run,
    service_ip,
)
from loadgen import LoadGenerator  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from report import write_section  # noqa: E402


def point_service(namespace: str, slot: str) -> None:
    """The script's (and the reset's) one selector patch."""
    kubectl(
        "-n",
        namespace,
        "patch",
        "service",
        "user-service",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"selector": {"deploy.userservice.io/slot": slot}}}),
    )


def kubectl_script(namespace: str, source_slot: str, target_slot: str, version: str, same_steps: bool = True) -> float:
    """The raw script: apply the target slot, rollout status, a health answer from each new pod, patch the selector,
    scale the source slot to 0. ``same_steps=False`` is the minimal script: one pod asked, no scale-down."""
    deployment = kubectl_json("-n", namespace, "get", "deployment", "user-service-" + source_slot)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "annotations"):
        deployment["metadata"].pop(key, None)
    deployment.pop("status", None)
    deployment["metadata"]["name"] = "user-service-" + target_slot
    for labels in (
        deployment["metadata"]["labels"],
        deployment["spec"]["selector"]["matchLabels"],
        deployment["spec"]["template"]["metadata"]["labels"],
    ):
        labels["deploy.userservice.io/slot"] = target_slot
    deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = version
    for env in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
        if env["name"] == "APP_VERSION":
            env["value"] = version
    deployment["spec"]["replicas"] = 2
    started = time.monotonic()
    run("kubectl", "--kubeconfig", str(KUBECONFIG), "apply", "-f", "-", input=json.dumps(deployment))
    kubectl("-n", namespace, "rollout", "status", "deployment/user-service-" + target_slot, "--timeout=180s")
    pods = kubectl_json("-n", namespace, "get", "pods", "-l", "deploy.userservice.io/slot=" + target_slot)["items"]
    names = [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]
    for pod in names if same_steps else names[:1]:
        kubectl("get", "--raw", "/api/v1/namespaces/%s/pods/%s:3000/proxy/api/health/status" % (namespace, pod))
    point_service(namespace, target_slot)
    if same_steps:
        kubectl("-n", namespace, "scale", "deployment/user-service-" + source_slot, "--replicas=0")
    return time.monotonic() - started


def restore(namespace: str, slot: str) -> None:
    """Undo the script's scale-down: the slot back at 2 Ready replicas."""
    kubectl("-n", namespace, "scale", "deployment/user-service-" + slot, "--replicas=2")
    kubectl("-n", namespace, "rollout", "status", "deployment/user-service-" + slot, "--timeout=180s")


def module_args(namespace: str, image: str, template: dict, version: str) -> dict:
    """The bluegreen module's arguments with the gates of the kubectl script: one health answer per pod,
    no post-switch watch, the old slot scaled down at once (delay 0)."""
    return {
        "namespace": namespace,
        "image": image,
        "version": version,
        "pod_template": template,
        "replicas": 2,
        "scale_down_delay": 0,
        "post_switch_watch": 0,
        "health": {"consecutive": 1, "interval": 1, "timeout": 90},
    }


def ansible_module(module: str, args: dict) -> float:
    """One `ansible localhost -m <module>` run, as an operator or AWX starts a module: start-up included."""
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=str(KUBECONFIG), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    started = time.monotonic()
    out = subprocess.run(
        [
            str(REPO / ".venv/bin/ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            module,
            "-e",
            "ansible_python_interpreter=%s" % (REPO / ".venv/bin/python"),
        ]
        + (["-a", json.dumps(args)] if args else []),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-1000:]
    return seconds


def pod_template(namespace: str, slot: str) -> dict:
    template = kubectl_json("-n", namespace, "get", "deployment", "user-service-" + slot)["spec"]["template"]
    template["metadata"]["labels"].pop("deploy.userservice.io/slot", None)
    return template


def reset_to(namespace: str, slot: str, other: str) -> None:
    """Back to the module's own record: traffic on `slot`, `other` deleted (the script left no state)."""
    point_service(namespace, slot)
    kubectl("-n", namespace, "delete", "deployment", "user-service-" + other, "--ignore-not-found", "--wait=true")
    for _attempt in range(120):
        pods = kubectl_json("-n", namespace, "get", "pods", "-l", "deploy.userservice.io/slot=" + other)["items"]
        if not pods:
            return
        time.sleep(0.5)


def wall_to_monotonic(stamp: str, anchor_wall: float, anchor_mono: float) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - anchor_wall + anchor_mono


def no_cluster() -> bool:
    if cluster_reachable():
        return False
    print("no local cluster reachable through %s: run `make cluster`" % KUBECONFIG, file=sys.stderr)
    return True


def first_release(prefix: str) -> Tuple[str, str, Releaser]:
    """The image, a new namespace and its Releaser, after a first release (version 0.0.1, on slot blue)."""
    image = build_user_service_image()
    namespace = create_release_namespace("%s-%d" % (prefix, int(time.time())))
    release = Releaser(namespace, image, Path(tempfile.mkdtemp(prefix=prefix + "-")))
    first = release(version="0.0.1", scale_down_delay=-1)
    if first.rc != 0:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        raise AssertionError(first.output[-2000:])
    return image, namespace, release


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if no_cluster():
        return 2
    image, namespace, release = first_release("bench-bg")
    rows = []
    try:
        active, version = "blue", 1
        for index in range(args.rounds):
            inactive = "green" if active == "blue" else "blue"
            minimal = kubectl_script(namespace, active, inactive, "minimal-%d" % index, same_steps=False)
            reset_to(namespace, active, inactive)
            script = kubectl_script(namespace, active, inactive, "script-%d" % index)
            restore(namespace, active)
            reset_to(namespace, active, inactive)
            # Identical gates, one module run (ansible's start-up included); Ansible's own start-up beside it.
            ping = ansible_module("ansible.builtin.ping", {})
            comparable = ansible_module(
                "userservice.deploy.bluegreen",
                module_args(namespace, image, pod_template(namespace, active), "1.%d.0" % version),
            )
            active, version = inactive, version + 1
            inactive = "green" if active == "blue" else "blue"
            reset_to(namespace, active, inactive)
            anchor_wall, anchor_mono = time.time(), time.monotonic()
            stream = LoadGenerator(service_ip(namespace), rate=20, max_seconds=240).start()
            time.sleep(2)
            default = release(version="1.%d.0" % version, scale_down_delay=-1)
            time.sleep(3)
            stream.stop()
            assert default.rc == 0, default.output[-2000:]
            switched = wall_to_monotonic(default.result["switched_at"], anchor_wall, anchor_mono)
            all_new = stream.first_time_all("1.%d.0" % version, since=switched - 5)
            rows.append(
                {
                    "kubectl_script_s": round(script, 2),
                    "kubectl_minimal_s": round(minimal, 2),
                    "module_comparable_s": round(comparable, 2),
                    "ansible_ping_s": round(ping, 2),
                    "module_default_s": round(default.seconds, 2),
                    "switch_to_all_new_s": round(all_new - switched, 2) if all_new else None,
                    "failed_requests": stream.summary()["failed"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            active, version = inactive, version + 1
            inactive = "green" if active == "blue" else "blue"
            reset_to(namespace, active, inactive)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    med = {key: statistics.median([r[key] for r in rows if r[key] is not None]) for key in rows[0]}
    figures = {
        "rounds": len(rows),
        "median": med,
        "ratio_module_comparable_to_kubectl": round(med["module_comparable_s"] / med["kubectl_script_s"], 2),
        "ratio_module_default_to_kubectl": round(med["module_default_s"] / med["kubectl_script_s"], 2),
        "ratio_ping_to_kubectl": round(med["ansible_ping_s"] / med["kubectl_script_s"], 2),
        "ratio_minimal_to_kubectl": round(med["kubectl_minimal_s"] / med["kubectl_script_s"], 2),
        "ratio_module_comparable_to_minimal": round(med["module_comparable_s"] / med["kubectl_minimal_s"], 2),
        "ratio_module_comparable_per_round": [round(r["module_comparable_s"] / r["kubectl_script_s"], 2) for r in rows],
        "rows": rows,
    }
    print(json.dumps(figures, indent=2))
    write_section("Blue/green release", render(figures))
    return 0


def render(f: dict) -> str:
    m = f["median"]
    lines = [
        "Measured by `bench/bluegreen_release.py` (%d rounds, alternating, same namespace, same run)." % f["rounds"],
        "The identical-gates row is one `ansible localhost -m userservice.deploy.bluegreen` run (Ansible's start-up",
        "included) with the script's steps and gates; the defaults row is the end-to-end driver playbook (it also",
        "renders the pod template with the workload role and saves the result). The kubectl script does the steps",
        "the module does (issue 9: rollout wait, health gate, switch, scale-down delay 0) with one kubectl command",
        "each: apply, rollout status, one health GET per new pod, patch the selector, scale the old slot to 0.",
        "The minimal script (the baseline of earlier figures) asks one pod and leaves the old slot running.",
        "Wall times are medians.",
        "",
        "| what | seconds (median) | ratio to kubectl script |",
        "|---|---|---|",
        "| kubectl script, same steps: apply, rollout status, health GET per pod, patch selector, scale old slot to 0"
        " | %.2f | 1.00 |" % m["kubectl_script_s"],
        "| minimal kubectl script: apply, rollout status, one health GET, patch selector | %.2f | %.2f |"
        % (m["kubectl_minimal_s"], f["ratio_minimal_to_kubectl"]),
        "| `bluegreen` module, identical gates: one health answer per pod, no post-switch watch, scale-down delay 0 | %.2f | %.2f |"
        % (m["module_comparable_s"], f["ratio_module_comparable_to_kubectl"]),
        "| of which Ansible's own start-up (`ansible -m ping`) | %.2f | %.2f |"
        % (m["ansible_ping_s"], f["ratio_ping_to_kubectl"]),
        "| driver playbook, module defaults (3 answers in a row, endpoint verification, 10 s post-switch watch) | %.2f | %.2f |"
        % (m["module_default_s"], f["ratio_module_default_to_kubectl"]),
        "",
        "Per round, module ÷ same-steps script: %s. Module ÷ minimal script (medians): %.2f."
        % (
            ", ".join("%.2f" % r for r in f["ratio_module_comparable_per_round"]),
            f["ratio_module_comparable_to_minimal"],
        ),
        "",
        "Time from the selector patch to 100%% of answers from the new version, under 20 requests/s from this "
        "machine: median %s s; failed requests during those releases: %s."
        % (m["switch_to_all_new_s"], sum(r["failed_requests"] for r in f["rows"])),
        "",
        "Rows: `%s`" % json.dumps(f["rows"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
