"""Every benchmark comparison of ibdata against its peers, on one simulator, in one run.

ibdata against a minimal raw ``ibapi`` client and ``ib_async`` 2.1.0 (connect time,
small-request latency, one large response, memory per bar, many requests at once), the
history engine against naive loops under IB's pacing rules (scaled), a repeated range from
the cache against downloading it, and the REST adapter against a connection per request.
Every comparison runs on one in-process simulator (clock fixed at 2025-03-12 21:00 UTC),
its rows interleaved round-robin so that all share the machine's load. The results: a
markdown table (valid MyST) and a PNG chart of ibdata's advantage over each peer.

Nothing here asserts anything about time: the figures are for reading.

Run ``python benchmarks/run.py [--quick] [--repeat N] [--only AREA,...] [--output-dir DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the benchmark modules live next to this script

import _clients  # noqa: E402
import _history  # noqa: E402
import _rest  # noqa: E402
import ibdata  # noqa: E402
from _common import (  # noqa: E402
    CLOCK_AT,
    event_loop,
    leftover_threads,
    machine,
    quantile,
    quiet,
    rotation,
)
from ibdata import PacingRules  # noqa: E402
from ibdata.sim import FixedClock, Simulator  # noqa: E402

#: Where the table and the chart go by default: the docs' static files, which Sphinx copies
#: but never reads as pages; ``docs/benchmarks.md`` includes both.
DEFAULT_OUTPUT = HERE.parent / "docs" / "_static"
TABLE = "benchmarks-latest.md"
CHART = "benchmarks.png"

AREAS = ("connect", "latency", "bars", "memory", "threads", "history", "cache", "rest")

# The comparisons (the table's first column).
CONNECT = "Connect"
LATENCY = "Small request (contract details)"
BARS = "One large response"
MEMORY = "Memory per bar"
THREADS = "Many requests at once"
HISTORY_SHARE = "History engine: share of the range"
HISTORY_TIME = "History engine: time for the range"
CACHE = "Cache: a repeated range"
REST = "REST throughput"


@dataclass(frozen=True)
class Plan:
    """How much of each comparison one run does; every count is per repetition."""

    repeat: int
    connects: int  # connect samples per client
    latency: int  # contract-details samples per client
    duration: str  # the large response: 1-minute all-hours bars ending at the clock
    burst: int  # contract-details requests per client, many at once
    concurrency: int  # requests in flight at once
    scale: float  # the pacing rules' time scale
    requests: int  # small-bar requests of the paced range
    cache_days: int  # days of 1-minute bars in the cached range
    hits: int  # timed hits from the cache
    rest_seconds: float  # seconds of load per REST round


#: 21 weeks of 1-minute all-hours bars: 105 sessions x 960 bars = 100,800 bars.
FULL = Plan(3, 20, 300, "21 W", 640, 32, 100.0, 200, 30, 9, 10 / 3)
#: One week (4,800 bars), few samples, a fast pacing clock: proves the code works.
QUICK = Plan(1, 3, 20, "1 W", 64, 32, 1000.0, 20, 3, 3, 0.5)


@dataclass
class Row:
    """One line of the table: one client in one comparison."""

    comparison: str
    client: str
    figure: float
    unit: str
    p99: float | None = None
    #: How many times better ibdata's figure is than this row's; None: not comparable.
    advantage: float | None = None
    note: str = ""
    #: ibdata's own row of the comparison (its advantage is 1x).
    ours: bool = False
    #: Not a peer's figure to set against ibdata's (the rules' limit, ib_async's throttle):
    #: in the table, left out of the chart.
    reference: bool = False


@dataclass
class Results:
    """Everything one run measured."""

    plan: Plan
    connect: dict[str, list[float]] = field(default_factory=dict)
    clients: list[_clients.Contender] = field(default_factory=list)
    bars: dict[str, Any] = field(default_factory=dict)
    downloads: list[_history.Download] = field(default_factory=list)
    schedules: list[tuple[float, float]] = field(default_factory=list)
    cache: list[_history.CacheRun] = field(default_factory=list)
    rest: list[_rest.Design] = field(default_factory=list)
    rest_facts: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# running


def run(plan: Plan, areas: Sequence[str]) -> Results:
    """Every selected comparison on one simulator."""
    results = Results(plan)
    client_areas = {"connect", "latency", "bars", "memory", "threads"}.intersection(areas)
    with (
        quiet("ib_async", "ibapi"),
        Simulator(pacing=None, clock=FixedClock(CLOCK_AT)) as sim,
    ):
        if client_areas:
            _run_clients(sim, plan, client_areas, results)
        if {"history", "cache"}.intersection(areas):
            _run_history(sim, plan, "history" in areas, "cache" in areas, results)
        if "rest" in areas:
            sim.set_pacing(None)
            sim.received.clear()
            results.rest, results.rest_facts = _rest.measure(sim, plan.rest_seconds, plan.repeat)
    left = leftover_threads()
    if left:
        raise RuntimeError(f"threads still running after the benchmark: {left}")
    return results


def _run_clients(sim: Simulator, plan: Plan, areas: set[str], results: Results) -> None:
    with event_loop(), _clients.contenders(sim, plan.duration) as clients:
        results.clients = clients
        if areas & {"bars", "memory"}:
            results.bars = _clients.check_bars(clients)
        for n in range(plan.repeat):
            sim.received.clear()
            if "connect" in areas:
                _clients.measure_connect(sim, plan.connects, results.connect)
            if "latency" in areas:
                _clients.measure_latency(clients, sim, plan.latency)
            if "bars" in areas:
                _clients.measure_bars(clients, results.bars["bars"], n)
            if "threads" in areas:
                _clients.measure_burst(clients, sim, plan.burst, plan.concurrency, n)
        if "memory" in areas:
            _clients.measure_memory(clients)


def _run_history(sim: Simulator, plan: Plan, history: bool, cache: bool, results: Results) -> None:
    rules = PacingRules(time_scale=plan.scale)
    sim.received.clear()
    _history.warm(sim, plan.requests, plan.cache_days)
    pause = _history.sleep_between(rules)
    runs: list[Callable[[], _history.Download]] = [
        lambda: _history.ibdata_download(sim, rules, plan.requests),
        lambda: _history.loop_download(sim, rules, plan.requests, _history.RECIPE),
        lambda: _history.loop_download(sim, rules, plan.requests, _history.RECIPE_ON),
        lambda: _history.loop_download(sim, rules, plan.requests, _history.SLEEPER, pause=pause),
    ]
    for n in range(plan.repeat):
        if history:
            for download in rotation(runs, n):
                d = download()
                results.downloads.append(d)
                if d.name == _history.IBDATA:
                    results.schedules.append(_history.schedules(rules, d.paced))
        if cache:
            results.cache.append(_history.cache_download(sim, rules, plan.cache_days, plan.hits))
    sim.set_pacing(None)


# --------------------------------------------------------------------------------------
# the table's rows


def _ms(x: float) -> float:
    return x * 1e3


def rows(results: Results) -> list[Row]:
    """The table: every comparison measured, ibdata's row first in each."""
    out: list[Row] = []
    out += _connect_rows(results)
    out += _client_rows(results)
    out += _history_rows(results)
    out += _cache_rows(results)
    out += _rest_rows(results)
    return out


def _connect_rows(results: Results) -> list[Row]:
    times = results.connect
    if not times:
        return []
    ours = statistics.median(times[_clients.IBDATA])
    notes = {
        _clients.IBDATA: "TCP, handshake, startApi, until ready for requests",
        _clients.RAW: "`EClient.connect`, until `nextValidId`",
        _clients.ASYNC2: "`IB.connect` also synchronises positions, orders, account, executions",
        _clients.ASYNC_LEAN: "`IB.connect` synchronising positions only",
    }
    out = []
    for name, samples in times.items():
        median = statistics.median(samples)
        out.append(
            Row(
                CONNECT,
                name,
                _ms(median),
                "ms",
                p99=_ms(quantile(samples, 0.99)),
                advantage=median / ours,
                ours=name == _clients.IBDATA,
                note=f"{len(samples)} connections; {notes[name]}",
            )
        )
    return out


def _client_rows(results: Results) -> list[Row]:
    out: list[Row] = []
    by = {c.name: c for c in results.clients}
    ours = by.get(_clients.IBDATA)
    if ours is None:
        return out
    if ours.latency:
        p50 = statistics.median(ours.clean_latency)
        for c in results.clients:
            if not c.latency:
                continue
            clean = c.clean_latency
            left_out = len(c.latency) - len(clean)
            note = f"{len(c.latency):,} samples"
            if left_out:
                note += (
                    f"; {left_out} of 0.2 s or more left out (the simulator's pause for "
                    "ibapi's 4096-byte defect, or the client's own stalls)"
                )
            out.append(
                Row(
                    LATENCY,
                    c.name,
                    _ms(statistics.median(clean)),
                    "ms",
                    p99=_ms(quantile(clean, 0.99)),
                    advantage=statistics.median(clean) / p50,
                    ours=c is ours,
                    note=note,
                )
            )
    if ours.seconds:
        bars = results.bars["bars"]
        out += _rate_rows(
            f"{BARS} ({bars:,} bars)",
            results.clients,
            bars,
            "bars/s",
            lambda c: c.seconds,
            lambda c: f"median {statistics.median(c.seconds):.3f} s, call to result",
        )
    if ours.result_bytes:
        bars = results.bars["bars"]
        kinds = {
            _clients.IBDATA: "`ibdata.Bars` (columns)",
            _clients.RAW: "list of ibapi `BarData`",
            _clients.ASYNC2: "`BarDataList` of `BarData`, UTC datetimes",
            _clients.ASYNC1: "`BarDataList` of `BarData`, zoned datetimes",
        }
        for c in results.clients:
            if c.result_bytes:
                out.append(
                    Row(
                        MEMORY,
                        c.name,
                        c.result_bytes / bars,
                        "bytes/bar",
                        advantage=c.result_bytes / ours.result_bytes,
                        ours=c is ours,
                        note=f"{kinds[c.name]}, traced by `tracemalloc`",
                    )
                )
    if ours.burst_walls:
        total = results.plan.burst
        concurrency = results.plan.concurrency
        how = {
            _clients.IBDATA: f"{concurrency} threads sharing one client",
            _clients.RAW: f"{concurrency} requests in flight, sent from ibapi's callbacks",
            _clients.ASYNC2: f"{concurrency} coroutines on ib_async's loop, throttle off",
            _clients.ASYNC_THROTTLED: f"{concurrency} coroutines, at most "
            f"{_clients.THROTTLE} requests a second",
        }
        out += _rate_rows(
            f"{THREADS} ({concurrency} concurrent)",
            results.clients,
            total,
            "requests/s",
            lambda c: c.burst_walls,
            lambda c: (
                f"{how[c.name]}; {total} contract details a round; latency p50 "
                f"{_ms(statistics.median(c.burst_latency)):.2f} ms, p99 "
                f"{_ms(quantile(c.burst_latency, 0.99)):.2f} ms"
            ),
        )
    return out


def _rate_rows(
    comparison: str,
    clients: list[_clients.Contender],
    count: int,
    unit: str,
    walls: Callable[[_clients.Contender], list[float]],
    note: Callable[[_clients.Contender], str],
) -> list[Row]:
    """One row per client with ``walls``: ``count`` over its median wall time."""
    timed = [c for c in clients if walls(c)]
    rate = {c.name: count / statistics.median(walls(c)) for c in timed}
    return [
        Row(
            comparison,
            c.name,
            rate[c.name],
            unit,
            advantage=rate[_clients.IBDATA] / rate[c.name],
            ours=c.name == _clients.IBDATA,
            reference=c.name == _clients.ASYNC_THROTTLED,
            note=note(c),
        )
        for c in timed
    ]


def _history_rows(results: Results) -> list[Row]:
    if not results.downloads:
        return []
    by: dict[str, list[_history.Download]] = {}
    for d in results.downloads:
        by.setdefault(d.name, []).append(d)
    ours = by[_history.IBDATA]
    share = statistics.median(d.share for d in ours)
    wall = statistics.median(d.wall for d in ours)
    out = []
    for name, runs in by.items():
        theirs = statistics.median(d.share for d in runs)
        requests = statistics.median(d.requests + d.heads for d in runs)
        errors = sorted({d.error for d in runs if d.error})
        note = (
            f"{requests:.0f} requests, {statistics.median(d.violations for d in runs):.0f} "
            f"pacing violations, {statistics.median(d.wall for d in runs):.2f} s"
            + (f"; {errors[0]}" if errors else "")
        )
        out.append(
            Row(
                HISTORY_SHARE,
                name,
                100 * theirs,
                "%",
                advantage=share / theirs if theirs else None,
                ours=name == _history.IBDATA,
                note=note,
            )
        )
    ideal = statistics.median(s[0] for s in results.schedules)
    margin = statistics.median(s[1] for s in results.schedules)
    out.append(
        Row(
            HISTORY_TIME,
            _history.IBDATA,
            wall,
            "s",
            advantage=1.0,
            ours=True,
            note=f"{100 * ideal / wall:.1f}% of the rules' fastest; "
            f"ibdata's 2% safety margin caps it at {100 * ideal / margin:.1f}%",
        )
    )
    out.append(
        Row(
            HISTORY_TIME,
            "fastest the rules allow (answers taking no time)",
            ideal,
            "s",
            advantage=ideal / wall,
            note="greedy schedule of ibdata's requests on `PacingTracker`",
            reference=True,
        )
    )
    sleepers = by.get(_history.SLEEPER, [])
    if sleepers:
        theirs = statistics.median(d.wall for d in sleepers)
        pause = _history.sleep_between(PacingRules(time_scale=results.plan.scale))
        out.append(
            Row(
                HISTORY_TIME,
                _history.SLEEPER,
                theirs,
                "s",
                advantage=theirs / wall,
                note=f"{pause:g} s after each answer (10 minutes / 60, scaled)",
            )
        )
    return out


def _cache_rows(results: Results) -> list[Row]:
    if not results.cache:
        return []
    hit = _history.median_hit(results.cache)
    first = statistics.median(r.first for r in results.cache)
    messages = sum(r.new_messages for r in results.cache)
    same = all(r.same for r in results.cache)
    bars = results.cache[0].bars
    return [
        Row(
            f"{CACHE} ({bars:,} bars)",
            "ibdata, from the cache",
            _ms(hit),
            "ms",
            advantage=1.0,
            ours=True,
            note=f"{messages} messages to the simulator; same bars: {'yes' if same else 'NO'}",
        ),
        Row(
            f"{CACHE} ({bars:,} bars)",
            "ibdata, downloading it",
            _ms(first),
            "ms",
            advantage=first / hit,
            note="into an empty cache file, from the simulator's session cache",
        ),
    ]


def _rest_rows(results: Results) -> list[Row]:
    if not results.rest:
        return []
    ours = results.rest[0]
    failures = _rest.failures(results.rest)
    out = []
    for d in results.rest:
        lat = d.latencies
        rounds = sorted(len(r["latencies"]) / r["elapsed"] for r in d.rounds)
        note = (
            f"{len(rounds)} rounds of {rounds[0]:,.1f} to {rounds[-1]:,.1f} answers/s; latency "
            f"p50 {_ms(quantile(lat, 0.5)):.1f} ms, p99 {_ms(quantile(lat, 0.99)):.1f} ms; "
            f"{d.errors:,} errors; {_ms(d.cpu_per_request()):.2f} ms CPU per answer"
        )
        phases = d.old_phases()
        if phases:
            note += (
                f"; its handler's medians: connect {_ms(phases[0]):.1f} ms, bars "
                f"{_ms(phases[1]):.1f} ms, disconnect {_ms(phases[3]):.1f} ms"
            )
        reasons = failures.get(d.name)
        if reasons:
            kind, n = reasons.most_common(1)[0]
            note += f"; failures: {n:,} x {kind}"
        out.append(
            Row(
                f"{REST} ({_rest.CLIENTS} concurrent clients)",
                d.name,
                d.rate,
                "answers/s",
                advantage=ours.rate / d.rate if d.rate else None,
                ours=d is ours,
                note=note,
            )
        )
    return out


# --------------------------------------------------------------------------------------
# the markdown


def _figure(value: float, unit: str) -> str:
    if unit in ("bars/s", "requests/s", "answers/s"):
        return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "bytes/bar":
        return f"{value:,.1f} {unit}"
    return f"{value:,.3f} {unit}" if value < 10 else f"{value:,.2f} {unit}"


def _ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.2f}x" if x < 100 else f"{x:,.0f}x"


def render(
    table: list[Row], results: Results, host: dict[str, str], wall: float, quick: bool
) -> str:
    """The results as markdown (valid MyST, no headings, to be included in a page)."""
    plan = results.plan
    versions = {
        "ibdata": ibdata.__version__,
        "ibapi": version("ibapi"),
        "ib_async": version("ib_async"),
        **results.rest_facts.get("versions", {}),
    }
    lines = [
        f"One run of `python benchmarks/run.py{' --quick' if quick else ''}`, "
        f"{plan.repeat} round-robin repetition(s); every comparison on one in-process "
        f"simulator (clock {CLOCK_AT:%Y-%m-%d %H:%M} UTC); history and cache under IB's "
        f"pacing rules scaled by {plan.scale:g}.",
        "",
        *(f"- {key}: {value}" for key, value in host.items()),
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}",
        f"- wall time of the run: {wall:.0f} s",
        "",
        "| comparison | client | median | p99 | ibdata's advantage | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in table:
        p99 = _figure(r.p99, r.unit) if r.p99 is not None else "—"
        lines.append(
            f"| {r.comparison} | {r.client} | {_figure(r.figure, r.unit)} | {p99} | "
            f"{_ratio(r.advantage)} | {r.note} |"
        )
    lines += [
        "",
        "*ibdata's advantage*: how many times better ibdata's figure is than the row's (a "
        "lower time or memory, a higher rate or share); below 1x the row beats ibdata. The "
        "rows of a comparison were measured side by side, taking turns.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# the chart


def render_chart(table: list[Row], host: dict[str, str], quick: bool, path: Path) -> None:
    """ibdata's advantage over each peer: one bar per peer from 1x, on a log scale, the
    comparisons in bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    peers = [r for r in table if not r.ours and not r.reference and r.advantage is not None]
    values = [r.advantage for r in peers if r.advantage is not None]
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.42 * len(peers)), dpi=110)
    y = list(range(len(peers)))[::-1]
    # bands: every other comparison shaded
    band, last = -1, None
    for yi, r in zip(y, peers, strict=True):
        name = r.comparison.split(" (")[0]
        if name != last:
            band, last = band + 1, name
        if band % 2 == 0:
            ax.axhspan(yi - 0.5, yi + 0.5, color="#f0f0f0", zorder=0)
    colors = ["#2e7d32" if v >= 1 else "#c62828" for v in values]
    ax.barh(y, [v - 1 for v in values], left=1, color=colors, height=0.62, zorder=2)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1, zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r.comparison.split(' (')[0]}: vs {r.client}" for r in peers])
    ax.tick_params(axis="y", labelsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}x"))
    ax.set_xlim(min([*values, 1.0]) / 2.5, max([*values, 1.0]) * 4)
    ax.set_ylim(-0.5, len(peers) - 0.5)
    for yi, v in zip(y, values, strict=True):
        if v >= 1:
            ax.text(v * 1.08, yi, _ratio(v), va="center", ha="left", fontsize=8, zorder=4)
        else:
            ax.text(v / 1.08, yi, _ratio(v), va="center", ha="right", fontsize=8, zorder=4)
    ax.set_xlabel("ibdata's advantage (log scale): right of 1x ibdata is better, left the peer")
    ax.grid(axis="x", which="major", linestyle=":", alpha=0.7, zorder=1)
    title = "ibdata against each peer: one simulator, one run"
    if quick:
        title += " (--quick: a smoke test, not figures)"
    ax.set_title(title, fontsize=11)
    fig.text(
        0.01,
        0.01,
        f"{host['date']} · {host['cpu model']} · {host['cpus']} CPUs · {host['python']} · "
        "python benchmarks/run.py",
        fontsize=7,
        color="#555555",
    )
    fig.tight_layout(rect=(0, 0.025, 1, 1))
    fig.savefig(path, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparisons; write the table and the chart; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few samples of every comparison (seconds; proves the code works, for tests)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"round-robin repetitions of every comparison (default {FULL.repeat}, "
        f"{QUICK.repeat} with --quick)",
    )
    parser.add_argument(
        "--only",
        default=",".join(AREAS),
        help=f"comma-separated areas to run (default all: {','.join(AREAS)})",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where to write {TABLE} and {CHART} (default docs/_static)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.repeat is not None:
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        plan = Plan(**{**plan.__dict__, "repeat": args.repeat})
    areas = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = sorted(set(areas) - set(AREAS))
    if unknown or not areas:
        parser.error(f"--only takes areas among {', '.join(AREAS)}; got {args.only!r}")

    host = machine()
    started = time.perf_counter()
    results = run(plan, areas)
    table = rows(results)
    wall = time.perf_counter() - started
    text = render(table, results, host, wall, args.quick)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / TABLE).write_text(text, encoding="utf-8")
    render_chart(table, host, args.quick, args.output_dir / CHART)
    print(text)
    print(f"wrote {args.output_dir / TABLE} and {args.output_dir / CHART}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
