"""Where the recordings of a batch are sorted: here, in local processes, or on a Dask cluster.

Every engine runs :func:`~spikevae.batch.task.sort_one` once per recording and returns the
rows in the order of the recordings, so the summary does not depend on the engine. A
recording whose task raises (other than a user error, which fails at once) or whose worker
dies is run again, up to ``retries`` more times; after that its row says ``failed`` and why.

- ``serial``: one after another in this process (a crash of the process ends the batch).
- ``processes``: one fresh process per recording, ``workers`` at a time, without Dask. Each
  dies with this process (as :func:`~spikevae.execution.worker_pool`'s workers do).
- ``dask``: tasks on ``Client(scheduler)``, or on a ``LocalCluster`` of ``workers`` processes.
  Dask reruns a task whose worker died (``distributed.scheduler.allowed-failures``, set to
  ``retries`` for the local cluster; an existing scheduler keeps its own setting) and one that
  raised (``retries=``).
"""
from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import signal
import uuid
from multiprocessing.connection import wait
from pathlib import Path
from ..errors import SpikevaeError
from .inputs import BatchItem
from .task import TaskOptions, failed_row, one_line, sort_one

log = logging.getLogger(__name__)

ENGINES = ("auto", "serial", "processes", "dask")


def dask_available() -> bool:
    """True when ``dask.distributed`` can be imported (the ``dask`` extra)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def choose_engine(engine: str = "auto", scheduler: str | None = None, workers: int = 1) -> str:
    """The engine that ``auto`` means: ``dask`` with a scheduler, ``serial`` for one worker,
    else ``dask`` (a local cluster) when installed and ``processes`` when not.

    Raises
    ------
    SpikevaeError
        For an unknown engine, or Dask asked for but not installed.
    """
    if engine not in ENGINES:
        raise SpikevaeError(f"engine {engine!r} is not known; use one of {', '.join(ENGINES)}")
    if scheduler and engine not in ("auto", "dask"):
        raise SpikevaeError(f"--scheduler runs on Dask; it cannot be combined with the {engine!r} engine")
    if engine == "auto":
        engine = "dask" if scheduler else ("serial" if workers <= 1 else ("dask" if dask_available() else "processes"))
    if engine == "dask" and not dask_available():
        raise SpikevaeError("Dask is not installed: pip install 'spikevae[dask]' (or leave out --scheduler to "
                            "sort in local processes)")
    return engine


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="batch", unit="recording", disable=not enabled)


def _failed_after(item: BatchItem, why: str, attempts: int) -> dict:
    row = failed_row(item, f"{why} (after {attempts} attempt{'s' if attempts > 1 else ''})")
    row["attempts"] = attempts
    return row


# -- serial -----------------------------------------------------------------------------
def run_serial(items: list[BatchItem], config_dict: dict, options: TaskOptions, retries: int,
               progress: bool = False) -> list[dict]:
    """Each recording in turn, in this process."""
    rows = []
    with _progress(len(items), progress) as bar:
        for item in items:
            for attempt in range(1, retries + 2):
                try:
                    row = sort_one(item, config_dict, options)
                    row["attempts"] = attempt
                    break
                except Exception as exc:  # noqa: BLE001 - any failure of one recording is reported, not raised
                    log.warning("%s: attempt %d failed: %s", item.recording, attempt, one_line(exc))
                    row = _failed_after(item, one_line(exc), attempt)
            rows.append(row)
            bar.update(1)
    return rows


# -- plain processes ----------------------------------------------------------------------
def _process_main(conn, parent_pid: int, item: BatchItem, config_dict: dict, options: TaskOptions) -> None:
    """Body of one recording's process: sort, send ("ok", row) or ("error", text)."""
    from ..execution.pool import _die_with_parent

    _die_with_parent(parent_pid)
    try:
        conn.send(("ok", sort_one(item, config_dict, options)))
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which retries or reports it
        conn.send(("error", one_line(exc)))
    finally:
        conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"its worker process was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            pass
    return f"its worker process died (exit code {exitcode})"


def run_processes(items: list[BatchItem], config_dict: dict, options: TaskOptions, retries: int, workers: int,
                  progress: bool = False) -> list[dict]:
    """One fresh ("spawn") process per recording, ``workers`` at a time; a dead one is retried."""
    runner = _ProcessRunner(items, config_dict, options, retries)
    with _progress(len(items), progress) as bar:
        try:
            while runner.pending or runner.running:
                while runner.pending and len(runner.running) < max(1, workers):
                    runner.start(runner.pending.popleft())
                bar.update(runner.collect())
        finally:
            runner.kill_running()  # interrupted: take the running recordings down with us
    return runner.rows


class _ProcessRunner:
    """The state of :func:`run_processes`: what waits, what runs, attempts and finished rows."""

    def __init__(self, items: list[BatchItem], config_dict: dict, options: TaskOptions, retries: int):
        self.items, self.config_dict, self.options, self.retries = items, config_dict, options, retries
        self.ctx = multiprocessing.get_context("spawn")
        self.pending = collections.deque(range(len(items)))
        self.attempts = [0] * len(items)
        self.rows: list[dict | None] = [None] * len(items)
        self.running: dict[int, tuple] = {}

    def start(self, i: int) -> None:
        """Start an attempt at recording ``i`` in a fresh process."""
        self.attempts[i] += 1
        recv, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_process_main, args=(send, os.getpid(), self.items[i], self.config_dict,
                                                            self.options), name=f"spikevae-batch-{self.items[i].name}")
        proc.start()
        send.close()
        self.running[i] = (proc, recv)

    def collect(self) -> int:
        """Wait until a process ends or reports; file its outcome. Returns the recordings finished."""
        wait([p.sentinel for p, _ in self.running.values()] + [r for _, r in self.running.values()])
        done = 0
        for i in list(self.running):
            outcome = _collect(*self.running[i])
            if outcome is None:
                continue
            del self.running[i]
            kind, payload = outcome
            if kind == "ok":
                self.rows[i] = payload | {"attempts": self.attempts[i]}
            elif self.attempts[i] <= self.retries:
                log.warning("%s: attempt %d failed (%s); retrying", self.items[i].recording, self.attempts[i], payload)
                self.pending.append(i)
            else:
                self.rows[i] = _failed_after(self.items[i], payload, self.attempts[i])
            done += self.rows[i] is not None
        return done

    def kill_running(self) -> None:
        for proc, _ in self.running.values():
            proc.kill()
            proc.join()


def _collect(proc, recv) -> tuple[str, object] | None:
    """("ok", row), ("error", text) or ("died", text) once ``proc`` is done; None while it runs."""
    msg = None
    if recv.poll():
        try:
            msg = recv.recv()
        except EOFError:  # the process ended without a word
            msg = None
    if msg is None and proc.is_alive():
        return None
    proc.join()
    recv.close()
    return msg if msg is not None else ("died", _death(proc.exitcode))


# -- Dask ------------------------------------------------------------------------------------
def run_dask(items: list[BatchItem], config_dict: dict, options: TaskOptions, retries: int, client,
             progress: bool = False) -> list[dict]:
    """One Dask task per recording on ``client``'s cluster; rows in the order of ``items``."""
    from distributed import as_completed

    batch = uuid.uuid4().hex[:8]  # two batches on one scheduler must not share task keys
    futures = [client.submit(sort_one, item, config_dict, options, retries=retries, pure=False,
                             key=f"spikevae-batch-{batch}-{k}-{item.name}") for k, item in enumerate(items)]
    index = {f.key: k for k, f in enumerate(futures)}
    rows: list[dict | None] = [None] * len(items)
    with _progress(len(items), progress) as bar:
        for fut in as_completed(futures):
            k = index[fut.key]
            rows[k] = _dask_row(items[k], fut, retries)
            fut.release()
            bar.update(1)
    return rows


def _dask_row(item: BatchItem, fut, retries: int) -> dict:
    from distributed import KilledWorker

    try:
        return fut.result()
    except KilledWorker:
        return failed_row(item, "its worker died each time it sorted this recording (Dask KilledWorker): out of "
                                "memory, or killed by the cluster's time limit? see the workers' logs")
    except Exception as exc:  # noqa: BLE001 - one recording's failure is reported, not raised
        return _failed_after(item, one_line(exc), retries + 1)


def local_cluster(workers: int, retries: int):
    """A ``LocalCluster`` of ``workers`` one-thread processes that reruns a task whose worker died
    up to ``retries`` times."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": int(retries)}):
        return LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1, processes=True,
                            dashboard_address=None)


def connect(scheduler: str):
    """``Client(scheduler)``, or one line saying why it cannot be reached.

    Parameters
    ----------
    scheduler : str
        The scheduler's address (``tcp://host:8786``), or the JSON file that
        ``dask scheduler --scheduler-file FILE`` writes (handy on a cluster's shared disk).

    Raises
    ------
    SpikevaeError
        When no scheduler answers at ``scheduler`` within 20 s.
    """
    from distributed import Client

    as_file = scheduler.endswith(".json")
    if as_file and not Path(scheduler).is_file():
        raise SpikevaeError(f"--scheduler {scheduler}: scheduler file not found; `dask scheduler --scheduler-file "
                            f"{scheduler}` writes it (on a disk that this machine sees), or give the tcp:// address")
    try:
        if as_file:
            return Client(scheduler_file=scheduler, timeout="20s")
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SpikevaeError(f"--scheduler {scheduler}: no Dask scheduler answered ({one_line(exc)}); start one with "
                            "`dask scheduler` and give the tcp:// address it prints") from None


def run_engine(engine: str, items: list[BatchItem], config_dict: dict, options: TaskOptions, *, retries: int,
               workers: int, client=None, progress: bool) -> list[dict]:
    """Rows of every recording, run by ``engine`` (already chosen by :func:`choose_engine`), on
    ``client``'s cluster when given, else (Dask) on a local cluster of ``workers`` processes."""
    if engine == "serial":
        return run_serial(items, config_dict, options, retries, progress)
    if engine == "processes":
        return run_processes(items, config_dict, options, retries, workers, progress)
    if client is not None:
        return run_dask(items, config_dict, options, retries, client, progress)
    from distributed import Client

    with local_cluster(workers, retries) as cluster, Client(cluster) as client:
        return run_dask(items, config_dict, options, retries, client, progress)

