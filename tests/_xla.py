"""``XLA_FLAGS`` for test processes: the caller's flags with the host device count set."""

import os
import re


def with_device_count(count: int, flags: str | None = None) -> str:
    """``flags`` (default: this process's ``XLA_FLAGS``) with the device count replaced.

    Example:
        >>> with_device_count(2, "--a=1 --xla_force_host_platform_device_count=8")
        '--a=1 --xla_force_host_platform_device_count=2'
    """
    flags = os.environ.get("XLA_FLAGS", "") if flags is None else flags
    kept = re.sub(r"--xla_force_host_platform_device_count=\S+", "", flags).split()
    return " ".join(kept + [f"--xla_force_host_platform_device_count={count}"])


# XLA's CPU fusion emitters build a fresh MLIR context for every fusion they compile, about
# half of the compile time of the small programs the suite is made of; the classic emitters
# compile the same HLO in half the time. Test processes only; benchmarks and users keep XLA's
# defaults, and so do `optimized_xla` tests and their subprocesses (conftest.py).
QUICK_COMPILE_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)


def with_quick_compile(flags: str | None = None) -> str:
    """``flags`` (default: this process's ``XLA_FLAGS``) plus the quick-compile flags, where
    ``flags`` does not already choose them.

    Example:
        >>> with_quick_compile("--a=1")
        '--a=1 --xla_cpu_use_fusion_emitters=false'
        >>> with_quick_compile("--xla_cpu_use_fusion_emitters=true")
        '--xla_cpu_use_fusion_emitters=true'
    """
    flags = os.environ.get("XLA_FLAGS", "") if flags is None else flags
    added = [f for f in QUICK_COMPILE_FLAGS if f.split("=")[0] + "=" not in flags]
    return " ".join(flags.split() + added)


def without_quick_compile(flags: str | None = None) -> str:
    """``flags`` (default: this process's ``XLA_FLAGS``) without the quick-compile flags.

    Example:
        >>> without_quick_compile("--a=1 --xla_cpu_use_fusion_emitters=false")
        '--a=1'
    """
    flags = os.environ.get("XLA_FLAGS", "") if flags is None else flags
    return " ".join(f for f in flags.split() if f not in QUICK_COMPILE_FLAGS)
