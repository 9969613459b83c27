"""How work runs: worker processes on this machine, or tasks on a Dask cluster.

:func:`worker_pool` is the one way spikevae starts worker processes, so that every pool's
workers die with the process that started them, whatever ends it (kill -9, SIGTERM, Ctrl-C).
:func:`map_jobs` runs independent jobs (electrodes) in such a pool, in this process, or, inside
``with dask_executor(client):``, on a ``dask.distributed`` cluster; results come back in job order.
:func:`map_threads` runs them in threads of this process (work that releases the GIL).
:func:`release_memory` gives freed heap memory back to the OS between stages.
:mod:`.spill` keeps a run's per-spike arrays in memory-mapped files of its output folder.
"""
from .executor import DaskExecutor, allow_children, current_dask_executor, dask_executor, imap_jobs, map_jobs, map_threads
from .memory import release_memory
from .pool import worker_pool

__all__ = ["DaskExecutor", "allow_children", "current_dask_executor", "dask_executor", "imap_jobs", "map_jobs", "map_threads", "release_memory", "worker_pool"]
