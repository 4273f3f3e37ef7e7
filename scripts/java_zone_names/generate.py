"""Write ``src/ibdata/_zone_names.json``: every name TWS may give its login time zone.

TWS is a Java program and names the zone of its connection time as its JVM does. This
script compiles and runs ``ZoneNames.java`` (next to it) twice, with
``-Djava.locale.providers=CLDR`` (the default since Java 9) and ``=COMPAT`` (Java 8's
names), collects every short and long, standard and daylight name of every zone in every
English locale, adds the Windows time-zone names (CLDR's ``windowsZones.xml`` as Babel
ships it, when Babel is installed: it is in ibdata's ``docs`` extra), and maps each name to
the IANA zones it may stand for.

Zones are the ``Zone`` entries of the ``tzdata`` package's ``tzdata.zi`` (the database
ibdata reads zones from); a Java id that is a link there counts as its target, and an id
the database does not know (``SystemV/EST5``, Java's own three-letter ids) is left out.

For each name the zones are in two lists: those whose name it is in the root English
locale (``Locale.ENGLISH``) or on Windows, and those that have it only in a regional
English locale (``en-GB``, ``en-IE``, ``en-AU``...), which ibdata prefers less.

Usage::

    python scripts/java_zone_names/generate.py            # writes the data file
    python scripts/java_zone_names/generate.py --check    # exits 1 if it is out of date

Needs ``java`` and ``javac`` (any JDK from 11; the shipped file was made with 17).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUTPUT = ROOT / "src" / "ibdata" / "_zone_names.json"
PROVIDERS = ("CLDR", "COMPAT")


def java_names(workdir: Path, provider: str) -> tuple[list[str], list[list[str]]]:
    """Run ZoneNames under ``provider``: its header fields and its rows."""
    out = subprocess.run(
        ["java", f"-Djava.locale.providers={provider}", "-cp", str(workdir), "ZoneNames"],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    ).stdout
    lines = out.splitlines()
    header = lines[0].split("\t")[1:]
    return header, [line.split("\t") for line in lines[1:]]


def tz_database() -> tuple[str, set[str], dict[str, str]]:
    """The tzdata package's version, its zones and its links (link -> zone)."""
    import tzdata

    text = (Path(tzdata.__file__).parent / "zoneinfo" / "tzdata.zi").read_text("utf-8")
    version, zones, links = "", set(), {}
    for line in text.splitlines():
        if line.startswith("# version "):
            version = line.split()[-1]
        elif line.startswith("Z "):
            zones.add(line.split()[1])
        elif line.startswith("L "):
            _, target, link = line.split()[:3]
            links[link] = target
    return version, zones, links


def windows_names() -> tuple[str, dict[str, str]]:
    """Windows zone names -> IANA zone (CLDR windowsZones.xml, territory 001), via Babel."""
    try:
        import babel
        from babel.core import get_global
    except ImportError:
        return "", {}
    mapping = dict(get_global("windows_zone_mapping"))
    return f"Unicode CLDR windowsZones.xml as shipped in Babel {babel.__version__}", mapping


def build() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        subprocess.run(
            ["javac", "-d", str(workdir), str(HERE / "ZoneNames.java")],
            check=True,
        )
        runs = {p: java_names(workdir, p) for p in PROVIDERS}
    version, zones, links = tz_database()

    def canonical(zone_id: str) -> str | None:
        zone_id = links.get(zone_id, zone_id)
        return zone_id if zone_id in zones else None

    primary: dict[str, set[str]] = defaultdict(set)
    secondary: dict[str, set[str]] = defaultdict(set)
    for _, rows in runs.values():
        for zone_id, locale, *names in rows:
            zone = canonical(zone_id)
            if zone is None:
                continue
            for name in names:
                (primary if locale == "en" else secondary)[name].add(zone)
    source, windows = windows_names()
    for name, zone_id in windows.items():
        zone = canonical(zone_id)
        if zone is not None:
            primary[name].add(zone)

    used = sorted({z for group in (primary, secondary) for zs in group.values() for z in zs})
    index = {z: i for i, z in enumerate(used)}
    names: dict[str, list[list[int]]] = {}
    for name in sorted(set(primary) | set(secondary)):
        first = sorted(index[z] for z in primary.get(name, ()))
        second = sorted(index[z] for z in secondary.get(name, set()) - primary.get(name, set()))
        names[name] = [first, second]
    (java, tzdb, _), _ = runs["CLDR"]
    return {
        "about": (
            "Every English name a Java TWS may give its login time zone, and the IANA "
            "zones it may stand for: names[name] = [zones in the root English locale or on "
            "Windows, zones with that name only in a regional English locale], as indices "
            "into zones. Made by scripts/java_zone_names/generate.py; do not edit."
        ),
        "java": {"version": java, "tzdb": tzdb, "providers": list(PROVIDERS)},
        "tzdata": version,
        "windows_source": source,
        "zones": used,
        "names": names,
    }


def render(data: dict[str, object]) -> str:
    # one name per line: small diffs when Java or tzdata change
    head = {k: v for k, v in data.items() if k != "names"}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "names": {']
    items = list(data["names"].items())  # type: ignore[attr-defined]
    for i, (name, zone_lists) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(name, ensure_ascii=False)}: {json.dumps(zone_lists)}{comma}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        current = OUTPUT.read_text("utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, "utf-8")
    data = json.loads(text)
    print(f"{OUTPUT.relative_to(ROOT)}: {len(data['names'])} names, {len(data['zones'])} zones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
