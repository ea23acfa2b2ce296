"""The crash test's client and checker.

The client sends booking baskets (a family's API token), deposits and payments (a counter
agent's API token) through the HTTP stack, each with its own ``Idempotency-Key``, from several
threads, and records what each request was told:

- **acknowledged**: the server answered that it holds the request — a booking 200 (answered),
  202 (received, in line) or 503 naming the basket (received, busy); a deposit or payment 200
  or 201 with its receipt;
- **unknown**: no answer (connection refused or reset, timeout) or a 5xx without a receipt —
  the request may or may not have been acted on;
- **refused**: any other 4xx (never expected here: it fails the test).

The checker reads the database directly (SQL) and lists every broken promise.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field

import psycopg

BOOKING, DEPOSIT, PAYMENT = "booking", "deposit", "payment"


@dataclass
class Request:
    kind: str
    key: str
    family: dict
    body: dict
    outcome: str = "pending"  # acknowledged | unknown | refused
    status: int = 0
    answer: dict = field(default_factory=dict)
    replays: list = field(default_factory=list)  # (status, answer) of replays after the faults
    sent_at: float = 0.0  # time.monotonic() when sent

    def path(self) -> str:
        return {BOOKING: "/api/v1/bookings/baskets", DEPOSIT: "/api/v1/billing/deposits",
                PAYMENT: "/api/v1/billing/payments"}[self.kind]

    def token(self, scenario: dict) -> str:
        return self.family["token"] if self.kind == BOOKING else scenario["counter_token"]


class Target:
    """The server's current address (it changes when the server is restarted)."""

    def __init__(self, port: int):
        self.port = port
        self.lock = threading.Lock()

    def set(self, port: int) -> None:
        with self.lock:
            self.port = port

    def get(self) -> int:
        with self.lock:
            return self.port


def send(port: int, method: str, path: str, token: str, body: dict | None = None, key: str | None = None,
         timeout: float = 6.0) -> tuple[int, dict]:
    """(status, json body); status 0 when no answer came."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {"raw": raw[:200].decode(errors="replace")}
        return resp.status, data
    except (OSError, http.client.HTTPException):
        return 0, {}
    finally:
        conn.close()


def classify(req: Request, status: int, answer: dict) -> str:
    if req.kind == BOOKING:
        if status in (200, 202) and answer.get("basket"):
            return "acknowledged"
        if status == 503 and answer.get("basket"):
            return "acknowledged"  # received and kept in line, answered later
    elif status in (200, 201) and answer.get("receipt_number"):
        return "acknowledged"
    if status == 0 or status >= 500:
        return "unknown"
    return "refused"


def make_request(n: int, rng: random.Random, scenario: dict, prefix: str, kinds=(BOOKING, DEPOSIT, PAYMENT)) -> Request:
    family = rng.choice(scenario["families"])
    kind = rng.choices(kinds, weights=[{BOOKING: 6, DEPOSIT: 3, PAYMENT: 2}[k] for k in kinds])[0]
    key = f"{prefix}-{n}"
    if kind == BOOKING:
        sessions = rng.sample(scenario["sessions"], k=rng.choice((1, 2)))
        body = {"mode": "partial", "items": [{"child": family["child"], "session": s, "unit": "journee"}
                                             for s in sessions]}
    elif kind == DEPOSIT:
        body = {"portal": "crash", "household": family["reference"], "amount_cents": rng.randint(100, 9_000),
                "method": "cash"}
    else:
        body = {"portal": "crash", "invoice": family["invoice"], "amount_cents": rng.randint(100, 5_000),
                "method": "card"}
    return Request(kind, key, family, body)


def run_clients(target: Target, scenario: dict, *, seconds: float, threads: int, seed: int, prefix: str,
                kinds=(BOOKING, DEPOSIT, PAYMENT), stop: threading.Event | None = None) -> list[Request]:
    """Send requests from ``threads`` threads for ``seconds`` (or until ``stop`` is set); every
    request is recorded."""
    done: list[Request] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))

    def worker(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        while time.monotonic() < stop_at and not (stop is not None and stop.is_set()):
            with lock:
                n = next(counter)
            req = make_request(n, rng, scenario, prefix, kinds)
            req.sent_at = time.monotonic()
            status, answer = send(target.get(), "POST", req.path(), req.token(scenario), req.body, req.key)
            req.status, req.answer, req.outcome = status, answer, classify(req, status, answer)
            with lock:
                done.append(req)
            if status == 0 or status >= 500:
                time.sleep(1.0)  # the server or its database is down: back off, as a client should

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 30)
    return done


def replay(target: Target, scenario: dict, req: Request, *, tries: int = 40) -> tuple[int, dict]:
    """Send the same request again (same key) until it gets a definitive answer; a booking
    received but not yet answered is polled until answered."""
    for _ in range(tries):
        status, answer = send(target.get(), "POST", req.path(), req.token(scenario), req.body, req.key)
        if req.kind == BOOKING and status in (202, 503) and answer.get("basket"):
            status, answer = poll(target, req.token(scenario), answer["basket"])
        if status in (200, 201):
            return status, answer
        if 400 <= status < 500:
            return status, answer
        time.sleep(0.25)
    return status, answer


def poll(target: Target, token: str, basket: int, *, tries: int = 80) -> tuple[int, dict]:
    for _ in range(tries):
        status, answer = send(target.get(), "GET", f"/api/v1/bookings/baskets/{basket}", token)
        if status == 200 and answer.get("status") == "done":
            return status, answer
        time.sleep(0.25)
    return status, answer


def same_answer(kind: str, a: dict, b: dict) -> bool:
    if kind == BOOKING:
        return a.get("basket") == b.get("basket") and a.get("items") == b.get("items")
    return (a.get("receipt_number"), a.get("amount_cents"), a.get("kind")) == (
        b.get("receipt_number"), b.get("amount_cents"), b.get("kind"))


# --- the checker ----------------------------------------------------------------------------------


@dataclass
class Findings:
    acknowledged: int = 0
    unknown: int = 0
    lost: list = field(default_factory=list)  # acknowledged, not in the database
    contradicted: list = field(default_factory=list)  # in the database, but not what the client was told
    overbooked: list = field(default_factory=list)
    ledger: list = field(default_factory=list)  # booked counter != active bookings
    twice: list = field(default_factory=list)  # a key that acted more than once
    replay_mismatch: list = field(default_factory=list)
    unanswered: list = field(default_factory=list)
    refused: list = field(default_factory=list)
    receipts_with_gaps: list = field(default_factory=list)
    overallocated: list = field(default_factory=list)

    def problems(self, *, include_lost: bool = True) -> dict:
        out = {k: v for k, v in self.__dict__.items() if isinstance(v, list) and v}
        if not include_lost:
            out.pop("lost", None)
        return out


def check(db_url: str, organisation: int, requests: list[Request]) -> Findings:
    f = Findings()
    with psycopg.connect(db_url) as conn:
        baskets = {}
        for key, household, status, result, pk in conn.execute(
                "SELECT idempotency_key, household_id, status, result, id FROM bookings_basket "
                "WHERE organisation_id = %s", [organisation]):
            baskets.setdefault((household, key), []).append((status, result, pk))
        payments = {}
        for key, number, amount, kind in conn.execute(
                "SELECT idempotency_key, receipt_number, amount_cents, kind FROM billing_payment "
                "WHERE organisation_id = %s", [organisation]):
            payments.setdefault(key, []).append((number, amount, kind))
        bookings = {pk: status for pk, status in conn.execute(
            "SELECT id, status FROM bookings_booking WHERE organisation_id = %s", [organisation])}
        for _part, session, cap, booked, active in conn.execute(
                "SELECT p.id, p.session_id, p.capacity, p.booked, "
                "(SELECT count(*) FROM bookings_booking b WHERE b.session_id = p.session_id AND b.status = 'booked') "
                "+ (SELECT count(*) FROM bookings_waitlistentry w WHERE w.session_id = p.session_id "
                "   AND w.status = 'offered') "
                "FROM bookings_sessionpart p WHERE p.organisation_id = %s", [organisation]):
            if booked > cap or active > cap:
                f.overbooked.append((session, cap, booked, active))
            if booked != active:
                f.ledger.append((session, booked, active))
        answers = {}
        for (refs,) in conn.execute("SELECT refs FROM journal_entry WHERE chain = %s AND "
                                    "operation = 'bookings.basket.answer'", [organisation]):
            basket_ref = next((r for r in refs if r.startswith("bookings.basket:")), None)
            answers[basket_ref] = answers.get(basket_ref, 0) + 1
        f.twice += [ref for ref, n in answers.items() if n > 1]
        numbers = sorted(int(n.rsplit("-", 1)[1]) for ps in payments.values() for n, _a, _k in ps)
        if numbers and numbers != list(range(1, len(numbers) + 1)):
            f.receipts_with_gaps.append((numbers[:3], len(numbers), numbers[-1]))
        for pk, amount, allocated in conn.execute(
                "SELECT p.id, p.amount_cents, COALESCE(SUM(a.amount_cents), 0) FROM billing_payment p "
                "LEFT JOIN billing_allocation a ON a.payment_id = p.id WHERE p.organisation_id = %s "
                "GROUP BY p.id, p.amount_cents", [organisation]):
            if allocated > amount:
                f.overallocated.append((pk, amount, allocated))
    for req in requests:
        if req.outcome == "refused":
            f.refused.append((req.kind, req.key, req.status, req.answer))
            continue
        if req.kind == BOOKING:
            rows = baskets.get((req.family["household"], req.key), [])
            if len(rows) > 1:
                f.twice.append(req.key)
            row = rows[0] if rows else None
        else:
            rows = payments.get(req.key, [])
            if len(rows) > 1:
                f.twice.append(req.key)
            row = rows[0] if rows else None
        if req.outcome == "acknowledged":
            f.acknowledged += 1
            if row is None:
                f.lost.append((req.kind, req.key, req.status))
                continue
            if req.kind == BOOKING:
                if row[2] != req.answer.get("basket"):
                    f.contradicted.append((req.key, "basket id", req.answer.get("basket"), row[2]))
                told = req.answer.get("items") if req.status == 200 else None
                if told and (row[0] != "done" or row[1]["items"] != told):
                    f.contradicted.append((req.key, "answer", told, row[1]))
                for item in (told or []):
                    if item.get("outcome") == "booked" and bookings.get(item.get("booking")) != "booked":
                        f.contradicted.append((req.key, "booking", item.get("booking")))
            elif (row[0], row[1]) != (req.answer.get("receipt_number"), req.answer.get("amount_cents")):
                f.contradicted.append((req.key, row, req.answer.get("receipt_number")))
        else:
            f.unknown += 1
        for status, answer in req.replays:
            if status not in (200, 201):
                f.unanswered.append((req.kind, req.key, status, answer))
        if len(req.replays) >= 2 and not same_answer(req.kind, req.replays[0][1], req.replays[1][1]):
            f.replay_mismatch.append((req.key, req.replays[0], req.replays[1]))
        if req.replays and req.outcome == "acknowledged" and req.kind != BOOKING and \
                not same_answer(req.kind, req.answer, req.replays[0][1]):
            f.replay_mismatch.append((req.key, req.answer, req.replays[0]))
    return f
