"""Where a list of independent jobs runs: here, in local worker processes, or on a Dask cluster.

:func:`map_jobs` is what stages call to run one function over many jobs (electrodes of a
recording); :func:`imap_jobs` gives each result as it comes in. Where the jobs go is decided at the edge, not by the stage:

- by default, in :func:`~spikevae.execution.pool.worker_pool` processes when ``n_jobs`` > 1,
  else in this process;
- inside ``with dask_executor(client):``, as tasks on that ``dask.distributed`` cluster (from a
  task already running on a Dask worker, through ``worker_client()``, which frees the worker's
  slot while the sub-tasks run, so a one-thread worker cannot deadlock on its own sub-tasks).

:func:`map_jobs`'s results come back in job order whatever ran them, so a stage's output does not depend on
where its jobs ran.
"""
from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
from typing import Callable, Iterator, Sequence

#: The Dask executor of the current context (set by :func:`dask_executor`), or None.
_DASK: contextvars.ContextVar = contextvars.ContextVar("spikevae_dask_executor", default=None)


class DaskExecutor:
    """Jobs as tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client or None
        The client to submit through; None inside a task on a Dask worker, where each map
        opens ``worker_client()``.
    retries : int, default 2
        Times a job is run again when it raises or its worker dies. The jobs' inputs are
        scattered to the workers: when a worker dies with some of them, the map raises, and
        the task around it (a recording of a batch) is what Dask runs again.
    """

    def __init__(self, client=None, retries: int = 2):
        self.client = client
        self.retries = int(retries)

    def map(self, fn: Callable, jobs: Sequence) -> list:
        """``[fn(j) for j in jobs]`` as Dask tasks, in job order."""
        if self.client is not None:
            return self._map(self.client, fn, jobs)
        from distributed import worker_client

        with worker_client() as client:  # secedes this task's thread until the sub-tasks are done
            return self._map(client, fn, jobs)

    def _map(self, client, fn, jobs) -> list:
        # the jobs' arrays go to the workers directly, not through the scheduler in the task graph;
        # if a worker holding some dies, the gather raises and the caller's own task is retried
        data = client.scatter(list(jobs), hash=False)
        futures = client.map(fn, data, pure=False, retries=self.retries)
        try:
            return client.gather(futures)
        finally:
            for f in futures + data:
                f.release()


@contextlib.contextmanager
def dask_executor(client=None, retries: int = 2) -> Iterator[DaskExecutor]:
    """Within this block, :func:`map_jobs` sends its jobs to a Dask cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        E.g. ``Client("tcp://scheduler:8786")``. Leave it out inside a task that runs on a
        Dask worker: the jobs then go to that worker's cluster.
    retries : int, default 2
        Times a job is rerun when it raises or its worker dies.

    Examples
    --------
    >>> from distributed import Client                               # doctest: +SKIP
    >>> with Client("tcp://10.0.0.1:8786") as c, dask_executor(c):    # doctest: +SKIP
    ...     run_pipeline("rec.ns6", cfg, "out/")   # electrodes clustered on the cluster
    """
    ex = DaskExecutor(client, retries)
    token = _DASK.set(ex)
    try:
        yield ex
    finally:
        _DASK.reset(token)


def current_dask_executor() -> DaskExecutor | None:
    """The Dask executor set by the enclosing :func:`dask_executor` block, or None."""
    return _DASK.get()


def map_threads(fn: Callable, items: Sequence, n_jobs: int = 1) -> list:
    """``[fn(item) for item in items]`` in ``n_jobs`` threads of this process, in item order.

    For per-electrode work whose time goes to numpy, scipy and HDF5 calls that release the GIL
    (the quality metrics' k-d trees and eigen-decompositions): no process start, no copy of the
    spikes. BLAS runs one thread per call meanwhile (threads are the parallelism), so the results
    are those of a serial loop.
    """
    if n_jobs <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from .memory import one_heap_for_threads

    one_heap_for_threads()  # what the threads free goes back to the OS with release_memory
    with threadpool_limits(1), ThreadPoolExecutor(int(n_jobs)) as ex:
        return list(ex.map(fn, items))


def map_jobs(fn: Callable, jobs: Sequence, n_jobs: int = 1, *, spawn: bool = False, progress: bool = False,
             desc: str = "job", unit: str = "job") -> list:
    """``[fn(j) for j in jobs]``, run where the context says (see the module docstring).

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by reference for worker processes).
    jobs : sequence
        One argument of ``fn`` per job (any object with ``len`` and indexing: a lazy sequence builds
        each job when it is submitted).
    n_jobs : int, default 1
        Local worker processes when no Dask executor is active (1 = this process).
    spawn : bool, default False
        Start local workers fresh instead of forking (needed once torch threads run here).
    progress : bool, default False
        A tqdm bar when jobs run in this process.
    desc, unit : str
        Labels of the progress bar.

    Returns
    -------
    list
        The results, in the order of ``jobs``.
    """
    out = [None] * len(jobs)
    for i, result in imap_jobs(fn, jobs, n_jobs, spawn=spawn, progress=progress, desc=desc, unit=unit):
        out[i] = result
    return out


def imap_jobs(fn: Callable, jobs: Sequence, n_jobs: int = 1, *, spawn: bool = False, progress: bool = False,
              desc: str = "job", unit: str = "job") -> Iterator[tuple[int, object]]:
    """``(i, fn(jobs[i]))`` for every job, as each result comes in (parameters as :func:`map_jobs`).

    Local workers yield results in the order they end, this process in job order, a Dask cluster once
    all are gathered. A caller that folds each result into its output and drops it holds only the
    results in flight, not every job's (:func:`map_jobs` keeps them all, for a list in job order).
    """
    ex = current_dask_executor()
    if ex is not None and len(jobs) > 1:
        yield from enumerate(ex.map(fn, list(jobs)))
        return
    if n_jobs > 1 and len(jobs) > 1:
        from .pool import worker_pool

        # a bounded window of jobs in flight, each built (jobs[i]) only when it is submitted: a lazy
        # sequence of jobs then never holds every job's data at once; a new job goes in as soon as any
        # job ends (not the oldest: one long job must not leave the other workers idle)
        from concurrent.futures import FIRST_COMPLETED, wait

        window, n = 2 * int(n_jobs), len(jobs)
        with allow_children(), worker_pool(n_jobs, spawn=spawn) as pool:
            pending = {pool.submit(fn, jobs[i]): i for i in range(min(window, n))}
            submitted = len(pending)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    if submitted < n:
                        pending[pool.submit(fn, jobs[submitted])] = submitted
                        submitted += 1
                    yield i, fut.result()
        return
    order = range(len(jobs))
    if progress:
        from tqdm import tqdm

        order = tqdm(order, desc=desc, unit=unit)
    for i in order:
        yield i, fn(jobs[i])


@contextlib.contextmanager
def allow_children() -> Iterator[None]:
    """Let a daemonic process (a Dask worker, by default) start worker processes in this block.

    Python refuses children to daemonic processes because they would be orphaned when the
    daemon is killed. Every worker of :func:`~spikevae.execution.pool.worker_pool` dies with
    its parent (``PR_SET_PDEATHSIG`` and a parent watch), so that reason does not apply to
    them; outside this block the flag is as it was.
    """
    proc = multiprocessing.current_process()
    daemon = proc._config.get("daemon", False)
    if not daemon:
        yield
        return
    proc._config["daemon"] = False
    try:
        yield
    finally:
        proc._config["daemon"] = daemon
