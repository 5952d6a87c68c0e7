"""The README's promises about the repository itself."""
import os
import re

import pytest
from conftest import ROOT


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_readme_starts_with_the_two_commands():
    start, test = readme_commands()
    assert start.endswith("streamlit run app.py") and "pip install" in start
    assert test.endswith("python -m pytest") and "pip install" in test


def test_ci_runs_exactly_the_readmes_test_command():
    _, test = readme_commands()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test in ci_lines


def test_requirements_pin_the_stack():
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for name in ("streamlit", "plotly", "pandas", "pytest"):
        assert name in pins


def test_core_never_imports_streamlit_or_the_dashboard():
    for path in (ROOT / "core").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+streamlit", text, re.M), path
        # anywhere in the file, indented imports inside functions too: core sits below the dashboard
        assert not re.search(r"^\s*(import|from)\s+dashboard\b", text, re.M), path


@pytest.fixture(scope="module")
def shared_by_the_module() -> int:
    return os.getpid()


def test_tests_sharing_a_module_fixture_run_on_one_worker(request, shared_by_the_module):
    """conftest.py puts such tests in one xdist group, so a served app or a trained run is set up once. xdist marks a
    grouped test by a suffix on its node id; under pytest 9.2 the suffix no longer took (pytest-xdist#1386) and every
    group was spread over the workers without a word, each setting the fixture up again."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("loadgroup")):
        pytest.skip("not run by xdist with --dist loadgroup")
    assert request.node.nodeid.endswith(f"@{request.node.module.__name__}")
