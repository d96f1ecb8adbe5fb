"""Keep XLA:CPU's large buffers mapped between executions (glibc ``malloc`` settings).

Why: XLA:CPU allocates a program's working memory (its temporary buffer: 1.2 GB for a
ResNet-18/CIFAR train step at batch 128) on every execution, from one of its own threads. glibc
serves such a block from a fresh ``mmap`` and unmaps it on ``free``, so every step faults in and
zeroes each of its pages again: 307,000 page faults and 0.51 s of kernel time per step, about
a quarter of the step's CPU time on 2 cores. Three settings make every block come from, and go
back to, the heap, where the next step finds it already mapped:

* ``M_ARENA_MAX = 1``: every thread allocates from the main arena. Other threads get arenas of
  at most 64 MiB, which must ``mmap`` anything larger.
* ``M_MMAP_MAX = 0``: no block is served by its own ``mmap``, however large (a threshold
  would leave the 2-3 GB working memory of VGG-16 or ResNet-50 at 224x224 to ``mmap``).
* ``M_TRIM_THRESHOLD = -1``: free memory at the top of the heap is never returned to the
  system (by default glibc returns it, and the next step faults it in again).

Measured (``python -m benchmarks.host_memory``, 2 cores): no page faults per step once the heap
has grown (it grows once or twice); ResNet-18/CIFAR at batch 128 1.07-1.10x the images/s (kernel
time 379 -> 72 ms per step), ResNet-50 at 224x224, batch 16, 1.10-1.15x. The cost: the process
keeps the memory it frees (its resident size stays at its peak, and the peak can grow by
about one step's working memory: 2.9 GB instead of 1.7 GB for that ResNet-18), and threads
share one arena's lock, which matters only for many small allocations made by many threads at
once. jaxcnn applies the settings once, on import, on Linux with glibc;
``JAXCNN_HOST_MALLOC=0`` in the environment leaves ``malloc`` as it was.

They help only if ``import jaxcnn`` comes before JAX's CPU backend starts (before the first
array or computation): a thread keeps the arena of its first allocation, and XLA's
threads allocate as soon as the backend starts. :func:`status` says when it came too late.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

__all__ = ["configure", "status"]

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
M_MMAP_MAX = -4
M_ARENA_MAX = -8
_OFF = "JAXCNN_HOST_MALLOC"


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    # gnu_get_libc_version is glibc's own: musl and other C libraries have no such symbol.
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


@functools.cache
def configure() -> str:
    """Apply the settings (once per process) and say what was done, in one line.

    Example:
        >>> configure().startswith(("glibc malloc", "malloc unchanged"))
        True
    """
    if os.environ.get(_OFF, "1") == "0":
        return f"malloc unchanged ({_OFF}=0)"
    libc = _glibc()
    if libc is None:
        return f"malloc unchanged (not glibc on Linux: {sys.platform})"
    late = ""
    xla_bridge = sys.modules.get("jax._src.xla_bridge")
    if xla_bridge is not None and xla_bridge.backends_are_initialized():
        # Threads that have allocated keep their own arenas: XLA's, if its CPU backend runs.
        late = ("; applied after JAX's backend started, so XLA's threads keep their own "
                "arenas: import jaxcnn before running JAX code")
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    version = libc.gnu_get_libc_version().decode()
    # A trim threshold of -1 is glibc's "never trim" (the int becomes SIZE_MAX).
    done = [libc.mallopt(M_ARENA_MAX, 1), libc.mallopt(M_MMAP_MAX, 0),
            libc.mallopt(M_TRIM_THRESHOLD, -1)]
    if not all(done):  # mallopt returns 0 for a value this glibc refuses
        return f"malloc unchanged (glibc {version} refused the settings: {done})"
    return f"glibc malloc {version}: one arena, every block from the heap, none trimmed{late}"


def status() -> str:
    """What :func:`configure` did in this process (it runs on ``import jaxcnn``).

    Example:
        >>> status() == configure()
        True
    """
    return configure()
