"""Renders before jobs: how the job thread gives itself less of the machine than the render thread."""
from __future__ import annotations

import threading
from typing import Any

import torch

JOB_TORCH_THREADS = 1  #: torch intra-op threads of the job thread (renders keep the rest)
#: the process's torch thread count before any worker thread changed it (read at import, in the
#: main thread): the render thread sets it for itself, see :func:`lower_this_thread_priority`
PROCESS_TORCH_THREADS = torch.get_num_threads()
JOB_NICE = 10  #: how much lower the job thread's OS priority is (Linux: per thread)


def lower_this_thread_priority(torch_threads: int = JOB_TORCH_THREADS, nice: int | None = None) -> dict[str, Any]:
    """Give the calling thread less of the machine than the render thread; says what it did.

    * torch's intra-op thread count: with the OpenMP backend ``torch.set_num_threads`` sets the
      calling thread's own count (OpenMP's per-thread setting), so the render thread keeps all
      cores. But torch also remembers the last count set anywhere and gives it to every thread
      that starts computing *later*: so the render thread sets its own count explicitly when it
      starts (``PROCESS_TORCH_THREADS`` or the user's setting) instead of inheriting the job
      thread's. With another backend it is one process-wide pool: then it is left alone rather
      than slowing the renders too.
    * the OS priority: on Linux a nice value is per thread (``setpriority`` on the thread id); the
      OpenMP helpers this thread starts inherit it. Elsewhere it is process-wide: left alone.
    """
    import sys

    nice = JOB_NICE if nice is None else nice  # read when called, so a bench can compare settings
    done: dict[str, Any] = {}
    if "OpenMP" in torch.__config__.parallel_info() and torch_threads > 0:
        before = torch.get_num_threads()
        torch.set_num_threads(min(before, torch_threads))
        done["torch_threads"] = torch.get_num_threads()
    if sys.platform.startswith("linux") and nice > 0:
        import os

        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
            done["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        except OSError:  # not allowed (some sandboxes): the torch threads still help
            pass
    return done
