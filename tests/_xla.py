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
