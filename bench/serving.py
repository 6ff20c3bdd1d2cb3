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

The machine is noisy: compare the ratios (bentoml / bare) of one run.

Usage: ``python bench/serving.py [--addresses 10000] [--rounds 3] [--single 300] [--batches 8]``.
Writes ``bench/results/serving.json`` and ``bench/results/serving.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
AS_OF = dt.date(2026, 11, 1)  # the synthetic extract date
BATCH = 1000


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
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=300, help="single calls per round")
    parser.add_argument("--batches", type=int, default=8, help="1k batches per kind and round")
    parser.add_argument("--bare-app-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app_port:  # child mode: serve the bare app
        run_bare(args.bare_app_port)
        return

    from stratum_ml.serving.launch import start_service

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
        )
        with open(home / "bentoml.log", "w", encoding="utf-8") as log:
            service = start_service(sources, port=free_port(), as_of=AS_OF, env=env, log=log)
            bare_port = free_port()
            bare = subprocess.Popen(
                [sys.executable, __file__, "--bare-app-port", str(bare_port)], env=env
            )
            try:
                service.wait_ready(300)
                bare_url = f"http://127.0.0.1:{bare_port}"
                wait_ready(bare_url, bare)
                servers = {
                    "bentoml": (service.url, {"Authorization": f"Bearer {key}"}),
                    "bare": (bare_url, {}),
                }
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
            finally:
                service.stop()
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
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    (RESULTS / "serving.md").write_text(markdown(result), "utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
