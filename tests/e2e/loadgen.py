"""A steady, bounded stream of HTTP requests to a Service, recording every outcome.

Used by the end-to-end tests and the benchmarks to prove "zero failed requests" during releases. Each request
opens its own connection (the way a fleet of independent clients arrives), so a switch of the Service selector is
seen by the next request. Requests go only to the address given (a ClusterIP on this machine), at a fixed rate,
and the stream stops at ``max_seconds`` or ``max_requests``, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class Outcome:
    started: float  # time.monotonic()
    latency: float
    status: Optional[int]  # None when the request failed before an HTTP answer
    version: Optional[str]
    error: Optional[str]

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class LoadGenerator:
    host: str
    port: int = 80
    path: str = "/api/version"
    rate: float = 20.0  # requests per second, spread over `workers` threads
    workers: int = 4
    timeout: float = 5.0
    max_seconds: float = 600.0
    max_requests: int = 20000
    # False: one connection per request (a fleet of independent clients). True: each worker keeps its
    # connection open (a real client's pool), which pins it to one pod behind a Service.
    keepalive: bool = False
    headers: Dict[str, str] = field(default_factory=dict)
    outcomes: List[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._issued = 0
        self.t0 = 0.0
        self.t0_wall = 0.0

    # -- running ------------------------------------------------------------------

    def start(self) -> "LoadGenerator":
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        for index in range(self.workers):
            thread = threading.Thread(target=self._worker, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> "LoadGenerator":
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 2)
        return self

    def __enter__(self) -> "LoadGenerator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_slot(self) -> Optional[int]:
        with self._lock:
            if self._issued >= self.max_requests:
                return None
            self._issued += 1
            return self._issued - 1

    def _worker(self, index: int) -> None:
        interval = 1.0 / self.rate
        conn: Optional[http.client.HTTPConnection] = None
        while not self._stop.is_set():
            slot = self._next_slot()
            if slot is None or time.monotonic() - self.t0 > self.max_seconds:
                break
            due = self.t0 + slot * interval
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            if self.keepalive:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                outcome = self._request(conn)
                if not outcome.ok:
                    conn.close()
                    conn = None
                self._record(outcome)
            else:
                self._record(self._request(None))
        if conn is not None:
            conn.close()

    def _request(self, kept: Optional[http.client.HTTPConnection]) -> Outcome:
        started = time.monotonic()
        conn = kept or http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            headers = dict(self.headers)
            if kept is None:
                headers["Connection"] = "close"
            conn.request("GET", self.path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            version = None
            try:
                version = json.loads(body).get("version")
            except (ValueError, AttributeError):
                pass
            return Outcome(started, time.monotonic() - started, resp.status, version, None)
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(started, time.monotonic() - started, None, None, "%s: %s" % (type(exc).__name__, exc))
        finally:
            if kept is None:
                conn.close()

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    # -- reading ------------------------------------------------------------------

    def snapshot(self) -> List[Outcome]:
        with self._lock:
            return sorted(self.outcomes, key=lambda o: o.started)

    def wall(self, monotonic: float) -> float:
        """Epoch seconds of a monotonic instant of this stream (to compare with API timestamps)."""
        return self.t0_wall + (monotonic - self.t0)

    def failures(self) -> List[Outcome]:
        return [o for o in self.snapshot() if not o.ok]

    def by_version(self) -> Dict[Optional[str], int]:
        counts: Dict[Optional[str], int] = {}
        for outcome in self.snapshot():
            if outcome.ok:
                counts[outcome.version] = counts.get(outcome.version, 0) + 1
        return counts

    def share(self, version: str, start: float, end: float) -> Dict[str, float]:
        """Share (percent) of the answers started in [start, end) that came from ``version``, and how many."""
        window = [o for o in self.snapshot() if start <= o.started < end and o.ok]
        hits = sum(1 for o in window if o.version == version)
        return {"percent": round(100.0 * hits / len(window), 1) if window else 0.0, "answers": len(window)}

    def first_time_all(self, version: str, since: float = 0.0) -> Optional[float]:
        """Start time of the first request of the final run of answers that all came from ``version``."""
        first: Optional[float] = None
        for outcome in self.snapshot():
            if outcome.started < since or not outcome.ok:
                continue
            if outcome.version == version:
                first = outcome.started if first is None else first
            else:
                first = None
        return first

    def summary(self) -> Dict[str, object]:
        outcomes = self.snapshot()
        latencies = sorted(o.latency for o in outcomes if o.ok)

        def quantile(q: float) -> Optional[float]:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 4) if latencies else None

        errors: Dict[str, int] = {}
        for o in outcomes:
            if not o.ok:
                key = o.error or "HTTP %s" % o.status
                errors[key] = errors.get(key, 0) + 1
        return {
            "requests": len(outcomes),
            "failed": sum(1 for o in outcomes if not o.ok),
            "by_version": {str(k): v for k, v in self.by_version().items()},
            "errors": errors,
            "p50_seconds": quantile(0.5),
            "p99_seconds": quantile(0.99),
            "duration_seconds": round((outcomes[-1].started - outcomes[0].started) if outcomes else 0.0, 2),
        }
