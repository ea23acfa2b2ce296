"""Open-loop load generator: every family is released at its scheduled instant, whatever the
server is doing, and each family's latency is measured from that scheduled instant (so time
spent waiting for a client connection, a 503's Retry-After or a 202's polling all counts).

A family's flow: POST its basket with an Idempotency-Key; 200 "done" is the definitive answer;
202 "received" -> poll the given URL until "done"; 503/429 -> wait Retry-After and send the
very same request again (same key). Anything else is an error shown to the family.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .httpclient import HttpError, Pool

BASKETS_PATH = "/api/v1/bookings/baskets"


@dataclass
class Record:
    family: int
    household: int
    scheduled: float  # seconds after the opening
    first_response: float | None = None  # seconds after ``scheduled``
    latency: float | None = None  # definitive answer, seconds after ``scheduled``
    finished: float | None = None  # seconds after the opening
    result: str = "pending"  # done | error | timeout
    detail: str = ""
    booked: int = 0
    outcomes: Counter = field(default_factory=Counter)
    statuses: list[int] = field(default_factory=list)
    retries: int = 0
    polls: int = 0
    conn_errors: int = 0


def schedule(n: int, *, burst: float, arrival: str = "uniform", seed: int = 1) -> list[float]:
    """Send offsets (seconds after the opening) for ``n`` families, all within about ``burst``."""
    rng = random.Random(seed)
    if n == 0:
        return []
    if arrival == "poisson":
        rate = n / burst if burst > 0 else float("inf")
        t, out = 0.0, []
        for _ in range(n):
            out.append(t)
            t += rng.expovariate(rate) if rate != float("inf") else 0.0
        return out
    if arrival == "instant" or burst <= 0:
        return [0.0] * n
    return sorted(rng.uniform(0, burst) for _ in range(n))


def _retry_after(headers: dict[str, str], default: float = 1.0) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", default)))
    except ValueError:
        return default


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _family(pool: Pool, fam, offset: float, start: float, *, auth: str, timeout: float,
                  poll_interval: float, path: str) -> Record:
    loop = asyncio.get_running_loop()
    rec = Record(fam.index, fam.household_id, offset)
    sched = start + offset
    await asyncio.sleep(max(0.0, sched - loop.time()))
    deadline = sched + timeout
    key = f"bench-{fam.index}-{uuid.uuid4().hex}"
    auth_headers = fam.headers(auth)
    post_headers = {"Content-Type": "application/json", "Accept": "application/json",
                    "Idempotency-Key": key, **auth_headers}
    get_headers = {"Accept": "application/json", **{k: v for k, v in auth_headers.items() if k != "X-CSRFToken"}}
    body = json.dumps({"mode": fam.mode, "items": fam.items}).encode()
    method, url, send_body, headers = "POST", path, body, post_headers

    def finish(result: str, detail: str = "") -> Record:
        now = loop.time()
        rec.result, rec.detail = result, detail
        rec.latency, rec.finished = now - sched, now - start
        return rec

    while True:
        if loop.time() > deadline:
            return finish("timeout", f"no definitive answer after {timeout:.0f} s")
        try:
            resp = await pool.request(method, url, headers, send_body)
        except (HttpError, TimeoutError) as exc:
            rec.conn_errors += 1
            rec.statuses.append(0)
            if loop.time() + 1 > deadline:
                return finish("timeout", f"connection: {exc}")
            await asyncio.sleep(1.0)
            continue
        rec.statuses.append(resp.status)
        if rec.first_response is None:
            rec.first_response = loop.time() - sched
        if resp.status in (503, 429):
            rec.retries += 1
            await asyncio.sleep(_retry_after(resp.headers))
            continue
        if resp.status not in (200, 201, 202):
            return finish("error", f"HTTP {resp.status}: {resp.body[:200].decode('utf-8', 'replace')}")
        try:
            data = resp.json()
        except ValueError:
            return finish("error", f"HTTP {resp.status}: not JSON")
        if data.get("status") == "done":
            for item in data.get("items", []):
                rec.outcomes[item.get("outcome", "?")] += 1
            rec.booked = rec.outcomes["booked"]
            return finish("done")
        # Received and in line: poll until done.
        poll = data.get("poll") or (f"{path}/{data['basket']}" if data.get("basket") else None)
        if not poll:
            return finish("error", f"HTTP {resp.status} without a definitive answer nor a poll URL")
        rec.polls += 1
        method, url, send_body, headers = "GET", _path(poll), None, get_headers
        await asyncio.sleep(_retry_after(resp.headers, poll_interval) if "retry-after" in resp.headers
                            else poll_interval)


async def run(families, offsets, *, host: str, port: int, auth: str = "session", connections: int = 200,
              timeout: float = 120.0, poll_interval: float = 0.25, opens_at_epoch: float,
              path: str = BASKETS_PATH) -> tuple[list[Record], Pool]:
    """Release every family at ``opens_at_epoch + offset`` (wall clock) and collect the records."""
    loop = asyncio.get_running_loop()
    pool = Pool(host, port, size=connections, timeout=timeout)
    start = loop.time() + (opens_at_epoch - time.time())
    tasks = [
        asyncio.create_task(_family(pool, f, off, start, auth=auth, timeout=timeout,
                                    poll_interval=poll_interval, path=path))
        for f, off in zip(families, offsets, strict=True)
    ]
    records = await asyncio.gather(*tasks)
    await pool.close()
    return list(records), pool


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def summarise(records: list[Record]) -> dict:
    lat = [r.latency for r in records if r.latency is not None and r.result == "done"]
    first = [r.first_response for r in records if r.first_response is not None]
    statuses = Counter(s for r in records for s in r.statuses)
    finished = [r.finished for r in records if r.finished is not None]
    done = sum(1 for r in records if r.result == "done")
    makespan = max(finished) if finished else float("nan")
    return {
        "families": len(records),
        "done": done,
        "errors": sum(1 for r in records if r.result == "error"),
        "timeouts": sum(1 for r in records if r.result == "timeout"),
        "makespan": makespan,
        "throughput": done / makespan if finished and makespan > 0 else float("nan"),
        "p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
        "max": max(lat) if lat else float("nan"),
        "first_p50": percentile(first, 50), "first_p99": percentile(first, 99),
        "statuses": dict(sorted(statuses.items())),
        "http_5xx": sum(n for s, n in statuses.items() if s >= 500 and s != 503),
        "http_503": statuses.get(503, 0),
        "conn_errors": sum(r.conn_errors for r in records),
        "retries": sum(r.retries for r in records),
        "polls": sum(r.polls for r in records),
        "outcomes": dict(sum((r.outcomes for r in records), Counter())),
        "error_samples": [r.detail for r in records if r.result != "done"][:5],
    }
