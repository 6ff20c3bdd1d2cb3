"""``stratum serve``: check the set-up, run ``bentoml serve`` on 127.0.0.1, print the URL.

:func:`serve` is what the command calls. It first runs the cheap start-up
checks of :mod:`stratum_ml.serving.app_state` in this process (settings,
source folder, scoring date against the folder's extract date, API keys,
audit log, a ``champion`` in the registry, the operational store, a free port)
and finds the stored run it will serve (without ``--as-of``: the champion's
latest run; with it: the champion's run of that date; the service makes the
run when it is missing, as of ``--as-of``, the latest stored run's date, or the
extract date), so that a missing
champion or a date after the data is a one-line error and a non-zero exit
instead of a crash-looping worker: BentoML restarts a worker whose start-up
fails, and never exits by itself. Then it starts

    bentoml serve stratum_ml.serving.service:RiskService --host 127.0.0.1 --port N

as a child process with the settings in its environment, passes its log
through, and waits for ``/readyz``. If the worker's start-up still fails (say,
the sources break the contract), the log says why and :func:`serve` stops the
server and raises :class:`LaunchError`.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from stratum_ml.config import Settings
from stratum_ml.model.registry import ModelVersionInfo
from stratum_ml.runs import get_run
from stratum_ml.serving.app_state import (
    ScoringDateError,
    ServingSettings,
    StartupError,
    open_keys_and_log,
    read_settings,
    resolve_champion,
    scoring_date,
    source_extract,
    source_folder,
)
from stratum_ml.serving.served_run import latest_as_of, latest_run_id
from stratum_ml.sources import ExtractDate
from stratum_ml.store import StoreError, open_store

SERVICE = "stratum_ml.serving.service:RiskService"
#: the environment variable that sets the number of worker processes
WORKERS_ENV = "STRATUM_WORKERS"
#: most worker processes accepted
MAX_WORKERS = 32
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
#: what BentoML logs when a worker's start-up fails
STARTUP_FAILED = "Application startup failed"
#: what the service logs, before that, to say why (see ``service.RiskService``)
CANNOT_START = "the stratum scoring service cannot start: "
#: the start of a log record in BentoML's format: "<time> [LEVEL] [component] ..."
_LOG_RECORD = re.compile(r"^\S+ \[[A-Z]+\] \[")


class LaunchError(RuntimeError):
    """The service could not be started; the message says why.

    ``exit_code`` is what the command exits with: 2 for a scoring date that cannot
    be served (bad usage), 1 otherwise.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LaunchPlan:
    """What the checks before starting a server found: what will be served, as of when.

    ``run_id`` is the stored run that will be served; None when the service will make it.
    """

    champion: ModelVersionInfo
    as_of: dt.date
    extract: ExtractDate
    run_id: str | None = None

    @property
    def run_line(self) -> str:
        """Which stored run is served, for the start-up output."""
        if self.run_id is None:
            return f"no stored run of version {self.champion.version} as of {self.as_of}: made now"
        return f"serving the stored run {self.run_id}"

    @property
    def date_line(self) -> str:
        """The scoring date and why it is that date, for the start-up output."""
        extract = self.extract
        if self.as_of == extract.date:
            return f"scoring as of {self.as_of}, the extract date of the sources ({extract.origin})"
        return f"scoring as of {self.as_of}; the extract date of the sources is {extract}"


def preflight(
    sources: Path, *, as_of: dt.date | None = None, host: str = DEFAULT_HOST, port: int
) -> LaunchPlan:
    """Check, before starting a server, what would make its start-up fail.

    The scoring date is ``as_of`` or, without it, the date of the champion's latest
    stored run, else of the latest stored run, else the extract date of the sources
    (read from the folder's dates alone; the server validates the folder).

    Returns
    -------
    LaunchPlan
        The champion that will be served, the scoring date, the extract date and the
        stored run that will be served (None: the service makes it).

    Raises
    ------
    LaunchError
        With the reason (no champion, no keys, a damaged audit log, no source
        folder, a scoring date after the extract date or in the future (exit
        code 2), the port in use).
    """
    try:
        settings, _ = read_settings()
        serving = ServingSettings(sources=sources, as_of=as_of)
        folder = source_folder(serving)
        extract = source_extract(folder)
        scoring = scoring_date(serving, extract)
        open_keys_and_log()
        info = resolve_champion(settings)
        run_id, scoring = _stored_run(settings, info, as_of, scoring)
    except ScoringDateError as exc:
        raise LaunchError(str(exc), exit_code=2) from None
    except StartupError as exc:
        raise LaunchError(str(exc)) from None
    check_port_free(host, port)
    return LaunchPlan(champion=info, as_of=scoring, extract=extract, run_id=run_id)


def default_workers() -> int:
    """Worker processes by default: one per core, at most 2.

    Scoring a stored run is CPU work in Python (the GIL: one core per process), so a
    second worker uses the second core of a small server; more workers than cores
    only add memory (each loads the sources and the model) and context switches.
    """
    return max(1, min(2, os.cpu_count() or 1))


def service_workers(env: Mapping[str, str] | None = None) -> int:
    """The worker processes the service starts: ``$STRATUM_WORKERS`` or :func:`default_workers`.

    Raises
    ------
    ValueError
        When the variable is not a whole number from 1 to :data:`MAX_WORKERS`.
    """
    value = (os.environ if env is None else env).get(WORKERS_ENV, "").strip()
    if not value:
        return default_workers()
    if not value.isdigit() or not 1 <= int(value) <= MAX_WORKERS:
        raise ValueError(f"{WORKERS_ENV} must be a whole number from 1 to {MAX_WORKERS}")
    return int(value)


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something listens on; connections of a killed server do not count.

    The probe binds with ``SO_REUSEADDR``, as the server itself does: after a
    ``kill -9`` the old server's connections linger in TIME-WAIT for a minute,
    which would refuse a plain bind, yet do not stop a new server from listening.
    A port another process listens on is still refused.

    Raises
    ------
    LaunchError
        When the port cannot be bound.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LaunchError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


#: prctl(2) option: the signal a process gets when its parent dies (Linux)
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Have the kernel kill this process (SIGKILL) when its parent process dies (Linux).

    BentoML starts each worker in a session of its own, so a ``kill -9`` of
    ``bentoml serve`` would leave the worker orphaned, still listening on the
    port, and a restart would find the port taken for as long as it lives. The
    service calls this in its worker at start-up, so the worker dies with the
    server. Returns False where the platform has no such call (nothing done).
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def _stored_run(
    settings: Settings, info: ModelVersionInfo, as_of: dt.date | None, extract_as_of: dt.date
) -> tuple[str | None, dt.date]:
    """The stored run the service will serve (None: it makes one) and its date."""
    try:
        store = open_store(settings.store_url, legacy_home=settings.home)
    except StoreError as exc:
        raise StartupError(str(exc)) from None
    try:
        run_id = latest_run_id(store, info.name, info.version, as_of)
        if run_id is not None:
            return run_id, get_run(store, run_id).as_of
        return None, as_of or latest_as_of(store, info.name) or extract_as_of
    finally:
        store.close()


def service_env(
    sources: Path,
    *,
    as_of: dt.date | None = None,
    base: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> dict[str, str]:
    """The environment of the server process: ``base`` plus the serving settings.

    Paths are made absolute, so that the server does not depend on its working folder.
    """
    env = dict(os.environ if base is None else base)
    env["STRATUM_SOURCES"] = str(Path(sources).resolve())
    if as_of is not None:
        env["STRATUM_AS_OF"] = as_of.isoformat()
    if workers is not None:
        env[WORKERS_ENV] = str(workers)
    for name in ("STRATUM_HOME", "STRATUM_API_KEYS_FILE", "STRATUM_AUDIT_LOG"):
        if env.get(name):
            env[name] = str(Path(env[name]).resolve())
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return env


class RunningService:
    """A ``bentoml serve`` child process, where it listens, and its log being passed on.

    Parameters
    ----------
    process
        The child, started with its output piped (text mode).
    url
        ``http://host:port``.
    log
        Where the child's log lines are copied to.
    """

    def __init__(self, process: subprocess.Popen[str], url: str, log: TextIO) -> None:
        self.process = process
        self.url = url
        self.failure: list[str] = []
        self._failed = threading.Event()
        self._pump = threading.Thread(
            target=self._follow, args=(log,), daemon=True, name="bentoml-log"
        )
        self._pump.start()

    def _follow(self, log: TextIO) -> None:
        """Copy the server's log to ``log``, keeping why a start-up failed (all its lines)."""
        assert self.process.stdout is not None
        collecting = False
        for line in self.process.stdout:
            log.write(line)
            log.flush()
            if CANNOT_START in line and not self.failure:  # the first failure is enough
                collecting = True
                self.failure.append(line.split(CANNOT_START, 1)[1].strip())
            elif collecting and not _LOG_RECORD.match(line):
                self.failure.append(line.strip())
            else:
                collecting = False
            if STARTUP_FAILED in line:
                self._failed.set()

    def wait_ready(self, timeout: float) -> None:
        """Block until ``/readyz`` answers 200.

        Raises
        ------
        LaunchError
            When the server exits, its start-up fails, or ``timeout`` seconds pass;
            the server is stopped first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LaunchError(
                    f"bentoml serve exited with code {self.process.returncode}; see its log"
                )
            if self._failed.is_set():
                self.stop()
                reason = "\n".join(self.failure) if self.failure else "see its log"
                raise LaunchError(f"the service could not start: {reason}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise LaunchError(f"the service was not ready after {timeout:.0f} s; see its log")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the server (it stops its workers) and wait; SIGKILL its group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._pump.join(timeout=5)
        return self.process.returncode


def start_service(
    sources: Path,
    *,
    port: int,
    host: str = DEFAULT_HOST,
    as_of: dt.date | None = None,
    env: Mapping[str, str] | None = None,
    log: TextIO | None = None,
    workers: int | None = None,
) -> RunningService:
    """Start ``bentoml serve`` for :data:`SERVICE` in a child process (not waiting for it).

    Parameters
    ----------
    sources
        The source folder to score.
    port, host
        Where to listen; keep the host 127.0.0.1 unless a proxy in front adds TLS.
    as_of
        Serve the champion's run of this date (made when missing); default its latest
        stored run (made as of the extract date when there is none).
    env
        The environment to start from (default: this process's).
    log
        Where the server's log goes (default: standard error).
    workers
        Worker processes (default ``$STRATUM_WORKERS`` in ``env``, else
        :func:`default_workers`).

    Returns
    -------
    RunningService
        Call :meth:`RunningService.wait_ready`, then :meth:`RunningService.stop`.
    """
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", SERVICE, "--host", host, "--port", str(port)]
    process = subprocess.Popen(
        command,
        env=service_env(sources, as_of=as_of, base=env, workers=workers),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so that a hung server can be killed
    )
    return RunningService(process, f"http://{host}:{port}", log or sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(
    sources: Path,
    *,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    as_of: dt.date | None = None,
    ready_timeout: float = 600.0,
    out: TextIO | None = None,
    workers: int | None = None,
) -> int:
    """Check the set-up, start the service, print its URL and an example, serve until stopped.

    Parameters
    ----------
    sources
        The source folder to score.
    port, host
        Where to listen (default 127.0.0.1:3000).
    as_of
        Serve the champion's run of this date (made when missing); default its latest
        stored run (made as of the extract date when there is none).
    ready_timeout
        Seconds to wait for the service to load the model and score every dwelling.
    out
        Where the URL and the example go (default: standard output).
    workers
        Worker processes (default ``$STRATUM_WORKERS``, else :func:`default_workers`).

    Returns
    -------
    int
        The server's exit code once it stops (0 after Ctrl-C or SIGTERM, which stop
        the server too).

    Raises
    ------
    LaunchError
        When a check fails or the service does not come up.
    """
    out = out or sys.stdout
    try:
        workers = service_workers(None if workers is None else {WORKERS_ENV: str(workers)})
    except ValueError as exc:
        raise LaunchError(str(exc).replace(WORKERS_ENV, "--workers"), exit_code=2) from None
    plan = preflight(sources, as_of=as_of, host=host, port=port)
    info = plan.champion
    running = start_service(sources, port=port, host=host, as_of=as_of, workers=workers)
    # the server runs in its own session: on SIGTERM, stop it rather than leave it orphaned
    handles_term = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if handles_term else None
    try:
        running.wait_ready(ready_timeout)
        url = running.url
        out.write(
            f"\nstratum scoring service: {url}  (model {info.name} version {info.version}, "
            f"{workers} worker{'s' if workers > 1 else ''})\n"
            f"{plan.date_line}\n"
            f"{plan.run_line}\n"
            f"API reference: {url}/docs.json  (browse it at {url}/)\n"
            "Example call, with an analyst key (such as the demo analyst key printed by "
            "`stratum keys demo`) in $STRATUM_API_KEY:\n"
            f"  curl -s -X POST {url}/priority_list -H 'Content-Type: application/json' "
            '-H "Authorization: Bearer $STRATUM_API_KEY" -d \'{"k": 10}\'\n'
            "Stop with Ctrl-C.\n"
        )
        out.flush()
        return running.process.wait()
    except KeyboardInterrupt:
        running.stop()
        return 0
    finally:
        running.stop()
        if handles_term:
            signal.signal(signal.SIGTERM, previous)
