"""How work runs: worker processes on this machine (and, later, batches and clusters).

:func:`worker_pool` is the one way spikevae starts worker processes, so that every pool's
workers die with the process that started them, whatever ends it (kill -9, SIGTERM, Ctrl-C).
"""
from .pool import worker_pool

__all__ = ["worker_pool"]
