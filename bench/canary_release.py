#!/usr/bin/env python
"""Benchmark: canary releases of the User Service under a bounded load, on the local platform.

Measured in one invocation, in one namespace:

* a good canary (replica router, 2 stable pods, weights 10/25/50 with pauses): the share of new-version answers
  in each step (one connection per request), and the step overhead: the run's time beyond its configured pauses
  and analysis windows, per step;
* a bad canary (the User Service's fault injection: 30 % of answers 5xx) with an error-ratio analysis after its
  first weight: the time from the first bad answer to weight 0, the failed requests, and what Flagger's rule
  (a failed check every `interval`, abort after `threshold` of them) gives for the same settings.

Writes the figures to docs/benchmarks.md (section "Canary under load") and a timeline plot of both releases
(share of new-version answers and error ratio over time, step weights marked) to docs/canary-timeline.png.
Usage: bench/canary_release.py   (needs the local platform: make cluster)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import (  # noqa: E402
    KUBECONFIG,
    Releaser,
    build_user_service_image,
    cluster_reachable,
    create_release_namespace,
    kubectl,
    service_ip,
)
from loadgen import LoadGenerator  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from report import write_section  # noqa: E402

RATE = 20.0
PLOT = REPO / "docs" / "canary-timeline.png"
INTERVAL, SAMPLES, WINDOW = 5, 2, "20s"
ANALYSIS = {
    "prometheus": {"url": "http://127.0.0.1:9090", "timeout": 5},
    "checks": [
        {
            "name": "error-ratio",
            "type": "prometheus",
            "metric": "error_ratio",
            "window": WINDOW,
            "max": 0.05,
            "samples": SAMPLES,
            "interval": INTERVAL,
            "initial_delay": 10,
            "failure_limit": 0,
            "on_no_data": "inconclusive",
        }
    ],
}
GOOD_STEPS = [
    {"weight": 10},
    {"pause": 15},
    {"weight": 25},
    {"pause": 15},
    {"analysis": ["error-ratio"]},
    {"weight": 50},
    {"pause": 15},
]
BAD_STEPS = [{"weight": 25}, {"analysis": ["error-ratio"]}, {"weight": 50}]
ERROR_RATE = 0.3


def wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def timeline(stream: LoadGenerator, version: str, bucket: float = 2.0):
    """Per bucket: seconds since the stream started, share of `version` answers, error ratio."""
    outcomes = stream.snapshot()
    if not outcomes:
        return []
    rows, start, end = [], outcomes[0].started, outcomes[-1].started
    t = start
    while t < end:
        window = [o for o in outcomes if t <= o.started < t + bucket]
        if window:
            ok = [o for o in window if o.ok]
            rows.append(
                (
                    round(t - stream.t0, 1),
                    100.0 * sum(1 for o in ok if o.version == version) / len(ok) if ok else 0.0,
                    100.0 * (len(window) - len(ok)) / len(window),
                )
            )
        t += bucket
    return rows


def analysis_seconds(steps) -> float:
    checks = {c["name"]: c for c in ANALYSIS["checks"]}
    total = 0.0
    for step in steps:
        for name in step.get("analysis", []):
            check = checks[name]
            total = max(total, 0) + check["initial_delay"] + (check["samples"] - 1) * check["interval"]
    return total


def main() -> int:
    if not cluster_reachable():
        print("no local cluster reachable through %s: run `make cluster`" % KUBECONFIG, file=sys.stderr)
        return 2
    image = build_user_service_image()
    namespace = create_release_namespace("bench-canary-%d" % int(time.time()))
    release = Releaser(namespace, image, Path(tempfile.mkdtemp(prefix="bench-canary-")), playbook="canary.yml")
    try:
        first = release(version="1.0.0")
        assert first.rc == 0, first.output[-2000:]
        good_stream = LoadGenerator(service_ip(namespace), rate=RATE, max_seconds=400).start()
        time.sleep(3)
        good = release(version="2.0.0", steps=GOOD_STEPS, analysis=ANALYSIS)
        time.sleep(3)
        good_stream.stop()
        assert good.rc == 0, good.output[-3000:]
        bad_stream = LoadGenerator(service_ip(namespace), rate=RATE, max_seconds=400).start()
        time.sleep(3)
        bad = release(version="3.0.0", steps=BAD_STEPS, analysis=ANALYSIS, env={"FAULT_ERROR_RATE": str(ERROR_RATE)})
        time.sleep(5)
        bad_stream.stop()
        assert bad.result.get("status") == "aborted", bad.output[-3000:]
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    pauses = sum(s.get("pause", 0) for s in GOOD_STEPS)
    analysing = analysis_seconds(GOOD_STEPS)
    weight_steps = len(good.result["weights"])
    # From the canary's start (deploy, gate) to the end of the promotion; the playbook's own start-up is outside.
    started = wall(good.result["state"]["canary"]["started_at"]) if good.result.get("state", {}).get("canary") else None
    steps_seconds = []
    for index, step in enumerate(good.result["weights"]):
        start = good_stream.t0 + wall(step["at"]) - good_stream.t0_wall + 3
        end = (
            good_stream.t0 + wall(good.result["weights"][index + 1]["at"]) - good_stream.t0_wall
            if index + 1 < weight_steps
            else good_stream.t0 + wall(good.result["promoting_at"]) - good_stream.t0_wall
        )
        share = good_stream.share("2.0.0", start, end)
        steps_seconds.append(
            {
                "weight": step["weight"],
                "pod_share": step["share"],
                "answered_share": share["percent"],
                "answers": share["answers"],
            }
        )
    walk = wall(good.result["promoting_at"]) - wall(good.result["weights"][0]["at"])
    overhead = max(0.0, walk - pauses - analysing) / max(1, len(GOOD_STEPS))

    bad_outcomes = [o for o in bad_stream.snapshot() if not o.ok]
    aborted = bad_stream.t0 + wall(bad.result["aborted_at"]) - bad_stream.t0_wall
    first_bad = min(o.started for o in bad_outcomes) if bad_outcomes else None
    share = bad.result["weights"][-1]["share"] / 100.0
    # Flagger's rule for the same settings: a check every `interval`, abort after `threshold` failed checks
    # (threshold = failure_limit + 1 here), so detection takes about interval * threshold after the errors start,
    # plus the metric window filling up like ours.
    threshold = ANALYSIS["checks"][0]["failure_limit"] + 1
    flagger_seconds = INTERVAL * threshold
    flagger_failed = RATE * share * ERROR_RATE * flagger_seconds
    figures = {
        "good": {
            "seconds": round(good.seconds, 1),
            "steps": steps_seconds,
            "configured_pauses_s": pauses,
            "analysis_windows_s": analysing,
            "overhead_per_step_s": round(overhead, 2),
            "failed_requests": good_stream.summary()["failed"],
            "requests": good_stream.summary()["requests"],
            "walk_s": round(walk, 1),
            "started": started,
        },
        "bad": {
            "first_bad_to_weight_zero_s": round(aborted - first_bad, 1) if first_bad else None,
            "failed_requests": len(bad_outcomes),
            "requests": bad_stream.summary()["requests"],
            "canary_share": share,
            "flagger_rule_s": flagger_seconds,
            "flagger_rule_failed_requests": round(flagger_failed, 1),
            "failure": {k: bad.result["failure"].get(k) for k in ("check", "value", "bound")},
        },
    }
    print(json.dumps(figures, indent=2))
    plot(good_stream, good.result, bad_stream, bad.result)
    write_section("Canary under load", render(figures))
    return 0


def plot(good_stream, good, bad_stream, bad) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharey=True)
    for axis, stream, result, version, title in (
        (axes[0], good_stream, good, "2.0.0", "good canary: weights 10/25/50, then promotion"),
        (axes[1], bad_stream, bad, "3.0.0", "bad canary (30% 5xx): aborted at its first analysis"),
    ):
        rows = timeline(stream, version)
        axis.plot([r[0] for r in rows], [r[1] for r in rows], label="answers from the new version (%)")
        axis.plot([r[0] for r in rows], [r[2] for r in rows], label="failed answers (%)", color="tab:red")
        for step in result["weights"]:
            at = wall(step["at"]) - stream.t0_wall
            axis.axvline(at, color="grey", linestyle="--", linewidth=0.8)
            axis.text(at, 92, " %d%%" % step["weight"], fontsize=8)
        for key, label in (("promoting_at", "promotion"), ("aborted_at", "weight 0")):
            if result.get(key):
                at = wall(result[key]) - stream.t0_wall
                axis.axvline(at, color="black", linewidth=1.0)
                axis.text(at, 80, " " + label, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.set_ylim(0, 100)
        axis.set_ylabel("%")
        axis.legend(fontsize=8, loc="center right")
    axes[1].set_xlabel("seconds since the load started (20 requests/s, one connection each)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=90)


def render(f: dict) -> str:
    g, b = f["good"], f["bad"]
    lines = [
        "Measured by `bench/canary_release.py` (replica router, 2 stable pods, 20 requests/s from this machine, one",
        "connection per request). Timeline: [canary-timeline.png](canary-timeline.png).",
        "",
        "| weight step | canary pods' share | answers from the new version | answers |",
        "|---|---|---|---|",
    ]
    for step in g["steps"]:
        lines.append(
            "| %d%% | %d%% | %.1f%% | %d |"
            % (step["weight"], step["pod_share"], step["answered_share"], step["answers"])
        )
    lines += [
        "",
        "| good canary | value |",
        "|---|---|",
        "| walk from the first weight to the promotion | %.1f s |" % g["walk_s"],
        "| configured pauses + analysis windows | %.1f s |" % (g["configured_pauses_s"] + g["analysis_windows_s"]),
        "| overhead per step beyond them (scale, gate, label, verify, record) | %.2f s |" % g["overhead_per_step_s"],
        "| failed requests | %d of %d |" % (g["failed_requests"], g["requests"]),
        "",
        "| bad canary (30%% 5xx), error-ratio check every %d s, failure_limit 0 | ours | Flagger's rule (interval x threshold) |"
        % INTERVAL,
        "|---|---|---|",
        "| first bad answer to weight 0 | %s s | %s s after the errors reach the metric |"
        % (b["first_bad_to_weight_zero_s"], b["flagger_rule_s"]),
        "| failed requests users saw | %d of %d | about %s (rate x canary share x error rate x time) |"
        % (b["failed_requests"], b["requests"], b["flagger_rule_failed_requests"]),
        "",
        "Ours includes the check's initial delay and the Prometheus window filling (scrape every 5 s); the",
        "failure record named `%s`, value %s, bound %s."
        % (b["failure"]["check"], b["failure"]["value"], b["failure"]["bound"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
