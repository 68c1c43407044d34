"""The fault scenarios: traffic through the signed webhook while Redis, PostgreSQL or the worker is taken away.

Each scenario runs on a :class:`tests.support.fault_stack.FaultStack`, breaks one thing during traffic, lets the
product heal itself (no step of ours restarts anything but the broken server), and returns a :class:`Result`:
the :class:`tests.support.fault_checks.Ledger` (processed once, one reply per turn) and the recovery time,
seconds from the moment the service was back until every message accepted before that moment was in a done
turn with its replies sent. Sizes come from :class:`Size` (``SMALL`` in CI, ``FULL`` on demand).
Waits are liveness timeouts, not timing assertions: a scenario that does not heal within them fails.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from tests.support.fault_checks import Ledger, backlog_cleared, ledger
from tests.support.fault_stack import FaultStack, wa_id
from tests.support.payloads import envelope, signed, text_message
from tests.support.stack import SECRET

#: Words the fault traffic sends: deterministic turns with one reply each, a few graph steps.
WORDS = ("help", "status", "help me", "what can you do", "status please")


@dataclass(frozen=True)
class Size:
    """How big a run is.

    Attributes:
        chats: requesters sending; ``rate``: messages per second over all chats.
        outage: seconds Redis or PostgreSQL stays down; ``lead``/``tail``: seconds of traffic before/after it.
        kills: worker SIGKILLs.
        slow_send: seconds the provider stand-in takes per request in the outage and kill scenarios (so that a
            fault can land while a send waits for its answer).
        duplicate_payloads: distinct webhook payloads delivered 5 times each, concurrently.
        heal_timeout: longest wait for the scenario to heal (liveness, not the target: the target is <= 15 s).
    """

    chats: int = 8
    rate: float = 6.0
    outage: float = 8.0
    lead: float = 2.0
    tail: float = 2.0
    kills: int = 4
    slow_send: float = 0.8
    duplicate_payloads: int = 30
    heal_timeout: float = 60.0


SMALL = Size()
FULL = Size(
    chats=40,
    rate=20.0,
    outage=8.0,
    lead=5.0,
    tail=10.0,
    kills=20,
    slow_send=1.5,
    duplicate_payloads=200,
    heal_timeout=180.0,
)


@dataclass
class Result:
    """A scenario's outcome: its ledger, recovery seconds, and notes (worker restarts, webhook answers)."""

    name: str
    ledger: Ledger
    recovery: float | None
    notes: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        """One printable line of figures."""
        rec = "n/a" if self.recovery is None else f"{self.recovery:.1f}s"
        verdict = "PASS" if not self.ledger.problems() else "FAIL: " + "; ".join(self.ledger.problems())
        return f"[{self.name}] {self.ledger.summary()} recovery={rec} {self.notes} -> {verdict}"


class Traffic:
    """Text messages from ``chats`` requesters at ``rate`` per second, each redelivered until answered 200.

    The way Meta delivers: a 5xx or a refused connection is retried (here every 0.5 s, Meta backs off longer);
    a 200 means the message is durable. :attr:`accepted` maps wamid -> monotonic time of its 200.
    """

    def __init__(self, url: str, chats: int, rate: float, seed: int = 11) -> None:
        self.url, self.chats, self.rate = url, chats, rate
        self.accepted: dict[str, float] = {}
        self.answers: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random(seed)
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="traffic")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending new messages and wait until every one sent so far was accepted."""
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def accepted_before(self, t: float) -> set[str]:
        with self._lock:
            return {w for w, at in self.accepted.items() if at <= t}

    def wamids(self) -> set[str]:
        with self._lock:
            return set(self.accepted)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            due = t0 + self._n / self.rate
            if (pause := due - time.monotonic()) > 0:
                time.sleep(pause)
            chat = self._n % self.chats
            msg = text_message(wa_id(chat), self._rng.choice(WORDS), mid=f"wamid.fault{self._n:07d}")
            self._pool.submit(self._deliver, envelope([msg]), msg["id"])
            self._n += 1

    def _deliver(self, payload: dict[str, object], mid: str) -> None:
        body, headers = signed(payload, SECRET)
        with httpx.Client(timeout=15) as client:
            while True:
                try:
                    status = client.post(self.url + "/webhooks/meta", content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.answers[status] = self.answers.get(status, 0) + 1
                    if status == 200:
                        self.accepted[mid] = time.monotonic()
                        return
                time.sleep(0.5)


def wait_until(
    cond: Callable[[], bool], timeout: float, what: str, stack: FaultStack, wamids: set[str] | None = None
) -> float:
    """Poll ``cond`` every 0.2 s; returns the monotonic time it held.

    Raises:
        AssertionError: not within ``timeout`` seconds; says where the messages are (when ``wamids`` is given)
            and what ``procure serve`` logged.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic()
        time.sleep(0.2)
    state = ""
    if wamids is not None:
        try:
            now = ledger(stack.database_url, stack.graph, wamids)
            state = f"{now.summary()}; {now.problems()}\n"
        except Exception as exc:
            state = f"(ledger unreadable: {exc})\n"
    raise AssertionError(
        f"{what}: not within {timeout:.0f} s (liveness)\n{state}procure serve says:\n{stack.log_tail()}"
    )


def settle(stack: FaultStack, size: Size, wamids: set[str], quiet: float = 2.0) -> Ledger:
    """Wait until every accepted message is processed and replied to, then a quiet moment for stray sends."""
    wait_until(lambda: _settled(stack, wamids), size.heal_timeout, "every message processed and replied", stack, wamids)
    time.sleep(quiet)  # a duplicate send would arrive now
    return ledger(stack.database_url, stack.graph, wamids)


def _settled(stack: FaultStack, wamids: set[str]) -> bool:
    try:
        return ledger(stack.database_url, stack.graph, wamids).settled()
    except Exception:  # the database may still be restarting
        return False


def _outage(stack: FaultStack, size: Size, name: str, down: Callable[[], None], up: Callable[[], None]) -> Result:
    stack.reset()
    stack.graph.slow_sends(size.slow_send)  # the outage starts while a send waits for its answer
    traffic = Traffic(stack.url, size.chats, size.rate).start()
    try:
        time.sleep(size.lead)
        deadline = time.monotonic() + 10
        while stack.graph.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        in_flight = stack.graph.in_flight
        down()
        stack.graph.fast()  # the recovery measured is the product's, not a slow provider's
        time.sleep(size.outage)
        up()
        back = time.monotonic()
        time.sleep(size.tail)
    finally:
        traffic.stop()
    before = traffic.accepted_before(back)
    healed = wait_until(
        lambda: backlog_cleared(stack.database_url, before), size.heal_timeout, "backlog cleared", stack, before
    )
    result = Result(name, settle(stack, size, traffic.wamids()), healed - back, {"webhook_answers": traffic.answers})
    result.notes["accepted_before_back"] = len(before)
    result.notes["sends_in_flight_at_outage"] = in_flight
    result.notes["all_settled_after_back_s"] = round(time.monotonic() - back - 2.0, 1)
    return result


def redis_outage(stack: FaultStack, size: Size = SMALL) -> Result:
    """Redis stopped for ``size.outage`` seconds, from a moment a send is in flight, while messages keep arriving."""
    return _outage(stack, size, "redis outage", stack.stop_redis, stack.start_redis)


def postgres_outage(stack: FaultStack, size: Size = SMALL) -> Result:
    """PostgreSQL stopped for ``size.outage`` s from a moment a send is in flight (its answer comes while it is down).

    The send went out; the worker cannot record its answer. The provider's status webhook (with our key) is
    answered 503 until the database is back and redelivered after, as Meta does: the reply must not go twice.
    """
    return _outage(stack, size, "postgres outage", stack.stop_postgres, stack.start_postgres)


def worker_kills(stack: FaultStack, size: Size = SMALL, seed: int = 7) -> Result:
    """The worker SIGKILLed ``size.kills`` times at random points, every other kill while a send is in flight.

    The provider stand-in answers each request after ``size.slow_send`` seconds (the message counts as sent when
    it answers, whether or not the worker is still there to read the answer). After each kill ``procure serve``
    must bring a worker back by itself; recovery is measured from the moment the worker after the last kill polls
    the queue again (``worker_back_max_s``: the longest kill -> polling again, supervisor backoff included).
    """
    rng = random.Random(seed)
    stack.reset()
    stack.graph.slow_sends(size.slow_send)
    traffic = Traffic(stack.url, size.chats, size.rate).start()
    restarts: list[float] = []
    during_send, back = 0, time.monotonic()
    try:
        time.sleep(size.lead)
        for i in range(size.kills):
            if i % 2 == 0:  # wait (a while) for a send in flight, then kill during it
                deadline = time.monotonic() + 10
                while stack.graph.in_flight == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                during_send += stack.graph.in_flight > 0
            else:
                time.sleep(rng.uniform(0.1, 2.5))
            killed = stack.kill_worker()
            assert killed, f"no worker to kill (kill {i + 1}); procure serve says:\n{stack.log_tail()}"
            t = time.monotonic()
            back = wait_until(stack.worker_ready, 60, f"a worker polling again after kill {i + 1}", stack)
            restarts.append(back - t)
            time.sleep(rng.uniform(0.5, 3.0))
        time.sleep(size.tail)
    finally:
        traffic.stop()
    before = traffic.accepted_before(back)
    healed = wait_until(
        lambda: backlog_cleared(stack.database_url, before), size.heal_timeout, "backlog cleared", stack, before
    )
    notes: dict[str, object] = {
        "kills": size.kills,
        "during_send": during_send,
        "worker_back_max_s": round(max(restarts), 1),
    }
    return Result(
        "worker SIGKILL", settle(stack, size, traffic.wamids(), quiet=size.slow_send + 2), healed - back, notes
    )


def duplicate_deliveries(stack: FaultStack, size: Size = SMALL, copies: int = 5) -> Result:
    """Each of ``size.duplicate_payloads`` webhook payloads delivered ``copies`` times at once (Meta's redelivery)."""
    stack.reset()
    payloads = []
    for n in range(size.duplicate_payloads):
        chat = n % size.chats
        msgs = [text_message(wa_id(chat), WORDS[(n + j) % len(WORDS)], mid=f"wamid.dup{n:05d}.{j}") for j in range(2)]
        payloads.append(signed(envelope(msgs), SECRET))
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def deliver(body: bytes, headers: dict[str, str], together: threading.Barrier) -> None:
        with httpx.Client(timeout=30) as client:
            together.wait()  # the copies of one payload leave together
            status = client.post(stack.url + "/webhooks/meta", content=body, headers=headers).status_code
        with lock:
            answers[status] = answers.get(status, 0) + 1

    t0 = time.monotonic()
    # Tasks start in order, so a payload's copies never wait on threads held by a later payload's copies.
    with ThreadPoolExecutor(copies * 4) as pool:
        futures = []
        for body, headers in payloads:
            together = threading.Barrier(copies)
            futures += [pool.submit(deliver, body, headers, together) for _ in range(copies)]
        for f in futures:
            f.result()  # a delivery that raised fails the scenario
    wamids = {f"wamid.dup{n:05d}.{j}" for n in range(size.duplicate_payloads) for j in range(2)}
    healed = wait_until(
        lambda: backlog_cleared(stack.database_url, wamids), size.heal_timeout, "all processed", stack, wamids
    )
    result = Result("5x duplicates", settle(stack, size, wamids), None, {"webhook_answers": answers})
    result.notes["all_processed_after_s"] = round(healed - t0, 1)
    return result


SCENARIOS: dict[str, Callable[[FaultStack, Size], Result]] = {
    "redis": redis_outage,
    "postgres": postgres_outage,
    "kill": worker_kills,
    "duplicates": duplicate_deliveries,
}
