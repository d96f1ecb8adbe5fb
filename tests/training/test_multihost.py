"""Two local processes joined by jax.distributed (gloo on CPU) train like one 4-device run."""

import numpy as np

from tests.training._multihost_worker import free_port, launch


def test_two_processes_match_single_process_four_devices(tmp_path):
    port = free_port()
    procs = [launch(tmp_path / f"p{i}.npz", i, 2, port, 2) for i in range(2)]
    reference = launch(tmp_path / "ref.npz", 0, 1, 0, 4)
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
