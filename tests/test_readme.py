"""The README's example is the quickstart script, and it runs."""

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    return blocks


def _readme_example() -> str:
    return _python_blocks()[0]


def test_readme_example_is_the_quickstart_script():
    script = (ROOT / "experiments" / "quickstart.py").read_text()
    assert _readme_example().strip() in script


def test_quickstart_runs(capsys):
    runpy.run_path(str(ROOT / "experiments" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "(8, 14, 14, 6) (5, 5, 1, 6) (28, 28, 1) 12" in out
    assert "parameters: 150" in out


def test_every_other_readme_python_block_runs():
    for block in _python_blocks()[1:]:
        exec(compile(block, "README.md", "exec"), {})
