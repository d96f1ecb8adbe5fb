"""``python -m experiments.train``, optionally frozen in the middle of a checkpoint save.

    JAXCNN_TEST_PAUSE_IN_SAVE=MARKER python -m tests.training._hooked_train [train flags]

With the variable set, the first checkpoint save to reach Orbax's commit (every array written
to ``<step>.orbax-checkpoint-tmp-*``, the rename not yet done) writes the tmp path to MARKER
and sleeps, so a test can SIGKILL the process at that exact point. Without it, this is
``experiments.train`` unchanged.
"""

import os
import runpy
import time
from pathlib import Path

PAUSE_ENV = "JAXCNN_TEST_PAUSE_IN_SAVE"


def _pause_at_commit(marker: str) -> None:
    from orbax.checkpoint.path import atomicity

    async def finalize(self, *args, **kwargs):
        Path(marker).write_text(str(self.get()))
        while True:
            time.sleep(60)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize


if __name__ == "__main__":
    if os.environ.get(PAUSE_ENV):
        _pause_at_commit(os.environ[PAUSE_ENV])
    runpy.run_module("experiments.train", run_name="__main__", alter_sys=True)
