"""The README's promises about the repository itself."""
import re

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
