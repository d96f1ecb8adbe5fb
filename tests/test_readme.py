"""The README's example is the quickstart script, and it runs."""

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    return blocks[0]


def test_readme_example_is_the_quickstart_script():
    script = (ROOT / "experiments" / "quickstart.py").read_text()
    assert _readme_example().strip() in script


def test_quickstart_runs(capsys):
    runpy.run_path(str(ROOT / "experiments" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "(8, 14, 14, 6) (5, 5, 1, 6) (28, 28, 1) 12" in out
    assert "parameters: 150" in out
