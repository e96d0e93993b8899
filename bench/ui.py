"""What rendering a page costs: the web application's pages beside the same reads through
the JSON API, under the same load, in one run.

Seeds the demo partnership (``accord demo``) in a fresh SQLite database, starts
``accord serve`` on a free loopback port (one uvicorn process, projections in-process),
signs in to the web application through its sign-in form, then alternates (twice each,
so that a drift of the machine shows) open-loop load phases of:

1. the police's chronology of a client:
   ``GET /v1/clients/{id}/chronology?purpose=offender_management`` (bearer token) beside
   the client page ``GET /ui/clients/{id}?purpose=offender_management`` (session cookie),
   which shows that chronology, over every demo client the police see for that purpose,
   round-robin;
2. the children's services safeguarding team's alert inbox: the open alerts, most urgent
   first, 50 a page (``GET /v1/alerts?status=...&sort=urgency&limit=50``) beside the inbox
   page ``GET /ui/alerts``, which asks the same (and the team, for its assignee filter).

Both sides of each pair make the same read through the same route function (the page
calls the API's), so the difference is the page's own work: the session, the template,
the bytes. Target (issue 15): rendering adds at most 20% to the API's p50. The floor
route beside them (``GET /v1/event-types``, no database) shows what the server and the
load generator cost on their own. A script, not a test: nothing asserts on timings.

    .venv/bin/python bench/ui.py --rate 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from view import (  # bench/view.py
    ACCORD,
    PURPOSE,
    bench_env,
    demo_tokens,
    free_port,
    load,
    percentile,
    stop,
    summary,
    visible_clients,
    wait_until_serving,
)

POLICE = ("northshire-police", "practitioner")
CHILDRENS = ("northshire-childrens", "safeguarding")
#: The client page and the inbox, and the API reads they make.
CLIENT_PAGE = "/ui/clients/{id}?purpose=" + PURPOSE
CLIENT_API = "/v1/clients/{id}/chronology?purpose=" + PURPOSE
INBOX_PAGE = "/ui/alerts"
INBOX_API = ("/v1/alerts?status=escalated&status=raised&status=acknowledged"
             "&sort=urgency&limit=50")
FLOOR = "/v1/event-types"
TARGET = 1.20


def session_cookie(base: str, token: str) -> str:
    """Signs in through the sign-in form, as a browser does; the session cookie."""
    with httpx.Client(base_url=base, follow_redirects=False) as http:
        form = http.get("/ui/sign-in")
        check = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert check, "no sign-in form"
        answer = http.post("/ui/sign-in", data={"token": token, "csrf_token": check.group(1),
                                                "next_path": "/ui"})
        if answer.status_code != 303:
            raise SystemExit(f"could not sign in: {answer.status_code}")
        return f"accord_session={http.cookies['accord_session']}"


def phase(base: str, token: str, paths: list[str], rate: float, seconds: float,
          cookie: str | None = None) -> dict[str, Any]:
    result = asyncio.run(load(base, token, paths, rate, seconds, connections=16, cookie=cookie))
    if result["errors"]:
        raise SystemExit(f"{paths[0]}: {len(result['errors'])} errors "
                         f"{sorted(set(result['errors']))}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10, help="each phase's length")
    parser.add_argument("--clients", type=int, default=300, help="demo clients to seed")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="accord-bench-ui-"))
    db = workdir / "bench.db"
    env = bench_env(workdir)
    print(f"web application benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; server: accord "
          f"serve (one uvicorn process, SQLite, projections in-process)", flush=True)
    subprocess.run([*ACCORD, "keys", "generate"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*ACCORD, "demo", "--clients", str(args.clients)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    tokens = demo_tokens(workdir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen([*ACCORD, "serve", "--port", str(port)], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, base)
        clients = visible_clients(db, base, tokens[POLICE])
        if not clients:
            raise SystemExit("the police see no demo client for offender_management")
        police_cookie = session_cookie(base, tokens[POLICE])
        childrens_cookie = session_cookie(base, tokens[CHILDRENS])
        pairs = [
            ("client view", tokens[POLICE], police_cookie,
             [CLIENT_API.format(id=c) for c in clients],
             [CLIENT_PAGE.format(id=c) for c in clients]),
            ("alert inbox", tokens[CHILDRENS], childrens_cookie, [INBOX_API], [INBOX_PAGE]),
        ]
        print(f"\nopen loop at {args.rate:.0f}/s, {args.seconds:.0f} s a phase, API and page "
              f"alternated twice; {len(clients)} police-visible clients round-robin")
        floor = phase(base, tokens[POLICE], [FLOOR], args.rate, args.seconds)
        print(f"  floor {FLOOR:<38} {summary(floor['from_send'])}")
        for name, token, cookie, api_paths, page_paths in pairs:
            phase(base, token, api_paths, args.rate, 2)  # warm up
            phase(base, token, page_paths, args.rate, 2, cookie)
            api_p50: list[float] = []
            page_p50: list[float] = []
            for round_ in (1, 2):
                api = phase(base, token, api_paths, args.rate, args.seconds)
                page = phase(base, token, page_paths, args.rate, args.seconds, cookie)
                api_p50.append(percentile(api["from_send"], 50))
                page_p50.append(percentile(page["from_send"], 50))
                print(f"  {name} round {round_}: API  {summary(api['from_send'])}")
                print(f"  {name} round {round_}: page {summary(page['from_send'])}")
            ratio = sum(page_p50) / sum(api_p50)
            print(f"  {name}: page p50 / API p50 = {ratio:.2f} (target <= {TARGET:.2f}: "
                  f"{'met' if ratio <= TARGET else 'NOT met'})", flush=True)
    finally:
        stop(server)
        output = log.read_text(errors="replace")
        if "Traceback" in output:
            print("\nserver tracebacks:\n" + output[-4000:], file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
