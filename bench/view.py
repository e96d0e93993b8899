"""Latency of the consent-filtered client view under load, and of a withdrawal reaching it.

Seeds the demo partnership (``accord demo``) in a fresh SQLite database, starts
``accord serve`` as its own process on a free loopback port (projections in-process, the
embedded default), then:

1. Load: ``GET /v1/clients/{id}/view?purpose=offender_management`` as the police
   practitioner, over every demo client the police currently see for that purpose (by
   the client's consent under the treatment provider's agreement), round-robin. Open
   loop: request n is sent at ``start + n / rate`` whether or not earlier ones have
   answered. Latency is reported from the send (what the server and the loopback cost)
   and from the scheduled time (which also counts any lag of this Python client in
   sending; an honest upper bound). Any non-200 or transport error counts as an error.
2. Withdrawal: a fresh client is registered over the API with a criminal-justice order
   and an appointment; each round gives the police consent, waits until the police view
   shows the facts, then times from just before ``POST .../consents/{id}/withdraw`` to
   the first police view (polled every 5 ms) without them: a 404 or 403 (no basis left
   for the purpose) or an answer with no facts.

3. The access record's cost (``--record-cost RATE``, default 50/s): the same load against
   the same database, alternating twice between ``accord serve`` and a bench-only server
   whose ``record_access`` does nothing (patched in this script's subprocess, never in the
   product), so the view's latency with and without its access record come from one run.

Targets (DESIGN.md): p99 under 25 ms at 200 requests/s; withdrawal visible in under 1 s.
The server is stopped however this script ends, short of SIGKILL (SIGINT, then SIGKILL
after 15 s), and the temporary directory removed. A script, not a test: nothing asserts
on timings.

    .venv/bin/python bench/view.py --rate 200 --seconds 15 --withdrawals 10
    .venv/bin/python bench/view.py --rate 50 100 150 200   # where does it stop keeping up?
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.demo import demo_nhs_number

ACCORD = [sys.executable, "-m", "api.cli"]
#: ``accord serve`` with the access record of each read switched off: for measuring its
#: cost only. The product has no such switch.
UNRECORDED = [sys.executable, "-c", (
    "import sys; from domain.application import AccordApplication as A; "
    "A.record_access = lambda self, *a, **k: 0; from api.cli import main; "
    "sys.exit(main(sys.argv[1:]))")]
TREATMENT = ("riverside-recovery", "practitioner")
POLICE = ("northshire-police", "practitioner")
PURPOSE = "offender_management"


def bench_env(workdir: Path) -> dict[str, str]:
    """The environment for accord's commands in a benchmark: its own SQLite database and
    key file in ``workdir``, no setting of the caller's, quiet progress."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    return env | {"ACCORD_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                  "ACCORD_KEY_FILE": str(workdir / "kek.key"), "CI": "true"}


def demo_tokens(workdir: Path) -> dict[tuple[str, str], str]:
    """The seeded demo's tokens by (agency, role), from the file ``accord demo`` writes."""
    raw: list[dict[str, Any]] = json.loads((workdir / "demo-tokens.json").read_text())
    return {(t["agency"], t["role"]): t["token"] for t in raw}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(len(ordered) * q / 100)) - 1)]


def summary(values: list[float]) -> str:
    return "   ".join(f"{name} {percentile(values, q):6.1f} ms"
                      for name, q in (("p50", 50), ("p90", 90), ("p99", 99))) + \
        f"   max {max(values):6.1f} ms"


def wait_until_serving(server: subprocess.Popen[bytes], base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"accord serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("accord serve did not start")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def visible_clients(db: Path, base: str, token: str) -> list[str]:
    """Demo clients the police see for the purpose now (checked with one GET each)."""
    with sqlite3.connect(db) as conn:
        candidates = [row[0] for row in conn.execute(
            "SELECT DISTINCT client_id FROM accord_view_rows WHERE agency = ? AND purpose = ?",
            (POLICE[0], PURPOSE))]
    ids = [f"{c[:8]}-{c[8:12]}-{c[12:16]}-{c[16:20]}-{c[20:]}" for c in candidates]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        return [c for c in ids if http.get(f"/v1/clients/{c}/view",
                                           params={"purpose": PURPOSE}).status_code == 200]


class KeepAlivePool:
    """A minimal HTTP/1.1 client over a fixed pool of keep-alive connections.

    The load generator shares the two cores with the server; httpx's per-request CPU
    cost made it, not the server, the bottleneck near 200 requests/s (top showed the
    generator at 100% CPU and the server idle half the time). This costs a fraction."""

    def __init__(self, base: str, token: str, size: int, cookie: str | None = None) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.size = host, int(port), size
        # A web page is asked for with its session cookie; the API with the bearer token.
        credential = f"Cookie: {cookie}" if cookie else f"Authorization: Bearer {token}"
        self.header = (f"Host: {host}\r\n{credential}\r\n\r\n").encode()
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()

    async def get(self, path: str) -> tuple[int, float]:
        """(status, the moment the request was written) for one GET."""
        reader, writer = await self.idle.get()
        sent = time.perf_counter()
        try:
            writer.write(f"GET {path} HTTP/1.1\r\n".encode() + self.header)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            raise
        finally:
            self.idle.put_nowait((reader, writer))
        return status, sent


def view_paths(clients: list[str]) -> list[str]:
    """The police view of each client, for ``load``."""
    return [f"/v1/clients/{client_id}/view?purpose={PURPOSE}" for client_id in clients]


async def load(base: str, token: str, paths: list[str], rate: float,
               seconds: float, connections: int = 64, cookie: str | None = None
               ) -> dict[str, Any]:
    """Open-loop GETs of ``paths`` in turn at ``rate``/s over ``connections`` keep-alive
    connections (with the session ``cookie`` instead of the token, for web pages);
    latencies in ms from the moment each request was written and from its scheduled time
    (which also counts waiting for a free connection)."""
    from_send: list[float] = []
    from_schedule: list[float] = []
    errors: list[str] = []
    pool = KeepAlivePool(base, token, connections, cookie)
    await pool.open()

    async def one(path: str, scheduled: float) -> None:
        try:
            status, sent = await pool.get(path)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            return
        done = time.perf_counter()
        from_send.append((done - sent) * 1000)
        from_schedule.append((done - scheduled) * 1000)
        if status != 200:
            errors.append(str(status))

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(paths[n % len(paths)], scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await pool.close()
    return {"sent": len(tasks), "answered": len(from_send), "elapsed": elapsed,
            "from_send": from_send, "from_schedule": from_schedule, "errors": errors}


def withdrawal_latencies(base: str, tokens: dict[tuple[str, str], str],
                         rounds: int) -> tuple[list[float], list[float]]:
    """(POST to the view without the facts, POST alone) per round, in ms."""
    worker = {"Authorization": f"Bearer {tokens[TREATMENT]}"}
    police = {"Authorization": f"Bearer {tokens[POLICE]}"}
    visible_ms: list[float] = []
    post_ms: list[float] = []
    rng = random.Random(99)
    when = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    with httpx.Client(base_url=base, timeout=10) as http:
        while True:  # a client of our own, with facts the police may see under consent
            response = http.post("/v1/clients", headers=worker, json={"identity": {
                "given_name": "Bench", "family_name": "Withdrawal",
                "date_of_birth": "1985-05-05", "nhs_number": demo_nhs_number(rng),
                "postcode": "NR1 3QU"}})
            if response.status_code != 409:  # 409: the NHS number is a demo client's
                break
        response.raise_for_status()
        client_id = response.json()["client_id"]
        for type_name, data in (("criminal_justice_status",
                                 {"order": "drug_rehabilitation_requirement",
                                  "status": "started"}),
                                ("appointment_attended", {"appointment": "keywork"})):
            http.post(f"/v1/clients/{client_id}/events", headers=worker, json={
                "type": type_name, "occurred_at": when, "data": data}).raise_for_status()
        view_url = f"/v1/clients/{client_id}/view"
        for _ in range(rounds):
            response = http.post(f"/v1/clients/{client_id}/consents", headers=worker, json={
                "recipient_agency": POLICE[0], "purposes": [PURPOSE], "obtained": "written",
                "categories": ["identity", "treatment", "criminal_justice"]})
            response.raise_for_status()
            given = response.json()
            view = http.get(view_url, headers=police,
                            params={"purpose": PURPOSE, "min_position": given["position"]})
            if view.status_code != 200 or not view.json()["facts"]:
                raise SystemExit(f"consent did not reach the police view: {view.text}")
            started = time.perf_counter()
            http.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                      headers=worker, json={"reason": "bench"}).raise_for_status()
            post_ms.append((time.perf_counter() - started) * 1000)
            while True:
                view = http.get(view_url, headers=police, params={"purpose": PURPOSE})
                if view.status_code in (403, 404) or (view.status_code == 200
                                                      and not view.json()["facts"]):
                    break
                if view.status_code != 200:
                    raise SystemExit(f"unexpected {view.status_code}: {view.text}")
                if time.perf_counter() - started > 10:
                    raise SystemExit("withdrawal not visible after 10 s")
                time.sleep(0.005)
            visible_ms.append((time.perf_counter() - started) * 1000)
    return visible_ms, post_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[200],
                        help="requests per second (several: one load phase each, in order)")
    parser.add_argument("--seconds", type=float, default=15, help="how long the load runs")
    parser.add_argument("--clients", type=int, default=300, help="demo clients to seed")
    parser.add_argument("--withdrawals", type=int, default=10, help="withdrawal rounds")
    parser.add_argument("--record-cost", type=float, default=50, metavar="RATE",
                        help="rate for comparing the view with and without its access record "
                             "(0: skip)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="accord-bench-view-"))
    db = workdir / "bench.db"
    env = bench_env(workdir)
    print(f"view benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; server: accord serve "
          f"(one uvicorn process, SQLite, projections in-process)", flush=True)
    started = time.perf_counter()
    subprocess.run([*ACCORD, "demo", "--clients", str(args.clients)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"seeded the demo partnership ({args.clients} clients) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    tokens = demo_tokens(workdir)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"  # a file, not a pipe: uvicorn logs every request
    with log.open("wb") as log_file:
        server = subprocess.Popen([*ACCORD, "serve", "--port", str(port)], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, base)
        clients = visible_clients(db, base, tokens[POLICE])
        if not clients:
            raise SystemExit("the police see no demo client for offender_management")
        asyncio.run(load(base, tokens[POLICE], view_paths(clients), 50, 2))  # warm up connections
        print(f"\nview load: GET /v1/clients/{{id}}/view?purpose={PURPOSE} as the police, "
              f"{len(clients)} clients round-robin")
        for rate in args.rate:
            result = asyncio.run(load(base, tokens[POLICE], view_paths(clients), rate,
                                             args.seconds))
            errors = result["errors"]
            p99 = percentile(result["from_send"], 99)
            print(f"  offered {rate:.0f}/s for {args.seconds:.0f} s: {result['sent']} sent, "
                  f"{result['answered']} answered in {result['elapsed']:.1f} s "
                  f"(achieved {result['answered'] / result['elapsed']:.0f}/s), "
                  f"{len(errors)} errors" + (f" {sorted(set(errors))}" if errors else ""))
            print(f"    latency from send      {summary(result['from_send'])}")
            print(f"    latency from schedule  {summary(result['from_schedule'])}")
            print(f"    p99 < 25 ms: {'met' if p99 < 25 else 'NOT met'}", flush=True)

        visible, posts = withdrawal_latencies(base, tokens, args.withdrawals)
        print(f"\nconsent withdrawal to the fact leaving the police view, "
              f"{len(visible)} rounds (poll every 5 ms)")
        print(f"  withdraw POST alone     median {statistics.median(posts):6.1f} ms   "
              f"max {max(posts):6.1f} ms")
        print(f"  POST to view without    median {statistics.median(visible):6.1f} ms   "
              f"max {max(visible):6.1f} ms")
        print(f"  target < 1000 ms: {'met' if max(visible) < 1000 else 'NOT met'} "
              f"(max {max(visible):.1f} ms)")
    finally:
        stop(server)
        output = log.read_text(errors="replace")
        if "Traceback" in output:
            print("\nserver tracebacks:\n" + output[-4000:], file=sys.stderr)
    try:
        if args.record_cost:
            record_cost(env, workdir, tokens[POLICE], clients, args.record_cost, args.seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def record_cost(env: dict[str, str], workdir: Path, token: str, clients: list[str],
                rate: float, seconds: float) -> None:
    """The view's latency with and without its access record, alternating servers."""
    print(f"\naccess record cost: the same load at {rate:.0f}/s, alternating servers")
    latencies: dict[str, list[float]] = {"with access record": [], "without (bench only)": []}
    for _round in range(2):
        for label, command in (("with access record", ACCORD),
                               ("without (bench only)", UNRECORDED)):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with (workdir / "server.log").open("ab") as log_file:
                server = subprocess.Popen([*command, "serve", "--port", str(port)], env=env,
                                          stdout=log_file, stderr=subprocess.STDOUT)
            try:
                wait_until_serving(server, base)
                asyncio.run(load(base, token, view_paths(clients), rate, 1))  # warm up
                result = asyncio.run(load(base, token, view_paths(clients), rate, seconds))
                latencies[label].extend(result["from_send"])
            finally:
                stop(server)
    for label, values in latencies.items():
        print(f"  {label:22} {summary(values)}")
    with_, without = (statistics.median(v) for v in latencies.values())
    print(f"  median cost of the access record: {with_ - without:+.1f} ms per view")


if __name__ == "__main__":
    main()
