"""The distribution as a user gets it: built, checked, installed into fresh virtual environments."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Every name of every public package, imported from the installed wheel.
IMPORT_EVERYTHING = """
import importlib
for package in ("sessionauth", "sessionauth.stores"):
    module = importlib.import_module(package)
    for name in module.__all__:
        getattr(module, name)
print("imported", module.__name__)
"""


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and build tools
        [str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist built from this checkout, as `python -m build` makes them."""
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def fresh_venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin"


def test_the_wheel_and_sdist_pass_twine_check_and_ship_license_and_types(dist: Path) -> None:
    """Both artefacts pass `twine check --strict`; the wheel carries LICENSE and py.typed."""
    artefacts = sorted(dist.iterdir())
    assert sorted(path.suffix for path in artefacts) == [".gz", ".whl"]
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *artefacts)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wheel = next(path for path in artefacts if path.suffix == ".whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sessionauth/py.typed" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert not any(name.startswith("tests/") for name in names)


def test_the_bare_wheel_imports_everything_and_its_script_names_the_extra(
    dist: Path, tmp_path: Path
) -> None:
    """Without extras every public name imports; the CLI names the extra it needs."""
    wheel = next(dist.glob("*.whl"))
    bin_dir = fresh_venv(tmp_path / "bare")
    installed = run(bin_dir / "pip", "install", "--quiet", wheel)
    assert installed.returncode == 0, installed.stderr
    imported = run(bin_dir / "python", "-c", IMPORT_EVERYTHING, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    script = run(bin_dir / "sessionauth", "--help")
    assert script.returncode == 1
    assert "pip install 'sessionauth[server]'" in script.stderr
    assert "Traceback" not in script.stderr


def test_the_wheel_with_the_server_extra_runs_the_cli(dist: Path, tmp_path: Path) -> None:
    """With `[server]`, the console script runs the CLI and reports the package's version."""
    wheel = next(dist.glob("*.whl"))
    bin_dir = fresh_venv(tmp_path / "server")
    installed = run(bin_dir / "pip", "install", "--quiet", f"{wheel}[server]")
    assert installed.returncode == 0, installed.stderr
    version = run(bin_dir / "python", "-c", "import sessionauth; print(sessionauth.__version__)")
    helped = run(bin_dir / "sessionauth", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
    assert version.stdout.strip() == "0.1.0"
