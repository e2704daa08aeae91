"""Scripts run as ``python benchmarks/x.py`` put their folder first on sys.path: a file there named like a
standard-library module shadows it for every library (benchmarks/platform.py once broke aiohttp's import)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_script_shadows_a_stdlib_module():
    clashes = [str(p.relative_to(ROOT)) for folder in ("benchmarks", "scripts", "deploy")
               for p in (ROOT / folder).glob("*.py") if p.stem in sys.stdlib_module_names]
    assert clashes == []
