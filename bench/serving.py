"""Benchmark: the scoring service over loopback, next to a bare app on the same Scorer.

Builds a synthetic municipality, trains a model, registers and promotes it in a
temporary STRATUM_HOME, then starts two servers on 127.0.0.1:

* ``bentoml``: the real service (``stratum_ml.serving.service``), with API key
  check, request validation, pydantic responses and an fsync-ed audit record
  per request;
* ``bare``: a plain Starlette app under uvicorn (no auth, no audit, no
  validation) whose ``/score`` calls the same :meth:`Scorer.score` on the same
  model, sources and scoring date, and returns ``ScoredAddress.to_dict()``.

One client (httpx, keep-alive, one request at a time) measures, in rounds that
alternate between the servers so that both see the same machine noise:

* single-address score latency (p50, p99);
* 1,000-address batch throughput, with reasons (TreeSHAP for every address) and
  without (``n_reasons: 0``, the pure serving overhead).

Then, under concurrency (issue 11, item 10), the same single-address ``score``
call (with its three reasons) from 1, 8 and 32 clients at once, each on its own
keep-alive connection sending its next call as soon as the last is answered, for
``--seconds`` per level and server, to three servers side by side: the service with
one worker, the service with ``--workers`` workers (default: the service's default,
one per core up to 2), and the bare app: p50, p99, errors and requests a second. The
load comes from ``wrk`` when it is on the PATH (``apt-get install wrk``: a C load
generator, one thread per core at most, a small Lua script for the POST body and the
key, its ``done`` hook printing the percentiles), else from a small asyncio HTTP/1.1
loop in this process, which takes a good part of a small machine's CPU itself; the
results say which. Either way the clients share the machine's cores with the servers.

The machine is noisy: compare the ratios (bentoml / bare) of one run; the load
average when the run started is written beside the results.

Usage (one command, about five minutes on 2 cores)::

    PYTHONPATH=src python bench/serving.py

Options: ``[--addresses 10000] [--rounds 2] [--single 300] [--batches 8] [--seconds 10]
[--workers N] [--no-wrk] [--results DIR]``. Writes ``bench/results/serving.json`` and
``bench/results/serving.md``. A quick check that it runs end to end (its numbers mean
nothing, so it writes them elsewhere)::

    PYTHONPATH=src python bench/serving.py --addresses 2000 --rounds 1 --single 20 \\
        --batches 1 --seconds 2 --results /tmp/serving-smoke
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
AS_OF = dt.date(2026, 11, 1)  # the synthetic extract date
BATCH = 1000
#: clients at once in the concurrency part
CONCURRENCY = (1, 8, 32)


# --------------------------------------------------------------------------- bare app


def bare_app() -> Any:
    """The baseline: the champion's Scorer behind one Starlette route, nothing else."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from stratum_ml.model.registry import load_risk_model
    from stratum_ml.scoring import Scorer
    from stratum_ml.sources import load_sources

    model, _ = load_risk_model()
    scorer = Scorer.from_sources(
        model,
        load_sources(os.environ["STRATUM_SOURCES"]),
        dt.date.fromisoformat(os.environ["STRATUM_AS_OF"]),
    )

    async def readyz(request: Request) -> JSONResponse:
        return JSONResponse({})

    def score(body: dict[str, Any]) -> dict[str, Any]:
        scored, unknown = scorer.score(body["address_ids"], n_reasons=body.get("n_reasons", 3))
        return {"results": [s.to_dict() for s in scored], "unknown": unknown}

    async def score_route(request: Request) -> JSONResponse:
        import anyio.to_thread

        body = await request.json()
        return JSONResponse(await anyio.to_thread.run_sync(score, body))

    return Starlette(
        routes=[Route("/readyz", readyz), Route("/score", score_route, methods=["POST"])]
    )


def run_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning")


# --------------------------------------------------------------------------- set-up


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(home: Path, n_addresses: int) -> tuple[Path, str, list[str]]:
    """Sources, a champion and an application key in ``home``; return sources, key, dwellings."""
    from stratum_ml.config import Settings
    from stratum_ml.evaluation.gates import FairnessGateConfig
    from stratum_ml.serving.auth import Role, create_key
    from stratum_ml.sources import load_audit_tables, load_sources
    from stratum_ml.synthetic.generate import GeneratorConfig, generate_municipality
    from stratum_ml.training.config import RunConfig
    from stratum_ml.training.registry import promote
    from stratum_ml.training.tracking import log_training_run
    from stratum_ml.training.train import train_model

    sources = home / "sources"
    generate_municipality(
        GeneratorConfig(n_addresses=n_addresses, seed=3), sources, home / "truth.parquet"
    )
    tables = load_sources(sources)
    config = RunConfig(
        evaluate_mitigations=False,
        # the benchmark measures serving, not the model: a loose gate lets it be promoted
        fairness=FairnessGateConfig(min_ratio=0.01, max_ratio=100.0),
    )
    outcome = train_model(tables, load_audit_tables(sources), config)
    settings = Settings(home=home, mlflow_uri=None)
    log_training_run(outcome, settings=settings, source_dir=sources)
    if not promote(settings=settings).promoted:
        raise SystemExit("the benchmark model was not promoted")
    _, key = create_key(home / "api_keys.json", Role.APPLICATION, "benchmark")
    a = tables.addresses
    dwellings = a.loc[a["use_purpose"] == "woonfunctie", "address_id"].tolist()
    return sources, key, dwellings


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{url} not ready after {timeout} s")


# --------------------------------------------------------------------------- measuring


def timed_posts(
    client: httpx.Client, bodies: list[dict[str, Any]], headers: dict[str, str]
) -> list[float]:
    """Seconds per request, each checked to have succeeded."""
    times = []
    for body in bodies:
        start = time.perf_counter()
        response = client.post("/score", json=body, headers=headers)
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{response.status_code}: {response.text[:300]}")
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(
    url: str, headers: dict[str, str], dwellings: list[str], args: argparse.Namespace, seed: int
) -> dict[str, list[float]]:
    rng = random.Random(seed)
    single = [{"address_ids": [rng.choice(dwellings)]} for _ in range(args.single)]
    batch = [{"address_ids": rng.sample(dwellings, BATCH)} for _ in range(args.batches)]
    no_reasons = [{**b, "n_reasons": 0} for b in batch]
    with httpx.Client(base_url=url, timeout=120) as client:
        timed_posts(client, single[:30] + batch[:1], headers)  # warm-up
        return {
            "single": timed_posts(client, single, headers),
            "batch_with_reasons": timed_posts(client, batch, headers),
            "batch_no_reasons": timed_posts(client, no_reasons, headers),
        }


# --------------------------------------------------------------------------- concurrency


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on an open connection; return the status once the body is read."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (
            int(v)
            for k, _, v in (h.partition(":") for h in lines[1:])
            if k.lower() == "content-length"
        ),
        None,
    )
    if length is None:
        raise RuntimeError("an answer without Content-Length")
    await reader.readexactly(length)
    return status


def _request(host: str, port: int, headers: dict[str, str], body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    lines = [
        "POST /score HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def _client(
    url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    until: float,
    warm_until: float,
    out: dict[str, Any],
) -> None:
    host, port = url.removeprefix("http://").split(":")
    requests = [_request(host, int(port), headers, b) for b in bodies]
    reader, writer = await asyncio.open_connection(host, int(port))
    i = 0
    try:
        while (now := time.perf_counter()) < until:
            start = now
            try:
                status = await _call(reader, writer, requests[i % len(requests)])
            except (OSError, RuntimeError, asyncio.IncompleteReadError, ValueError):
                status = -1
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
            i += 1
            if start < warm_until:
                continue
            out["latencies"].append(time.perf_counter() - start)
            if status != 200:
                out["errors"] += 1
    finally:
        writer.close()


def concurrent_load(
    url: str,
    headers: dict[str, str],
    dwellings: list[str],
    clients: int,
    seconds: float,
    seed: int,
) -> dict[str, float]:
    """``clients`` connections calling ``score`` on one address each, back to back."""
    rng = random.Random(seed)
    out: dict[str, Any] = {"latencies": [], "errors": 0}

    async def run() -> float:
        start = time.perf_counter()
        warm_until = start + 1.0
        until = warm_until + seconds
        await asyncio.gather(
            *(
                _client(
                    url,
                    headers,
                    [{"address_ids": [rng.choice(dwellings)]} for _ in range(200)],
                    until,
                    warm_until,
                    out,
                )
                for _ in range(clients)
            )
        )
        return time.perf_counter() - warm_until

    elapsed = asyncio.run(run())
    latencies: list[float] = out["latencies"]
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": out["errors"],
        "p50_ms": 1000 * statistics.median(latencies),
        "p90_ms": 1000 * percentile(latencies, 90),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies),
        "requests_per_s": len(latencies) / elapsed,
    }


#: the Lua script of ``wrk``: the bodies in turn, the key, and the numbers as one JSON line
WRK_SCRIPT = """\
local bodies = {%(bodies)s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
request = function()
  i = i + 1
  return wrk.format(nil, "/score", nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, " ..
    "\\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, \\"errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _lua_string(text: str) -> str:
    """A Lua string literal of ``text`` (JSON and key characters only)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(headers: dict[str, str], bodies: list[dict[str, Any]]) -> str:
    """The Lua script that makes ``wrk`` send these bodies, in turn, with these headers."""
    return WRK_SCRIPT % {
        "bodies": ", ".join(_lua_string(json.dumps(b)) for b in bodies),
        "headers": "\n".join(
            f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
        ),
    }


def connections_per_process(port: int) -> list[int]:
    """How the open connections to ``port`` are spread over the server's processes, most
    first (``ss``; empty when it is not there): the kernel hands each new connection to
    whichever worker accepts first, and a keep-alive connection stays with it."""
    if shutil.which("ss") is None:
        return []
    listed = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    per_pid: dict[str, int] = {}
    for line in listed.splitlines():
        pid = line.partition("pid=")[2].partition(",")[0] or "?"
        per_pid[pid] = per_pid.get(pid, 0) + 1
    return sorted(per_pid.values(), reverse=True)


def wrk_load(
    url: str,
    headers: dict[str, str],
    dwellings: list[str],
    clients: int,
    seconds: float,
    seed: int,
    folder: Path,
) -> dict[str, float]:
    """:func:`concurrent_load` with ``wrk``: ``clients`` connections, 1 s of warm-up first."""
    rng = random.Random(seed)
    bodies = [{"address_ids": [rng.choice(dwellings)]} for _ in range(200)]
    script = folder / "score.lua"
    script.write_text(wrk_script(headers, bodies), "utf-8")  # holds the key: in the temp home
    threads = max(1, min(clients, os.cpu_count() or 1))

    def run(duration: float) -> dict[str, float]:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{clients}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                f"{url}/score",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(x for x in out.splitlines() if x.startswith("WRK_RESULT "))
        return dict(json.loads(line.removeprefix("WRK_RESULT ")))

    run(1.0)  # warm-up
    port = int(url.rsplit(":", 1)[1])
    spread: list[int] = []
    looker = threading.Timer(seconds / 2, lambda: spread.extend(connections_per_process(port)))
    looker.start()
    got = run(seconds)
    looker.join()
    return {
        "clients": clients,
        "connections_per_worker": spread,
        "requests": got["requests"],
        "errors": got["errors"],
        "p50_ms": got["p50_us"] / 1000,
        "p90_ms": got["p90_us"] / 1000,
        "p99_ms": got["p99_us"] / 1000,
        "max_ms": got["max_us"] / 1000,
        "requests_per_s": got["requests"] / (got["duration_us"] / 1e6),
    }


def summarise(samples: dict[str, list[float]]) -> dict[str, float]:
    single = samples["single"]
    return {
        "single_p50_ms": 1000 * statistics.median(single),
        "single_p99_ms": 1000 * percentile(single, 99),
        "single_mean_ms": 1000 * statistics.fmean(single),
        "batch_with_reasons_median_s": statistics.median(samples["batch_with_reasons"]),
        "batch_with_reasons_addresses_per_s": BATCH
        / statistics.median(samples["batch_with_reasons"]),
        "batch_no_reasons_median_s": statistics.median(samples["batch_no_reasons"]),
        "batch_no_reasons_addresses_per_s": BATCH / statistics.median(samples["batch_no_reasons"]),
    }


#: how each load generator is described in the results
LOAD_GENERATORS = {
    "wrk": "the load comes from `wrk` (C, at most one thread per core) on the same cores.",
    "python": "the clients are an asyncio loop in the benchmark's own Python process on the "
    "same cores (`wrk` was not on the PATH), which takes a good part of the CPU itself.",
}


def markdown(result: dict[str, Any]) -> str:
    b, r, ratio = result["bentoml"], result["bare"], result["ratio_bentoml_over_bare"]
    rows = [
        ("single address, p50 (ms)", "single_p50_ms", "{:.1f}"),
        ("single address, p99 (ms)", "single_p99_ms", "{:.1f}"),
        ("1k batch with reasons (addresses/s)", "batch_with_reasons_addresses_per_s", "{:,.0f}"),
        ("1k batch, no reasons (addresses/s)", "batch_no_reasons_addresses_per_s", "{:,.0f}"),
    ]
    lines = [
        "# Serving benchmark",
        "",
        f"{result['date']}, {result['machine']}; {result['dwellings']:,} dwellings scored as of "
        f"{result['as_of']}; {result['rounds']} interleaved rounds of {result['single']} single "
        f"calls and {result['batches']} batches of {BATCH} per kind; one client, keep-alive, "
        "127.0.0.1.",
        "",
        "| measure | bentoml service | bare Starlette | ratio |",
        "|---|---:|---:|---:|",
    ]
    for label, key, fmt in rows:
        lines.append(
            f"| {label} | {fmt.format(b[key])} | {fmt.format(r[key])} | {ratio[key]:.2f} |"
        )
    lines += [
        "",
        "The bentoml service checks the API key, validates the request with pydantic, builds "
        "pydantic responses and fsyncs an audit record before every answer; the bare app does "
        "none of that. Both run the same `Scorer.score` in one worker thread. Reasons cost "
        "TreeSHAP per address, which dominates a batch; `no reasons` shows the serving overhead. "
        "The bentoml service writes its JSON with pydantic-core (Rust), the bare app with the "
        "standard library's `json`, which is why large answers can come back faster from the "
        "service. Ratio = bentoml / bare: above 1 is slower for ms, faster for addresses/s. "
        "Ratios of one run are what to compare: the machine is noisy.",
        "",
        "## Under concurrency",
        "",
        f"`score` of one address (three reasons) from 1, 8 and 32 clients at once, each on its "
        f"own keep-alive connection, back to back, for {result['seconds']:.0f} s per level and "
        f"server (after 1 s of warm-up); {LOAD_GENERATORS[result['load_generator']]} Load "
        f"average (1 min) at the start {result['load_before']:.2f}, at the end "
        f"{result['load_after']:.2f}.",
        "",
        "| clients | server | connections per worker | p50 (ms) | p90 (ms) | p99 (ms) "
        "| max (ms) | errors | requests/s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["concurrency"]:
        lines.append(
            f"| {row['clients']} | {row['server']} "
            f"| {' + '.join(map(str, row.get('connections_per_worker', []))) or '-'} "
            f"| {row['p50_ms']:.1f} | {row['p90_ms']:.1f} "
            f"| {row['p99_ms']:.1f} | {row['max_ms']:.1f} | {row['errors']} "
            f"| {row['requests_per_s']:.0f} |"
        )
    lines += [
        "",
        f"Goal (issue 11): p99 < 100 ms at 32 clients on 2 cores with 0 errors. {result['goal']}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--single", type=int, default=300, help="single calls per round")
    parser.add_argument("--batches", type=int, default=8, help="1k batches per kind and round")
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--workers", type=int, help="workers of the second service")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of serving.json and serving.md"
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the in-process clients even with wrk"
    )
    parser.add_argument("--bare-app-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app_port:  # child mode: serve the bare app
        run_bare(args.bare_app_port)
        return

    from stratum_ml.serving.launch import default_workers, start_service

    workers = args.workers or default_workers()
    generator = "python" if args.no_wrk or shutil.which("wrk") is None else "wrk"
    print(f"load generator for the concurrency part: {generator}", flush=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="stratum-bench-") as tmp:
        home = Path(tmp)
        print("preparing sources, model and key ...", flush=True)
        sources, key, dwellings = prepare(home, args.addresses)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
        env.update(
            STRATUM_HOME=str(home),
            STRATUM_SOURCES=str(sources),
            STRATUM_AS_OF=AS_OF.isoformat(),
            BENTOML_HOME=str(home / "bentoml"),
            MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
            # the benchmark is one client address and one key sending as fast as it can
            STRATUM_BURST_PER_ADDRESS="1000000",
            STRATUM_RATE_PER_ADDRESS="1000000",
            STRATUM_BURST_PER_KEY="1000000",
            STRATUM_RATE_PER_KEY="1000000",
        )
        with open(home / "bentoml.log", "w", encoding="utf-8") as log:
            # one worker first: it makes the run the other then finds stored
            service = start_service(
                sources, port=free_port(), as_of=AS_OF, env=env, log=log, workers=1
            )
            service.wait_ready(300)
            several = start_service(
                sources, port=free_port(), as_of=AS_OF, env=env, log=log, workers=workers
            )
            bare_port = free_port()
            bare = subprocess.Popen(
                [sys.executable, __file__, "--bare-app-port", str(bare_port)], env=env
            )
            try:
                several.wait_ready(300)
                bare_url = f"http://127.0.0.1:{bare_port}"
                wait_ready(bare_url, bare)
                auth = {"Authorization": f"Bearer {key}"}
                servers = {"bentoml": (service.url, auth), "bare": (bare_url, {})}
                samples: dict[str, dict[str, list[float]]] = {
                    name: {"single": [], "batch_with_reasons": [], "batch_no_reasons": []}
                    for name in servers
                }
                for round_no in range(args.rounds):
                    for name, (url, headers) in servers.items():
                        print(f"round {round_no + 1}/{args.rounds}: {name}", flush=True)
                        got = measure(url, headers, dwellings, args, seed=round_no)
                        for kind, values in got.items():
                            samples[name][kind].extend(values)
                side_by_side = {
                    "bentoml, 1 worker": (service.url, auth),
                    f"bentoml, {workers} workers": (several.url, auth),
                    "bare Starlette": (bare_url, {}),
                }
                concurrency: list[dict[str, Any]] = []
                for clients in CONCURRENCY:
                    for name, (url, headers) in side_by_side.items():
                        print(f"{clients} clients: {name}", flush=True)
                        row = (
                            wrk_load(url, headers, dwellings, clients, args.seconds, clients, home)
                            if generator == "wrk"
                            else concurrent_load(
                                url, headers, dwellings, clients, args.seconds, seed=clients
                            )
                        )
                        concurrency.append({"server": name, **row})
            finally:
                service.stop()
                several.stop()
                bare.terminate()
                bare.wait(30)

    summary = {name: summarise(s) for name, s in samples.items()}
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "addresses": args.addresses,
        "dwellings": len(dwellings),
        "as_of": AS_OF.isoformat(),
        "rounds": args.rounds,
        "single": args.single,
        "batches": args.batches,
        **summary,
        "ratio_bentoml_over_bare": {
            k: summary["bentoml"][k] / summary["bare"][k] for k in summary["bentoml"]
        },
        "seconds": args.seconds,
        "workers": workers,
        "load_generator": generator,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "concurrency": concurrency,
    }
    best = [r for r in concurrency if r["clients"] == 32 and r["server"].startswith("bentoml")]
    met = [r["server"] for r in best if r["p99_ms"] < 100 and r["errors"] == 0]
    result["goal"] = (
        f"Met by: {', '.join(met)}." if met else "Not met in this run (see the load average)."
    )
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "serving.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    (args.results / "serving.md").write_text(markdown(result), "utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
