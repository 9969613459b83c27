"""Worker processes that never outlive their parent.

A ``ProcessPoolExecutor``'s workers keep running when the parent is killed with SIGKILL
(nothing tells them), and they keep the parent's stdout and stderr open, so a pipeline such
as ``spikevae run ... | tee log`` never ends. Each worker made here therefore:

- asks the Linux kernel to send it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
- also watches its parent from a daemon thread and exits when the parent changes (other
  platforms, and a parent that dies between fork and the ``prctl`` call);
- ignores SIGINT, so Ctrl-C reaches the parent alone, which stops cleanly with exit code 130
  and takes its workers with it.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..errors import SpikevaeError

#: Seconds between two looks of a worker at its parent.
WATCH_INTERVAL_S = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """Initializer of every worker (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while True:
            time.sleep(WATCH_INTERVAL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="spikevae-parent-watch", daemon=True).start()


def cuda_in_use() -> bool:
    """Whether this process has started CUDA (torch's GPU filtering or networks): its children must then
    be spawned, since CUDA cannot be used again in a forked child. Never imports torch itself."""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except AttributeError:  # a torch being imported, or without CUDA support
        return False


class WorkerDied(SpikevaeError):
    """A worker process of a pool ended without finishing its job (killed, most often for lack of memory)."""


class _Pool(ProcessPoolExecutor):
    """A pool whose dead worker is a :class:`WorkerDied` that says what to do, not a bare ``BrokenProcessPool``."""

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is not None and issubclass(exc_type, BrokenProcessPool):
            raise WorkerDied(
                f"a worker process of this run died ({exc}); it was killed by the system, most often for lack of "
                "memory (see `dmesg`, or the batch system's log: SLURM's --mem). Give the run more memory, or run "
                "fewer workers (--set run.n_jobs=1 --set cluster.n_jobs=1: each worker holds its own copy of the "
                "libraries, about 100 MB, and the data of its job); rerun with the same -o: finished stages are read back, not redone") from exc
        return False


def worker_pool(n_jobs: int, *, spawn: bool = False) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process.

    Parameters
    ----------
    n_jobs : int
        Number of worker processes.
    spawn : bool, default False
        Start workers fresh ("spawn") instead of forking: needed once torch or BLAS threads
        run in this process, where a fork can deadlock. Workers are always spawned once CUDA
        is in use here (a forked child cannot use CUDA: :func:`cuda_in_use`).

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        Use it as a context manager; a worker that dies (``BrokenProcessPool``) leaves it as a
        :class:`WorkerDied` error that names the likely cause and the fix.
    """
    ctx = multiprocessing.get_context("spawn" if spawn or cuda_in_use() else None)
    return _Pool(max_workers=int(n_jobs), mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),))
