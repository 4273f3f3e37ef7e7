"""ibdata on the installed ibapi release: detection, negotiation and a full round trip at
every server version the release can negotiate.

The suite runs with each supported release (``scripts/ibapi_compat.py``); these tests read
what is installed from ``ibapi`` itself (:mod:`tests.ibapi_release`) and check that ibdata
sees the same, offers TWS what it can decode, and works at each version up to it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import ibdata
from ibdata import _ibapi
from ibdata.sim import Simulator
from tests import ibapi_release as rel

#: Server versions at which a message ibdata reads changes layout (157 to 200).
GATES = [157, 163, 164, 166, 174, 176, 178, 182, 186, 187, 194, 196, 197, 200]


def test_release_is_read_from_the_installed_module() -> None:
    """release() names the version ibapi itself reports, normalised to three numbers."""
    found = _ibapi.release()
    assert tuple(int(p) for p in found.version.split(".")) == rel.VERSION
    assert found.max_client_version == rel.MAX_CLIENT_VERSION
    assert Path(found.location) == Path(_ibapi.ibapi.__file__).resolve().parent


def test_release_offers_at_most_server_version_200() -> None:
    """ibdata offers the release's own maximum, capped at 200 (the last text-framed one)."""
    found = _ibapi.release()
    assert found.max_server_version == min(rel.MAX_CLIENT_VERSION, 200) == rel.OFFERED
    assert _ibapi.hello() == f"v100..{rel.OFFERED}".encode()


def test_installed_release_has_one_owner() -> None:
    """In a clean environment exactly one installed package owns the ibapi files."""
    found = _ibapi.release()
    assert found.distribution is not None
    assert found.other_distributions == ()
    assert not found.mixed
    assert found.describe().startswith(f"ibapi {found.version} (from {found.distribution};")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("9.81.1-1", "9.81.1"), ("10.19.4", "10.19.4"), ("10.37.02", "10.37.2"),
     ("10.51.01", "10.51.1")],
)  # fmt: skip
def test_version_strings_of_every_release_normalise(raw: str, expected: str) -> None:
    """The version texts ibapi 9.81 to 10.51 report all read as major.minor.micro."""
    assert _ibapi._normalise(raw, None) == expected


# ---------------------------------------------------------------- owners of the files


def _record_line(site: Path, name: str) -> str:
    digest = hashlib.sha256((site / name).read_bytes()).digest()
    b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{name},sha256={b64},{(site / name).stat().st_size}"


def _install(site: Path, dist: str, files: dict[str, str]) -> None:
    """Lay out a distribution as pip installs it: its files and a dist-info whose RECORD
    holds their hashes."""
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = [_record_line(site, n) for n in files]
    (info / "RECORD").write_text("\n".join([*lines, f"{info.name}/RECORD,,"]) + "\n")


def _install_legacy(site: Path, dist: str, files: dict[str, str]) -> None:
    """Lay out a distribution as ``setup.py install`` does (pip before 23.1 without
    ``wheel``, Python 3.10's own pip): an egg-info whose installed-files.txt has no hashes,
    and a SOURCES.txt of source paths."""
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    info = site / f"{dist.replace('-', '_')}-1.0-py3.10.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "SOURCES.txt").write_text("".join(f"src/{n}\n" for n in ["setup.py", *files]))
    lines = [f"../{n}" for n in files] + ["PKG-INFO", "SOURCES.txt"]
    (info / "installed-files.txt").write_text("\n".join(lines) + "\n")


def test_owners_names_the_one_distribution_whose_files_are_there(tmp_path: Path) -> None:
    """A folder installed by one package is owned by it, with no other claimant."""
    _install(tmp_path, "ibapi", {"ibapi/__init__.py": "A = 1\n", "ibapi/client.py": "x\n"})
    assert _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)]) == ("ibapi", ())


def test_owners_reports_a_second_package_over_the_same_files(tmp_path: Path) -> None:
    """The trap of PyPI's repackagings: installed after ibapi 9.81.1, ibapi-latest overwrites
    its files; the folder is ibapi-latest's, and 9.81.1's claim is reported."""
    _install(tmp_path, "ibapi", {"ibapi/__init__.py": "OLD = 1\n", "ibapi/client.py": "old\n"})
    _install(tmp_path, "ibapi-latest", {"ibapi/__init__.py": "NEW\n", "ibapi/client.py": "n\n"})
    owner, others = _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)])
    assert (owner, others) == ("ibapi-latest", ("ibapi",))


def test_owners_finds_no_owner_for_a_mixture(tmp_path: Path) -> None:
    """Files of two releases mixed in one folder match neither record: no owner."""
    _install(tmp_path, "ibapi", {"ibapi/__init__.py": "OLD\n", "ibapi/client.py": "old\n"})
    _install(tmp_path, "nautilus-ibapi", {"ibapi/__init__.py": "NEW\n", "ibapi/decoder.py": "d\n"})
    (tmp_path / "ibapi/client.py").write_text("changed by hand\n")
    owner, others = _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)])
    assert owner == "nautilus-ibapi"  # its own files are intact; client.py is not its file
    assert others == ("ibapi",)
    (tmp_path / "ibapi/decoder.py").write_text("overwritten\n")
    owner, others = _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)])
    assert owner is None
    assert sorted(others) == ["ibapi", "nautilus-ibapi"]


def test_owners_names_a_release_installed_without_hashes(tmp_path: Path) -> None:
    """A release installed by ``setup.py install`` owns its folder when nothing else
    claims it, though its record has no hashes to check."""
    _install_legacy(tmp_path, "ibapi", {"ibapi/__init__.py": "A\n", "ibapi/client.py": "x\n"})
    assert _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)]) == ("ibapi", ())
    (tmp_path / "ibapi/client.py").unlink()
    assert _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)]) == (None, ("ibapi",))


def test_owners_prefers_a_checked_record_to_one_without_hashes(tmp_path: Path) -> None:
    """ibapi-latest installed over a ``setup.py install`` of 9.81.1 owns the folder, and
    9.81.1's claim is reported; two unchecked claims leave the folder without an owner."""
    _install_legacy(tmp_path, "ibapi", {"ibapi/__init__.py": "OLD\n", "ibapi/client.py": "o\n"})
    _install(tmp_path, "ibapi-latest", {"ibapi/__init__.py": "NEW\n", "ibapi/client.py": "n\n"})
    owner, others = _ibapi.owners(tmp_path / "ibapi", [str(tmp_path)])
    assert (owner, others) == ("ibapi-latest", ("ibapi",))
    other = tmp_path / "other"
    _install_legacy(other, "ibapi", {"ibapi/__init__.py": "OLD\n"})
    _install_legacy(other, "ibapi-stable", {"ibapi/__init__.py": "NEW\n"})
    owner, others = _ibapi.owners(other / "ibapi", [str(other)])
    assert owner is None
    assert sorted(others) == ["ibapi", "ibapi-stable"]


def test_owners_ignores_packages_elsewhere(tmp_path: Path) -> None:
    """A package whose ibapi files live in another folder does not claim this one."""
    _install(tmp_path / "a", "ibapi", {"ibapi/__init__.py": "A\n"})
    _install(tmp_path / "b", "ibapi-stable", {"ibapi/__init__.py": "B\n"})
    search = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert _ibapi.owners(tmp_path / "a" / "ibapi", search) == ("ibapi", ())


# ---------------------------------------------------------------- calling conventions


def test_interpret_reaches_the_wrapper_in_this_release() -> None:
    """A text message given with its id reaches the wrapper, whatever interpret takes."""
    seen: list[int] = []

    class Sink(_ibapi._wrapper.EWrapper):  # type: ignore[misc]
        def nextValidId(self, orderId: int) -> None:  # noqa: N803
            seen.append(orderId)

    decoder = _ibapi._decoder.Decoder(Sink(), 157)
    _ibapi.interpret(decoder, [b"9", b"1", b"117"], 9)
    assert seen == [117]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((5, 200, "No security"), (5, 200, "No security")),
        ((5, 200, "No security", ""), (5, 200, "No security")),
        ((5, 1_700_000_000_000, 200, "No security", ""), (5, 200, "No security")),
        ((-1, 1_700_000_000_000, 2104, "farm OK"), (-1, 2104, "farm OK")),
    ],
)
def test_every_error_signature_is_read(
    args: tuple[object, ...], expected: tuple[int, int, str]
) -> None:
    """error() of 9.81 (3 arguments), 10.x (4) and 10.37+ (errorTime first) all read alike."""
    assert _ibapi.normalize_error(*args) == expected


def test_an_unreadable_error_call_is_refused() -> None:
    """Arguments of no release's error() raise TypeError rather than guessing."""
    with pytest.raises(TypeError, match="unexpected error"):
        _ibapi.normalize_error(5, "x")


@pytest.mark.parametrize(
    ("value", "unset"),
    [(2**31 - 1, True), (2**63 - 1, True), (2**127 - 1, True), (1.7976931348623157e308, True),
     (float("nan"), True), (2**31 - 2, False), (0.0, False), (-1.0, False), (3e9, False)],
)  # fmt: skip
def test_unset_sentinels(value: float, unset: bool) -> None:
    """UNSET_INTEGER, UNSET_LONG, UNSET_DECIMAL and UNSET_DOUBLE are 'no value'; real
    numbers, even large volumes, are not."""
    assert _ibapi.is_unset(value) is unset


# ---------------------------------------------------------------- over the wire


@pytest.mark.parametrize("sv", rel.versions(GATES))
def test_client_works_at_every_server_version_the_release_speaks(
    sv: int, sim_factory: Callable[..., Simulator]
) -> None:
    """At each layout gate up to the release's maximum, ibdata negotiates that version,
    reads contract data, downloads a range of bars and a head timestamp, and reports its
    release and version in health()."""
    sim = sim_factory(server_version=sv)
    end = sim.clock.now().replace(minute=0, second=0, microsecond=0)
    with ibdata.Client(sim.host, sim.port, timeout=10) as ib:
        health = ib.health()
        assert (health.server_version, health.ibapi_version) == (sv, _ibapi.release().version)
        (aapl,) = ib.get_contract_details("AAPL")
        assert (aapl.contract.con_id, aapl.time_zone_id) == (265598, "US/Eastern")
        assert aapl.min_size == (0.0001 if sv >= 164 else None)
        bund = ib.get_contract_details("EURBBL")[0]
        assert bund.contract.symbol == "GBL"
        bars = ib.get_historical_bars(
            "AAPL", start=end - dt.timedelta(days=3), end=end, bar_size="1 hour"
        )
        assert len(bars) > 20
        assert all(end - dt.timedelta(days=3) <= b.time < end for b in bars)
        assert bars.start is not None
        assert bars.end is not None
        assert all(b.volume is not None and b.count is not None for b in bars)
        daily = ib.get_historical_bars("AAPL", duration="1 W", bar_size="1 day")
        assert 4 <= len(daily) <= 6
    # a range download asks for the head timestamp first (88, through ibapi's decoder)
    assert sim.received.find("reqHeadTimestamp")


def test_client_negotiates_the_smaller_of_its_offer_and_the_servers(
    sim_factory: Callable[..., Simulator],
) -> None:
    """Against a server offering 200, ibdata gets what it offered: 157 with 9.81.1, 176
    with 10.19, 187 with 10.30, 200 with 10.37 and later."""
    sim = sim_factory(server_version=200)
    with ibdata.Client(sim.host, sim.port) as ib:
        assert ib.health().server_version == rel.OFFERED


# ---------------------------------------------------------------- no release, a broken one


def _import_ibdata(tmp_path: Path, prelude: str) -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nimport ibdata\n"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


def test_without_ibapi_import_says_how_to_install_one(tmp_path: Path) -> None:
    """With no ibapi importable, ``import ibdata`` raises ImportError naming the extras."""
    prelude = (
        "import sys, importlib.abc\n"
        "class NoIbapi(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'ibapi' or name.startswith('ibapi.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoIbapi())"
    )
    done = _import_ibdata(tmp_path, prelude)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ibdata needs IB's Python client 'ibapi'")
    assert "pip install 'ibdata[ibapi]'" in last
    assert "pip install 'ibdata[ibapi-latest]'" in last


def test_an_ibapi_folder_left_empty_by_an_uninstall_is_named(tmp_path: Path) -> None:
    """Uninstalling one of two packages that shared the ibapi folder leaves it without its
    files; ``import ibdata`` then says so and how to repair it."""
    (tmp_path / "ibapi").mkdir()  # what is left: the package, without its decoder
    (tmp_path / "ibapi" / "__init__.py").write_text('VERSION = {"major": 1051, "minor": 1}\n')
    done = _import_ibdata(tmp_path, f"import sys\nsys.path.insert(0, {str(tmp_path)!r})")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: the installed 'ibapi' is incomplete")
    assert "Uninstall every release" in last
