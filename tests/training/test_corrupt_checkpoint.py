"""Damaged checkpoints are detected, reported with their path and skipped; restores never unpickle.

The latest checkpoint is truncated, garbled or stripped of its metadata; ``restore_latest``
must warn naming it, restore the previous one bit-identically and move the bad one aside. A
save that fails before its commit leaves nothing under a final name.
"""

import _pickle
import os
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from orbax.checkpoint.path import atomicity

from jaxcnn.training import create_train_state, make_optimizer
from jaxcnn.training.checkpoint import Checkpointer
from tests.training._models import TinyNet


@pytest.fixture(scope="module")
def base():
    return create_train_state(TinyNet(), make_optimizer("momentum", 0.1), jax.random.PRNGKey(0),
                              jnp.ones((1, 8, 8, 1)))


def _at(state, step):
    """``state`` at ``step`` with every float leaf (params, momentum, BN stats) changed."""
    rng = np.random.default_rng(step)

    def noise(x):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            return x
        return jnp.asarray(rng.normal(size=x.shape), x.dtype)

    return state.replace(step=jnp.asarray(step, jnp.int32),
                         params=jax.tree_util.tree_map(noise, state.params),
                         batch_stats=jax.tree_util.tree_map(noise, state.batch_stats),
                         opt_state=jax.tree_util.tree_map(noise, state.opt_state))


def _assert_same(a, b):
    for field in ("step", "params", "batch_stats", "opt_state", "rng"):
        jax.tree_util.tree_map(np.testing.assert_array_equal, getattr(a, field),
                               getattr(b, field))


def _save(directory, base, steps):
    with Checkpointer(directory, every_steps=1, keep=10) as ckpt:
        for step in steps:
            assert ckpt.save(_at(base, step))


def _largest_file(step_dir: Path) -> Path:
    return max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _truncate(step_dir):
    data = _largest_file(step_dir)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def _garble(step_dir):
    """Flip a few bytes inside the arrays' data: Orbax alone restores this without an error."""
    data = _largest_file(step_dir)
    raw = bytearray(data.read_bytes())
    for i in np.random.default_rng(0).integers(64, len(raw) - 64, 8):
        raw[i] ^= 0xFF
    data.write_bytes(bytes(raw))


def _drop_commit_record(step_dir):
    (step_dir / "_CHECKPOINT_METADATA").unlink()


def _garble_tree_metadata(step_dir):
    meta = step_dir / "default" / "_METADATA"
    meta.write_text(meta.read_text()[:50])


@pytest.mark.parametrize("damage", [_truncate, _garble, _drop_commit_record,
                                    _garble_tree_metadata])
def test_damaged_latest_falls_back_to_previous(tmp_path, base, damage):
    _save(tmp_path, base, [1, 2, 3])
    damage(tmp_path / "3")
    with Checkpointer(tmp_path, every_steps=1) as ckpt:
        with pytest.warns(RuntimeWarning, match=rf"checkpoint {tmp_path / '3'} .*Restored "
                                                rf"step 2 instead; moved .* to .*3\.corrupt"
                                                rf"\.$"):
            restored = ckpt.restore_latest(base)
        _assert_same(restored, _at(base, 2))
        # The bad one is set aside, not deleted, and no longer counts: step 3 is saved afresh.
        assert ckpt.all_steps() == [1, 2] and (tmp_path / "3.corrupt").is_dir()
        assert ckpt.save(_at(base, 3))
    with Checkpointer(tmp_path, every_steps=1) as ckpt:
        _assert_same(ckpt.restore_latest(base), _at(base, 3))


def test_falls_back_over_several_bad_ones(tmp_path, base):
    _save(tmp_path, base, [1, 2, 3])
    _garble(tmp_path / "3")
    _truncate(tmp_path / "2")
    with Checkpointer(tmp_path, every_steps=1) as ckpt:
        with pytest.warns(RuntimeWarning) as caught:
            _assert_same(ckpt.restore_latest(base), _at(base, 1))
    messages = " ".join(str(w.message) for w in caught)
    assert str(tmp_path / "3") in messages and str(tmp_path / "2") in messages
    assert sorted(os.listdir(tmp_path)) == ["1", "2.corrupt", "3.corrupt"]


def test_restore_of_a_garbled_step_names_its_path(tmp_path, base):
    _save(tmp_path, base, [1])
    _garble(tmp_path / "1")
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(ValueError, match=rf"checkpoint {tmp_path / '1'} is corrupt"):
            ckpt.restore(1, base)


def test_no_good_checkpoint_raises_naming_the_directory_and_keeps_them(tmp_path, base):
    _save(tmp_path, base, [1, 2])
    _truncate(tmp_path / "1")
    _garble(tmp_path / "2")
    with Checkpointer(tmp_path) as ckpt:
        with pytest.raises(ValueError, match=rf"none of the checkpoints in {tmp_path} could be "
                                             rf"restored:\n  step 2: .*\n  step 1: "):
            ckpt.restore_latest(base)
    assert sorted(os.listdir(tmp_path)) == ["1", "2"]  # a changed model is not corruption


def test_checkpoint_without_digest_is_still_restored(tmp_path, base):
    """Checkpoints written before the digest existed (plain Orbax) restore unverified."""
    state = _at(base, 5)
    fields = {k: getattr(state, k) for k in ("step", "params", "batch_stats", "opt_state",
                                             "rng")}
    with ocp.CheckpointManager(tmp_path) as manager:
        manager.save(5, args=ocp.args.StandardSave(fields))
    with Checkpointer(tmp_path) as ckpt:
        _assert_same(ckpt.restore_latest(base), state)


def test_a_save_that_fails_before_commit_leaves_no_final_directory(tmp_path, base, monkeypatch):
    _save(tmp_path, base, [1])

    async def fail(self, *args, **kwargs):
        raise OSError("disk full (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", fail)
        with Checkpointer(tmp_path, every_steps=1) as ckpt, pytest.raises(OSError):
            ckpt.save(_at(base, 2))
    names = os.listdir(tmp_path)
    assert "2" not in names and any(n.startswith("2.orbax-checkpoint-tmp") for n in names)
    with Checkpointer(tmp_path, every_steps=1) as ckpt:  # a restart
        assert ckpt.all_steps() == [1]
        _assert_same(ckpt.restore_latest(base), _at(base, 1))
    assert os.listdir(tmp_path) == ["1"]  # the leftover tmp directory was deleted


def test_restore_never_unpickles(tmp_path, base, monkeypatch):
    """Loading a checkpoint runs no code from it: every pickle entry point raises meanwhile."""
    _save(tmp_path, base, [1, 2])

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while restoring a checkpoint")

    for module in (pickle, _pickle):
        for name in ("load", "loads", "Unpickler"):
            monkeypatch.setattr(module, name, forbidden)
    with Checkpointer(tmp_path) as ckpt:  # a fresh manager: metadata is read under the patch
        _assert_same(ckpt.restore_latest(base), _at(base, 2))
        _assert_same(ckpt.restore(1, base), _at(base, 1))
