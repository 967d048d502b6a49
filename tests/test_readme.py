"""The README's Python examples are executed, so they cannot rot."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_quickstart():
    assert blocks(), "README.md has no python example"


def test_readme_examples_run():
    for code in blocks():
        exec(compile(code, str(README), "exec"), {})
