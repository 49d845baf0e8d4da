"""The distribution as a user gets it: built, checked, installed into fresh virtual environments."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support.services import RedisSentinelSetup

# Building and installing into fresh environments downloads the extras: minutes on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
BASE_URL = "https://github.com/sessionauth/sessionauth"
# Where the description's links may point: the repository, and its raw files for images.
LINK_BASES = (f"{BASE_URL}/", f"{BASE_URL}#", "https://raw.githubusercontent.com/sessionauth/")
# Every name of every public package, imported from the installed wheel.
IMPORT_EVERYTHING = """
import importlib
packages = [
    "sessionauth", "sessionauth.auth", "sessionauth.backends", "sessionauth.fastapi",
    "sessionauth.starlette", "sessionauth.stores",
]
for package in packages:
    module = importlib.import_module(package)
    for name in module.__all__:
        getattr(module, name)
    exec(f"from {package} import *", {})
# Lazy stores: SQLite needs no extra; the others name the extra they need.
from sessionauth.stores import SQLiteStore
from sessionauth.errors import ConfigurationError
for name, extra in (("RedisStore", "redis"), ("PostgresStore", "postgres")):
    try:
        getattr(importlib.import_module("sessionauth.stores"), name)
    except ConfigurationError as exc:
        assert f"pip install 'sessionauth[{extra}]'" in str(exc), exc
    else:
        raise AssertionError(f"{name} imported without its extra")
print("imported", len(packages), "packages")
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


def metadata_of(wheel: Path) -> str:
    """The wheel's ``METADATA`` file: headers, a blank line, then the long description."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        return archive.read(name).decode()


def version_of(wheel: Path) -> str:
    """The version in the wheel's file name (``sessionauth-0.2.0.dev0-py3-none-any.whl``)."""
    return wheel.name.split("-")[1]


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
    # Only the package and its metadata: no tests, examples/ or docs/ snippets installed.
    assert all(name.startswith(("sessionauth/", "sessionauth-")) for name in names)


def test_the_description_has_only_absolute_links_and_the_project_urls(dist: Path) -> None:
    """PyPI shows README.md out of the repository: every link and image is absolute, on one base."""
    headers, _, description = metadata_of(next(dist.glob("*.whl"))).partition("\n\n")
    assert "## The library" in description  # the README itself, not a stub
    assert "## Changelog" in description
    targets = re.findall(r"\]\(([^)\s]*)", description)
    targets += re.findall(r"""(?:src|href)=["']([^"']*)""", description)
    assert len(targets) >= 5
    assert [target for target in targets if not target.startswith(LINK_BASES)] == []
    # No path outside the repository either, linked or not (the benchmark harness's).
    assert "../" not in description
    urls = dict(
        line.removeprefix("Project-URL: ").split(", ", 1)
        for line in headers.splitlines()
        if line.startswith("Project-URL: ")
    )
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(url == BASE_URL or url.startswith(f"{BASE_URL}/") for url in urls.values())
    assert "Description-Content-Type: text/markdown" in headers


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
    assert imported.stdout.strip() == "imported 6 packages"
    script = run(bin_dir / "sessionauth", "--help")
    assert script.returncode == 1
    assert "pip install 'sessionauth[server]'" in script.stderr
    assert "Traceback" not in script.stderr
    version = run(bin_dir / "sessionauth", "--version")
    assert (version.returncode, version.stdout) == (0, f"sessionauth {version_of(wheel)}\n")


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
    # `python -m sessionauth` is the same CLI (the script may not be on PATH).
    as_module = run(bin_dir / "python", "-m", "sessionauth", "--help", cwd=tmp_path)
    assert as_module.returncode == 0, as_module.stderr
    assert as_module.stdout == helped.stdout.replace(
        "Usage: sessionauth", "Usage: python -m sessionauth"
    )
    assert version.stdout.strip() == version_of(wheel)
    # The server extra brings the mail extra: every name of sessionauth.mail imports too.
    mail = "import sessionauth.mail as m; print(len([getattr(m, n) for n in m.__all__]))"
    imported = run(bin_dir / "python", "-c", mail, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert int(imported.stdout) >= 10
    # The CLI's own --version (another argument list than the bare `--version` alone).
    printed = run(bin_dir / "sessionauth", "--version", "users")
    assert (printed.returncode, printed.stdout) == (0, f"sessionauth {version_of(wheel)}\n")


# Loads 20 users' sessions at once (the read pipeline) and closes the store, for each URL given.
SERVE_AND_CLOSE_REDIS_STORES = """
import asyncio, sys, time
from sessionauth.record import SessionRecord
from sessionauth.backends.redis.sessions import RedisStore
from sessionauth.tokens import new_token, storage_id

async def serve_and_close(url, prefix):
    store = RedisStore.from_url(url, prefix=prefix)
    users = [str(n) for n in range(20)]
    sids = [storage_id(new_token(user)) for user in users]
    now = time.time()
    for user, sid in zip(users, sids):
        times = dict(created=now, seen=now, issued=now, expires=now + 60)
        await store.create(sid, SessionRecord(data={}, user_id=user, **times))
    loaded = await asyncio.gather(*(store.load(sid) for sid in sids))
    assert [record.user_id for record in loaded] == users, loaded
    for sid in sids:
        await store.delete(sid)
    await store.aclose()
    print("served and closed", url.partition("://")[0])

for url in sys.argv[2:]:
    asyncio.run(serve_and_close(url, sys.argv[1]))
"""


def lowest_versions(wheel: Path, extra: str) -> list[str]:
    """``name==version`` for each requirement of ``extra``, at the lowest version it allows."""
    metadata = metadata_of(wheel)
    pins = []
    for line in metadata.splitlines():
        requirement, _, marker = line.removeprefix("Requires-Dist:").partition(";")
        if (
            line.startswith("Requires-Dist:")
            and marker.replace('"', "'").strip() == f"extra == '{extra}'"
        ):
            requirement = requirement.strip()
            name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
            lowest = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
            assert lowest is not None, f"{requirement} has no lower bound"
            pins.append(f"{name}=={lowest.group(1)}")
    assert pins, f"the wheel declares no requirements for the {extra!r} extra"
    return pins


@pytest.mark.redis
def test_the_lowest_redis_versions_the_extra_allows_serve_and_close_every_kind_of_store(
    dist: Path,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_sentinel: RedisSentinelSetup,
) -> None:
    """The lowest redis and hiredis `[redis]` allows serve and close plain and Sentinel stores."""
    wheel = next(dist.glob("*.whl"))
    pins = lowest_versions(wheel, "redis")
    bin_dir = fresh_venv(tmp_path / "lowest-redis")
    installed = run(bin_dir / "pip", "install", "--quiet", f"{wheel}[redis]", *pins)
    assert installed.returncode == 0, installed.stderr
    served = run(
        bin_dir / "python",
        "-c",
        SERVE_AND_CLOSE_REDIS_STORES,
        redis_prefix,
        redis_url,
        redis_sentinel.url,
        cwd=tmp_path,
    )
    assert served.returncode == 0, f"with {' '.join(pins)}:\n{served.stderr}"
    assert served.stdout.split("\n")[:2] == [
        "served and closed redis",
        "served and closed redis+sentinel",
    ]
