"""Flash-sale claims/s and p99 at 64 connections: shequn (2 server processes, Redis engine, ASGI fast path)
vs a naive FastAPI + PostgreSQL peer (2 processes, `UPDATE … WHERE stock > 0` + order INSERT per request),
measured in the same run against the same PostgreSQL, with many distinct members (pre-created sessions).

Servers: `uvicorn --workers 2` (uvloop + httptools, both in the lockfile; granian is not). Load: Debian's
`wrk` (C; `apt-get install -y wrk`) with a Lua script that rotates member tokens, sends a fresh
Idempotency-Key per request, counts statuses and prints latency percentiles. Afterwards: zero-oversell
checks (shequn: database sold == reservations == 201 replies, Redis left == stock − sold; peer: orders ==
stock taken, stock never negative).

    .venv/bin/python bench/bench_flash.py --duration 10
    .venv/bin/python bench/bench_flash.py --duration 30 --pg postgresql://postgres@127.0.0.1/flash_bench \
        --redis redis://127.0.0.1:6379/12
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = Path(__file__).parent / "out"

WRK_LUA = r"""
local tokens, n, counter = {}, 0, 0
statuses, tid = {}, 0  -- globals: setup() and done() read them through thread:get
local path = "%(path)s"
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function init(args)
  for line in io.lines("%(tokens)s") do n = n + 1; tokens[n] = line end
  counter = (tid * 7919) %% n
end
function request()
  counter = counter + 1
  local i = (counter %% n) + 1
  -- a phone keeps its device cookie: send one per member, as browsers do
  return wrk.format("POST", path, {["Authorization"] = "Member " .. tokens[i], ["Cookie"] = "shequn_device=bench" .. i,
    ["Idempotency-Key"] = "%(run)s-" .. tid .. "-" .. counter, ["Content-Type"] = "application/json"}, "{}")
end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[tostring(k)] = (agg[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, '"' .. k .. '":' .. v) end
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d,"errors":{"connect":%%d,"read":%%d,"write":%%d,"timeout":%%d,"status":%%d},"statuses":{%%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, e.status, table.concat(parts, ",")))
end
"""


def _configure(pg: str, redis_url: str, var_dir: str) -> None:
    os.environ.update(
        SHEQUN_DATABASE_URL=pg, SHEQUN_REDIS_URL=redis_url, SHEQUN_JOBS_MODE="immediate", SHEQUN_VAR_DIR=var_dir
    )


def prepare(pg: str, redis_url: str, members: int, stock: int, limit: int, token_file: Path) -> dict[str, Any]:
    """Fresh schema, a brand, `members` customers with member sessions, a live sale loaded into Redis."""
    from sqlalchemy import create_engine, insert, text

    from shequn.audience.models import Customer, MemberSession
    from shequn.core import db as core_db
    from shequn.core.clock import utcnow
    from shequn.core.migrate import upgrade
    from shequn.core.security import hash_token
    from shequn.identity import service as identity_service
    from shequn.promotions.flash import redis_store, service
    from shequn.promotions.flash.hotpath import prime_session
    from shequn.promotions.flash.schemas import SaleIn

    engine = create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    core_db.reset_engine()
    upgrade()
    redis_store.client(redis_url).flushdb()
    now = utcnow()
    tokens = [f"sqm_bench{i}_{secrets.token_urlsafe(12)}" for i in range(members)]
    with core_db.new_session() as s:
        _op, ws = identity_service.bootstrap_owner(
            s,
            email="bench@example.com",
            password="password-123",
            name="Bench",
            workspace_slug="bench",
            workspace_name="Bench",
        )
        ids = list(
            s.scalars(
                insert(Customer).returning(Customer.id),
                [{"workspace_id": ws.id, "name": f"m{i}", "phone_masked": "138****0000"} for i in range(members)],
            )
        )
        s.execute(
            insert(MemberSession),
            [
                {
                    "workspace_id": ws.id,
                    "customer_id": cid,
                    "token_hash": hash_token(tok),
                    "device_id": "",
                    "created_at": now,
                    "last_seen_at": now,
                    "expires_at": now + timedelta(days=1),
                }
                for cid, tok in zip(ids, tokens, strict=True)
            ],
        )
        sale = service.create_sale(
            s,
            workspace_id=ws.id,
            data=SaleIn(
                title="bench",
                sku="BENCH-1",
                flash_price=9900,
                stock=stock,
                per_customer_limit=limit,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(hours=2),
                reservation_ttl_min=60,
            ),
        )
        service.publish_sale(s, workspace_id=ws.id, sale_id=sale.id)
        s.commit()  # publish loads the sale into Redis after commit
        token_file.write_text("\n".join(tokens) + "\n")
    # Members open the sale page before it starts; each view caches their session for the claim fast path.
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:  # each view waits on PostgreSQL: overlap the waits
        list(pool.map(prime_session, tokens))
    print(f"primed {members} member sessions (page views) in {time.perf_counter() - t0:.1f} s")
    return {"workspace_id": ws.id, "sale_id": sale.id}


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def measured(
    proc: subprocess.Popen[bytes], name: str, url: str, path: str, tokens: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """One measured wrk run with the servers' CPU time per decided claim (a figure load on the machine
    does not distort as much as claims/s)."""
    before = cpu_seconds(proc.pid)
    result = summarize(name, run_wrk(url, path, tokens, args.duration, args.connections, args.threads))
    spent = cpu_seconds(proc.pid) - before
    decided = result["decided_per_s"] * args.duration
    result["server_cpu_ms_per_claim"] = round(1000 * spent / decided, 3) if decided else None
    return result


def start_server(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start a uvicorn with 2 workers and wait until it answers."""
    cmd = [str(BIN / "uvicorn"), *args, "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"server on port {port} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started here (by its own pid)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_wrk(url: str, path: str, tokens: Path, seconds: float, connections: int, threads: int) -> dict[str, Any]:
    """One wrk run; its Lua script's JSON line."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_LUA % {"path": path, "tokens": str(tokens), "run": secrets.token_hex(4)})
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, int(seconds))}s", "--latency"]
    out = subprocess.run([*cmd, "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 120)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return dict(json.loads(line[8:]))
    raise SystemExit(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


def summarize(name: str, res: dict[str, Any]) -> dict[str, Any]:
    """Decided claims/s (2xx and 409 replies), p99 and the status mix."""
    st = {int(k): v for k, v in res["statuses"].items()}
    decided = sum(v for k, v in st.items() if 200 <= k < 300 or k == 409)
    secs = res["duration_us"] / 1e6
    return {
        "name": name,
        "decided_per_s": round(decided / secs, 1),
        "p50_ms": round(res["p50_us"] / 1000, 2),
        "p99_ms": round(res["p99_us"] / 1000, 2),
        "requests": res["requests"],
        "statuses": st,
        "errors": res["errors"],
    }


def wait_drained(redis_url: str, timeout_s: float = 120) -> None:
    """Wait until the stream writer has written and acknowledged every won claim."""
    from shequn.promotions.flash import redis_store

    r = redis_store.client(redis_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        groups = r.xinfo_groups(redis_store.STREAM)
        if groups and all((g.get("lag") or 0) == 0 and g["pending"] == 0 for g in groups):
            return
        time.sleep(0.5)
    print("warning: the stream was not drained in time", file=sys.stderr)


def check_shequn(redis_url: str, sale_id: int, ok_replies: int) -> dict[str, Any]:
    """Zero oversell: sold == reservations == won replies <= stock, and Redis left == stock − sold."""
    from sqlalchemy import func, select

    from shequn.core import db as core_db
    from shequn.promotions.flash import redis_store, service
    from shequn.promotions.flash.models import FlashReservation, FlashSale

    with core_db.new_session() as s:
        sale = s.get(FlashSale, sale_id)
        assert sale is not None
        rows = s.scalar(select(func.count(FlashReservation.id)).where(FlashReservation.sale_id == sale_id)) or 0
        over_limit = s.scalar(
            select(func.count()).select_from(
                select(FlashReservation.customer_id)
                .where(FlashReservation.sale_id == sale_id)
                .group_by(FlashReservation.customer_id)
                .having(func.sum(FlashReservation.qty) > sale.per_customer_limit)
                .subquery()
            )
        )
        check = service.oversell_check(s, sale)
        left = redis_store.stock_left(redis_store.client(redis_url), sale_id)
        # ok_replies may trail sold by claims still in flight when wrk stopped; the books must agree exactly.
        ok = check.ok and rows == sale.sold and ok_replies <= sale.sold <= sale.stock and over_limit == 0
        ok = ok and left is not None and left == sale.stock - sale.sold
        return {
            "stock": sale.stock,
            "sold": sale.sold,
            "reservations": rows,
            "ok_replies": ok_replies,
            "redis_left": left,
            "customers_over_limit": over_limit,
            "zero_oversell": bool(ok),
        }


def check_naive(pg: str, stock: int, ok_replies: int) -> dict[str, Any]:
    """The peer's books: orders == units taken == won replies, stock never below zero."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        left = conn.execute(text("SELECT stock FROM naive_flash_stock WHERE id = 1")).scalar_one()
        orders = conn.execute(text("SELECT count(*) FROM naive_flash_orders")).scalar_one()
    engine.dispose()
    return {
        "stock": stock,
        "left": left,
        "orders": orders,
        "ok_replies": ok_replies,
        "zero_oversell": bool(left >= 0 and orders == stock - left),
    }


def main() -> None:
    """Run both servers in turn under the same load and print the comparison."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="measured seconds per server")
    p.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring (session caches)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--stock", type=int, default=10_000)
    p.add_argument("--limit", type=int, default=2)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/flash_bench")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="a Redis db the bench may flush")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--skip-peer", action="store_true")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    _ensure_database(args.pg)
    var_dir = tempfile.mkdtemp(prefix="shequn-bench-flash-")
    _configure(args.pg, args.redis, var_dir)
    sys.path.insert(0, str(ROOT / "src"))
    tokens = Path(var_dir) / "tokens.txt"
    ids = prepare(args.pg, args.redis, args.members, args.stock, args.limit, tokens)
    load_before = os.getloadavg()
    env = {**os.environ, "SHEQUN_JOBS_MODE": "embedded", "SHEQUN_ENV": "development"}
    results: list[dict[str, Any]] = []

    server = start_server(["shequn.app:create_app", "--factory"], env, args.port)
    path = f"/api/v1/m/flash/{ids['sale_id']}/claim"
    url = f"http://127.0.0.1:{args.port}"
    try:
        run_wrk(url, path, tokens, args.warmup, args.connections, args.threads)
        shequn = measured(server, "shequn (Redis engine, fast path)", url, path, tokens, args)
        wait_drained(args.redis)
    finally:
        stop(server)
    total_ok = _won(args.redis, ids["sale_id"])
    shequn["check"] = check_shequn(args.redis, ids["sale_id"], total_ok)
    results.append(shequn)

    if not args.skip_peer:
        sys.path.insert(0, str(Path(__file__).parent))
        os.environ["NAIVE_DATABASE_URL"] = args.pg
        import flash_naive_peer

        flash_naive_peer.reset(args.stock)
        flash_naive_peer.engine.dispose()
        peer_env = {**env, "NAIVE_DATABASE_URL": args.pg}
        peer = start_server(["--app-dir", str(Path(__file__).parent), "flash_naive_peer:app"], peer_env, args.port + 1)
        purl = f"http://127.0.0.1:{args.port + 1}"
        try:
            warm = run_wrk(purl, "/claim/1", tokens, args.warmup, args.connections, args.threads)
            naive = measured(peer, "naive FastAPI + PostgreSQL", purl, "/claim/1", tokens, args)
        finally:
            stop(peer)
        won = int(warm["statuses"].get("201", 0)) + naive["statuses"].get(201, 0)
        naive["check"] = check_naive(args.pg, args.stock, won)
        results.append(naive)

    _print(results, args, load_before)


def _won(redis_url: str, sale_id: int) -> int:
    """Won claims over warm-up and measured run (Redis counts every decided outcome)."""
    from shequn.promotions.flash import redis_store

    return int(redis_store.read_stats(redis_store.client(redis_url), sale_id).get("ok", 0))


def _ensure_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{u.database}"')


def _print(results: list[dict[str, Any]], args: argparse.Namespace, load_before: tuple[float, float, float]) -> None:
    load_after = os.getloadavg()
    print(
        f"\nflash-sale claims: {args.connections} connections, {args.members} members, stock {args.stock}, "
        f"limit {args.limit}, {args.duration:.0f} s measured after {args.warmup:.0f} s warm-up; "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)"
    )
    print(f"{'server':38} {'decided/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/claim':>12}  statuses / zero oversell")
    for r in results:
        print(
            f"{r['name']:38} {r['decided_per_s']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['server_cpu_ms_per_claim']!s:>12}  {r['statuses']} "
            f"{'OK' if r['check']['zero_oversell'] else 'OVERSOLD'}"
        )
    if len(results) == 2 and results[1]["decided_per_s"]:
        print(f"ratio shequn / naive: {results[0]['decided_per_s'] / results[1]['decided_per_s']:.2f}×")
    OUT.mkdir(exist_ok=True)
    (OUT / "flash.json").write_text(json.dumps({"results": results, "load": [load_before, load_after]}, indent=2))


if __name__ == "__main__":
    main()
