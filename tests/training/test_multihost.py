"""Two local processes joined by jax.distributed (gloo on CPU) train like one 4-device run."""

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(out, pid, nproc, port, devices):
    return subprocess.Popen([sys.executable, "-m", "tests.training._multihost_worker", str(out),
                             str(pid), str(nproc), str(port), str(devices)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_match_single_process_four_devices(tmp_path):
    port = _free_port()
    procs = [_worker(tmp_path / f"p{i}.npz", i, 2, port, 2) for i in range(2)]
    reference = _worker(tmp_path / "ref.npz", 0, 1, 0, 4)
    for p in [*procs, reference]:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    p0, p1, ref = (np.load(tmp_path / f) for f in ("p0.npz", "p1.npz", "ref.npz"))
    assert int(p0["devices"]) == int(ref["devices"]) == 4
    keys = [k for k in ref.files if k != "devices"]
    assert keys and sorted(keys) == sorted(k for k in p0.files if k != "devices")
    for k in keys:
        np.testing.assert_array_equal(p0[k], p1[k])  # the two hosts agree exactly
        np.testing.assert_allclose(p0[k], ref[k], rtol=1e-5, atol=1e-6)
