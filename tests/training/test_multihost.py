"""Two local processes joined by jax.distributed (gloo on CPU) train like one 4-device run.

With dropout and augmentation on (tests/training/_multihost_worker.py): the mesh step draws
its random bits for the global batch, whichever process holds which examples, so the two
processes agree bit for bit and match one 4-device process up to rounding.
"""

import chex
import numpy as np

from tests.training._multihost_worker import free_port, launch


def test_two_processes_match_single_process_four_devices(tmp_path):
    port = free_port()
    procs = [launch(tmp_path / f"p{i}.npz", i, 2, port, 2) for i in range(2)]
    reference = launch(tmp_path / "ref.npz", 0, 1, 0, 4)
    for p in [*procs, reference]:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    p0, p1, ref = (dict(np.load(tmp_path / f)) for f in ("p0.npz", "p1.npz", "ref.npz"))
    assert int(p0.pop("devices")) == int(p1.pop("devices")) == int(ref.pop("devices")) == 4
    assert any(k.startswith("['params']") for k in ref) and any(k.startswith("['bs']")
                                                                for k in ref), sorted(ref)
    chex.assert_trees_all_equal(p0, p1, strict=True)  # the two hosts agree exactly
    chex.assert_trees_all_close(p0, ref, rtol=1e-5, atol=1e-6)
