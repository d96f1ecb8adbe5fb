"""Keep XLA:CPU's large buffers mapped between executions (glibc ``malloc`` settings), on request.

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
once.

These are settings of the whole process, so the library never makes them by itself: importing
or using jaxcnn leaves ``malloc`` as it was. A program opts in by calling :func:`configure`
(public name :func:`jaxcnn.tune_host_malloc`) first thing, before JAX's CPU backend starts
(before the first array or computation): a thread keeps the arena of its first allocation, and
XLA's threads allocate as soon as the backend starts. Called later it still applies the
settings but warns that XLA's threads keep their own arenas. With a GPU or TPU as JAX's default
backend it changes nothing (and warns): the per-step buffers are then device memory. jaxcnn's
own applications (``python -m experiments.train``, the benchmarks) opt in through
:func:`configure_from_env`, which ``JAXCNN_HOST_MALLOC=0`` in the environment turns off.
:func:`status` says what was done in this process.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
import threading
import warnings

__all__ = ["HostMallocWarning", "configure", "configure_from_env", "default_platform", "status"]

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
M_MMAP_MAX = -4
M_ARENA_MAX = -8
ENV = "JAXCNN_HOST_MALLOC"
NOT_CALLED = "malloc unchanged (not requested: jaxcnn.tune_host_malloc() was not called)"

_lock = threading.Lock()
_status = NOT_CALLED
_applied = False


class HostMallocWarning(UserWarning):
    """:func:`configure` could not do all it was asked: called too late, or not on CPU."""


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    # gnu_get_libc_version is glibc's own: musl and other C libraries have no such symbol.
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def _backend_started() -> bool:
    xla_bridge = sys.modules.get("jax._src.xla_bridge")
    return xla_bridge is not None and bool(xla_bridge.backends_are_initialized())


def _accelerator_plugins() -> list[str]:
    """JAX's PJRT plugins (CUDA, ROCm, ...) and libtpu installed here, found without importing
    them (JAX imports them when its backends start, and then prefers them to the CPU)."""
    names = set()
    spec = importlib.util.find_spec("jax_plugins")
    if spec is not None and spec.submodule_search_locations:
        names.update(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations))
    names.update(ep.name for ep in importlib.metadata.entry_points(group="jax_plugins"))
    if importlib.util.find_spec("libtpu") is not None:
        names.add("libtpu")
    return sorted(names)


def default_platform() -> str:
    """JAX's default platform, decided without starting a backend.

    Once a backend runs, :func:`jax.default_backend`. Before: the first of ``jax_platforms``
    (``JAX_PLATFORMS``) when set, else ``"cpu"`` unless a GPU/TPU plugin is installed, in which
    case JAX will try it first: ``"accelerator (plugins: ...)"``, which is not ``"cpu"`` even if
    no device turns up (set ``JAX_PLATFORMS=cpu`` to say so).

    Example:
        >>> isinstance(default_platform(), str)
        True
    """
    if _backend_started():
        import jax

        return jax.default_backend()
    jax_mod = sys.modules.get("jax")
    chosen = jax_mod.config.jax_platforms if jax_mod is not None else None
    chosen = chosen if chosen is not None else os.environ.get("JAX_PLATFORMS")
    if chosen and chosen.strip():
        first = chosen.split(",")[0].strip().lower()
        return {"cuda": "gpu", "rocm": "gpu"}.get(first, first)
    plugins = _accelerator_plugins()
    return f"accelerator (plugins: {', '.join(plugins)})" if plugins else "cpu"


def _apply() -> tuple[str, str | None]:
    """(status line, why to warn or None) for one attempt at applying the settings."""
    global _applied
    libc = _glibc()
    if libc is None:
        return f"malloc unchanged (not glibc on Linux: {sys.platform})", None
    platform = default_platform()
    if platform != "cpu":
        return (f"malloc unchanged (JAX's default backend is {platform}, not the CPU: its "
                f"per-step buffers are device memory; set JAX_PLATFORMS=cpu to train on the "
                f"CPU)"), "off_cpu"
    late = _backend_started()
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    version = libc.gnu_get_libc_version().decode()
    # A trim threshold of -1 is glibc's "never trim" (the int becomes SIZE_MAX).
    done = [libc.mallopt(M_ARENA_MAX, 1), libc.mallopt(M_MMAP_MAX, 0),
            libc.mallopt(M_TRIM_THRESHOLD, -1)]
    if not all(done):  # mallopt returns 0 for a value this glibc refuses
        return f"malloc unchanged (glibc {version} refused the settings: {done})", "refused"
    _applied = True
    line = f"glibc malloc {version}: one arena, every block from the heap, none trimmed"
    if late:
        return (line + "; applied after JAX's backend started, so XLA's threads keep their own "
                "arenas: call jaxcnn.tune_host_malloc() before running JAX code"), "late"
    return line, None


def _configure(*, warn_off_cpu: bool) -> str:
    global _status
    with _lock:
        if _applied:
            return _status
        _status, why = _apply()
    if why is not None and (warn_off_cpu or why != "off_cpu"):
        warnings.warn(_status, HostMallocWarning, stacklevel=3)
    return _status


def configure() -> str:
    """Set glibc's ``malloc`` for XLA:CPU (see the module docstring); say what was done.

    A request by the program: call it first, before JAX's CPU backend starts. Applied once per
    process (later calls return the same line). Warns (:class:`HostMallocWarning`) when it
    comes after JAX's backend started (the settings are applied but miss XLA's threads), when
    JAX's default backend is not the CPU (nothing is changed) or when glibc refuses a setting.
    Elsewhere than Linux with glibc it changes nothing, silently. Also
    :func:`jaxcnn.tune_host_malloc`.

    Returns:
        One line: ``"glibc malloc 2.36: one arena, ..."`` or ``"malloc unchanged (why)"``.

    Example:
        >>> import jaxcnn
        >>> jaxcnn.tune_host_malloc  # doctest: +ELLIPSIS
        <function configure at ...>
    """
    return _configure(warn_off_cpu=True)


def configure_from_env() -> str:
    """:func:`configure` unless ``JAXCNN_HOST_MALLOC=0``: what jaxcnn's applications call.

    ``python -m experiments.train`` and the benchmarks are programs, not the library: they opt
    in at start-up, and the environment variable is their switch (``0``: leave ``malloc`` alone,
    anything else or unset: configure). A GPU/TPU default backend is not worth a warning here
    (the settings are for CPU runs); the other warnings of :func:`configure` stay.
    """
    global _status
    if os.environ.get(ENV, "1") == "0":
        with _lock:
            if not _applied:
                _status = f"malloc unchanged ({ENV}=0)"
            return _status
    return _configure(warn_off_cpu=False)


def status() -> str:
    """What :func:`configure` did in this process (nothing unless the program asked).

    Example:
        >>> status().startswith(("glibc malloc", "malloc unchanged"))
        True
    """
    return _status
