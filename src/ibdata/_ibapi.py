"""The installed ``ibapi`` release: what it is, how to call it, and what it may negotiate.

IB's Python client has changed its own interfaces across releases, and ibdata works with
every release from PyPI's 9.81.1 to IB's newest 10.x. Everything that differs between
releases is detected here, once, by looking at the installed code (signatures and
constants), never by parsing version numbers:

* ``Decoder.interpret(fields)`` takes every field up to 10.30; from 10.37 it is
  ``interpret(fields, msgId)`` with the fields *after* the message id.
* ``EWrapper.error`` is ``(reqId, errorCode, errorString)`` in 9.81,
  ``(reqId, errorCode, errorString, advancedOrderRejectJson)`` in 10.x before 10.37 and
  ``(reqId, errorTime, errorCode, errorString, advancedOrderRejectJson)`` from 10.37.
* ``BarData`` names the WAP ``average`` in 9.81 and ``wap`` in 10.x (a :class:`Decimal`).
* 10.x marks absent values with sentinels: ``UNSET_DECIMAL`` (2**127 - 1), ``UNSET_DOUBLE``
  (the largest float) and ``UNSET_INTEGER`` (2**31 - 1).
* A 10.37+ client offers server versions 201 and up, at which TWS frames message ids as
  4-byte binary integers and sends protobuf. ibdata reads TWS's stream itself and decodes
  only the text framing, so it offers at most :data:`MAX_SERVER_VERSION` (200), whatever
  the release could offer; TWS serves older client versions.

Importing this module imports ``ibapi``; if it is not installed the :class:`ImportError`
says how to install it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import math
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

_INSTALL = (
    "Install PyPI's release with  pip install 'ibdata[ibapi]'  or IB's current one with  "
    "pip install 'ibdata[ibapi-latest]'  (or pip install the 'pythonclient' folder of IB's "
    "API download); see ibdata's 'Connecting' guide, section 'IB's Python client'."
)

try:
    import ibapi
    from ibapi import decoder as _decoder
    from ibapi import server_versions as _server_versions
    from ibapi import wrapper as _wrapper
except ModuleNotFoundError as exc:
    if exc.name != "ibapi":
        raise
    raise ImportError(
        f"ibdata needs IB's Python client 'ibapi', which is not installed. {_INSTALL}"
    ) from None
except ImportError as exc:  # e.g. files removed by uninstalling a second package
    raise ImportError(
        f"the installed 'ibapi' is incomplete ({exc}): two packages installed it and one "
        f"was removed, or it was damaged. Uninstall every release (pip uninstall ibapi "
        f"ibapi-latest ibapi-stable nautilus-ibapi), then install one. {_INSTALL}"
    ) from exc

#: The highest server version ibdata negotiates: the last one whose messages are all text.
#: From 201 TWS sends binary message ids and protobuf, which ibdata's reader does not decode.
MAX_SERVER_VERSION = 200
#: The lowest server version ibdata's decoders handle (ibapi 9.81.1's maximum).
MIN_SERVER_VERSION = 157

#: ibapi's sentinels for "no value" (10.x; 9.81.1 has the first three).
UNSET_INTEGER = 2**31 - 1
UNSET_LONG = 2**63 - 1
UNSET_DOUBLE = sys.float_info.max
UNSET_DECIMAL = 2**127 - 1

_HASH_CHUNK = 1 << 16


@attrs.frozen
class IbapiRelease:
    """The ``ibapi`` release ibdata runs on, as installed in this environment.

    Attributes:
        version: The release, normalised to ``major.minor.micro`` (``9.81.1``,
            ``10.19.4``, ``10.51.1``), read from the installed module itself.
        location: The directory the ``ibapi`` module is imported from.
        distribution: The installed distribution whose files these are (``ibapi``,
            ``ibapi-latest``, ``nautilus-ibapi`` …), or None when no installed
            distribution's record matches the module's files (copied by hand, or a
            mixture of two releases).
        other_distributions: Other installed distributions that claim files of the same
            ``ibapi`` folder. Any entry here is a trap: uninstalling either removes files of
            the other, and installing either overwrites the other's files.
        max_client_version: The highest server version the release itself could negotiate.
        max_server_version: The highest server version ibdata offers TWS with this release:
            the smaller of ``max_client_version`` and 200.
    """

    version: str
    location: str
    distribution: str | None
    other_distributions: tuple[str, ...]
    max_client_version: int
    max_server_version: int

    @property
    def mixed(self) -> bool:
        """True when the installation is not one release's files alone."""
        return self.distribution is None or bool(self.other_distributions)

    def describe(self) -> str:
        """One line for people: the release, where it came from, and any conflict."""
        source = self.distribution or "no single installed distribution"
        text = (
            f"ibapi {self.version} (from {source}; offers server versions up to "
            f"{self.max_server_version})"
        )
        if self.other_distributions:
            text += (
                f"; also claimed by {', '.join(self.other_distributions)}: uninstall one of "
                "them and reinstall the release you mean"
            )
        return text


def _normalise(raw: str, version: Any) -> str:
    """``9.81.1-1`` → ``9.81.1``; ``10.37.02`` → ``10.37.2``; 10.51's ``{major: 1051}`` too."""
    head = raw.replace("-", ".").split(".")
    parts = [p for p in head if p.isdigit()][:3]
    if len(parts) == 3:
        return ".".join(str(int(p)) for p in parts)
    if isinstance(version, dict) and "major" in version:  # pragma: no cover - defensive
        major = int(version["major"])
        return f"{major // 100}.{major % 100}.{int(version.get('minor', 0))}"
    return raw or "unknown"


def _file_digest(path: Path, mode: str) -> str:
    """A file's digest as a wheel's RECORD writes it (urlsafe base64, no padding)."""
    h = hashlib.new(mode)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(block)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii")


def owners(
    package_dir: Path, search_path: Sequence[str] | None = None
) -> tuple[str | None, tuple[str, ...]]:
    """Which installed distributions claim the ``ibapi`` folder ``package_dir``: the one
    whose record the folder matches (None if not exactly one), and the others.

    A distribution matches when the recorded hash of every ``.py`` file it lists under
    ``ibapi/`` equals the file on disk: the folder then holds that release's code alone.
    A release that pip before 23.1 installed with ``setup.py install`` (as Python 3.10's own
    pip does with no ``wheel`` package) has a record with no hashes, which cannot be checked:
    it owns the folder when every file it lists is there and no other distribution claims
    the folder. ``search_path`` is where to look for installed distributions (``sys.path`` if
    None).
    """
    matching: list[str] = []
    claiming: list[str] = []
    unchecked: list[str] = []
    target = package_dir.resolve()
    found = (
        metadata.distributions()
        if search_path is None
        else metadata.distributions(path=list(search_path))
    )
    for dist in found:
        files = dist.files or ()
        mine = [f for f in files if f.parts[:1] == ("ibapi",) and f.suffix == ".py" and f.hash]
        if not mine:
            legacy = [p for p in _legacy_files(dist) if p.suffix == ".py" and target in p.parents]
            name = str(dist.metadata["Name"])
            if legacy and name not in claiming:
                claiming.append(name)
                if all(p.is_file() for p in legacy):
                    unchecked.append(name)
            continue
        located = [(f, Path(str(dist.locate_file(f))).resolve()) for f in mine]
        if not any(p.parent == target or target in p.parents for _, p in located):
            continue
        name = str(dist.metadata["Name"])
        if name in claiming:
            continue
        claiming.append(name)
        try:
            same = all(
                f.hash is not None and p.is_file() and _file_digest(p, f.hash.mode) == f.hash.value
                for f, p in located
            )
        except OSError:
            same = False
        if same:
            matching.append(name)
    owner = matching[0] if len(matching) == 1 else None
    if not matching and claiming == unchecked and len(unchecked) == 1:
        owner = unchecked[0]
    others = tuple(n for n in claiming if n != owner)
    return owner, others


def _legacy_files(dist: metadata.Distribution) -> list[Path]:
    """The files an egg-info record (``installed-files.txt``) lists, resolved; [] if none.

    Its lines are relative to the ``.egg-info`` folder, which is in ``locate_file("")``.
    Python 3.12's :attr:`~importlib.metadata.Distribution.files` reads this file itself;
    3.10 and 3.11 read the source paths of ``SOURCES.txt`` instead.
    """
    text = dist.read_text("installed-files.txt")
    if not text:
        return []
    info = Path(str(dist.locate_file(""))) / "egg-info"
    return [Path(os.path.normpath(info / line)).resolve() for line in text.splitlines() if line]


@functools.lru_cache(maxsize=1)
def release() -> IbapiRelease:
    """The ``ibapi`` release ibdata runs on in this environment.

    Read from the imported module itself (its version, and the server versions it can
    negotiate), with the installed package whose files it is; ``ibdata --version`` prints
    the same. Looked up once per process: it hashes the module's files.

    Returns:
        The release, where it was installed from, and any other package that claims the
        same files (:attr:`IbapiRelease.mixed`).
    """
    getter = getattr(ibapi, "get_version_string", None)
    raw = str(getter()) if callable(getter) else str(getattr(ibapi, "__version__", ""))
    location = Path(ibapi.__file__).resolve().parent
    try:
        owner, others = owners(location)
    except Exception:  # pragma: no cover - a broken metadata store must not stop ibdata
        owner, others = None, ()
    max_client = int(_server_versions.MAX_CLIENT_VER)
    return IbapiRelease(
        version=_normalise(raw, getattr(ibapi, "VERSION", None)),
        location=str(location),
        distribution=owner,
        other_distributions=others,
        max_client_version=max_client,
        max_server_version=min(max_client, MAX_SERVER_VERSION),
    )


def hello() -> bytes:
    """The version range ibdata sends in its hello: ``v100..<max_server_version>``."""
    low = int(_server_versions.MIN_CLIENT_VER)
    return f"v{low}..{min(int(_server_versions.MAX_CLIENT_VER), MAX_SERVER_VERSION)}".encode()


# ---------------------------------------------------------------------- calling conventions
_INTERPRET_TAKES_ID = "msgId" in inspect.signature(_decoder.Decoder.interpret).parameters
#: True from 10.37: ``EWrapper.error`` receives the error's time (ms) before its code.
ERROR_HAS_TIME = "errorTime" in inspect.signature(_wrapper.EWrapper.error).parameters


def interpret(decoder: Any, fields: Sequence[bytes], msg_id: int) -> None:
    """Hand one text message (``fields`` includes the message id) to ibapi's decoder."""
    if _INTERPRET_TAKES_ID:
        decoder.interpret(tuple(fields[1:]), msg_id)
    else:
        decoder.interpret(tuple(fields))


def normalize_error(req_id: Any, *args: Any) -> tuple[int, int, str]:
    """Any release's ``EWrapper.error`` call as ``(req_id, code, text)``.

    Told apart by the arguments' types, so a call in another release's style (ibapi's
    own client-side errors, a caller's code) is read right too: ``(code, text, …)`` or,
    from 10.37, ``(errorTime, code, text, …)``.

    Raises:
        TypeError: the arguments fit none of ibapi's signatures.
    """
    if len(args) >= 3 and isinstance(args[1], int) and isinstance(args[2], str):
        _error_time, code, text = args[:3]
    elif len(args) >= 2 and isinstance(args[1], str):
        code, text = args[:2]
    else:
        raise TypeError(f"unexpected error() arguments: {(req_id, *args)!r}")
    return int(req_id), int(code), str(text)


def bar_wap(bar: Any) -> Any:
    """A ``BarData``'s WAP: ``wap`` in 10.x, ``average`` in 9.81."""
    value = getattr(bar, "wap", None)
    return getattr(bar, "average", -1) if value is None else value


def is_unset(value: float) -> bool:
    """True for ibapi's "no value" sentinels and anything at or beyond them.

    ``UNSET_INTEGER`` (2**31 - 1) is exact; ``UNSET_LONG``, ``UNSET_DECIMAL`` and
    ``UNSET_DOUBLE`` are all at least 2**63 - 1, far above any real price, size or count.
    """
    return value == UNSET_INTEGER or value >= UNSET_LONG or math.isnan(value)
