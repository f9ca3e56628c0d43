"""Set-up of a batch worker process (``reirrad check --jobs N``).

This module imports no numpy: the process pool runs :func:`init_worker` before the first task is
unpickled (and with it numpy), so the thread limits below are in the environment when the BLAS
and OpenMP runtimes read it. Each worker checks one case at a time with one BLAS thread, so
``--jobs N`` uses N cores and not N times the cores.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import threading

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def init_worker() -> None:
    """Limit native thread pools to one thread and exit when the submitting process dies."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    if "numpy" in sys.modules:  # imported by the parent's main module before the limits were set
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            threadpool_limits(1)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """Wait until the parent process is gone (killed, even by SIGKILL), then end this worker:
    an orphaned worker would go on computing a case nobody records."""
    multiprocessing.connection.wait([sentinel])
    os._exit(1)
