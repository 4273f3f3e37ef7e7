"""The history engine: any date range in one call.

``download`` clips the range to the instrument's first data (the head timestamp, asked once
and remembered), subtracts what the cache already covers, splits the rest into requests IB
accepts (:mod:`ibdata._planner`), fetches them one after another through the client's pacer,
stores each finished chunk in the cache as it arrives (so an interrupted download keeps
what it fetched), and returns one sorted, de-duplicated :class:`~ibdata.models.Bars`
covering exactly ``[start, end)``. ``plan`` works the same steps out without sending
anything (the head timestamp only if it is known) and prices the requests under the
client's pacing rules; ``download`` refuses, with that plan, a range over ``max_requests``.

Rules worth knowing:

* Only final bars are cached: an intraday bar once its end has passed, a daily bar once
  :data:`DAILY_FINAL_AFTER` has passed since its session date (futures settlement prices can
  arrive hours after the close, and IB may revise the day's bar), a weekly or monthly bar
  once its week or month is over and that much more has passed.
* Daily and longer bars are placed in the range by their date at 00:00 UTC: a day's
  session date; a week's or a month's last trading day (up to the request's end).
* Whatever window IB answers (real TWS includes the bar that contains a request's start,
  and may cut the last bar at its end), only complete bars are kept: intraday ranges are
  fetched and cached on the bar grid of the instrument's zone, so no bar straddles a request
  boundary; weekly and monthly bars are asked with an end after a week's or month's close
  and a start a whole period before the range, and bars outside the range are dropped.
  Coverage is recorded only for the time asked for.
* Identical concurrent downloads share each IB request: the second caller waits for the
  first one's chunk instead of asking again. Across processes and hosts sharing a store,
  each chunk is leased before it is requested (:meth:`~ibdata.store.BarStore.claim`): a
  client that finds another fetching some of it waits, then reads it from the store and
  fetches only what is still missing; the lease of a client that dies expires.
* The cache saves requests; it never costs a download. When it cannot be read or written
  (SQLite fails: a full disk, an I/O error; another connection holds it locked past its
  timeout; PostgreSQL is down), a :class:`~ibdata.store.CacheWarning` says so and the rest of the
  download goes on as if there were no cache (so that a lock does not make every chunk
  wait for it): what it could not read is fetched from IB, what it could not store is
  returned all the same.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import operator
import sqlite3
import threading
import time
import uuid
import warnings
from array import array
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import attrs

from ibdata import _convert, _pacer, _planner
from ibdata.exceptions import NoDataError, RangeTooLargeError
from ibdata.models import (
    Bars,
    BarSize,
    ContractDetails,
    ContractSpec,
    DownloadPlan,
    SecType,
    WhatToShow,
)
from ibdata.pacing import PacedRequest, PacingRules
from ibdata.store import BarStore, CachedBars, CacheWarning, SeriesKey

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY = 86400.0

#: How long after its session date a daily (weekly, monthly) bar is final enough to cache.
DAILY_FINAL_AFTER = dt.timedelta(days=2)

#: The ``formatDate`` of every bar request: epoch seconds for intraday bars, no zone to guess.
FORMAT_DATE = 2

#: The signature of a progress callback: ``(chunks_done, chunks_total, bars_so_far)``.
Progress = Callable[[int, int, int], None]

#: An interval ``[lo, hi)`` in epoch seconds.
Window = tuple[float, float]

#: What a cache that cannot be used raises: SQLite's errors, and OSError, TimeoutError
#: and StoreError among them (locked past its timeout; a damaged file that cannot be moved
#: aside; PostgreSQL unreachable).
_CACHE_FAILURES = (sqlite3.Error, OSError)

#: How often a client waiting for another's chunk lease looks again (seconds).
LEASE_POLL_SECONDS = 0.05


def _ordinal_to_epoch(ordinal: float) -> float:
    return (ordinal - _EPOCH_ORDINAL) * _DAY


def _epoch_to_ordinal(t: float) -> float:
    return float(_EPOCH_ORDINAL + math.floor(t / _DAY))


def _to_cached(bars: Bars, size: BarSize) -> CachedBars:
    """The engine's column view of ``bars``: times in epoch seconds (midnight UTC for daily)."""
    cols = bars.to_arrays()
    if not size.intraday:
        cols["time"] = array("d", ((o - _EPOCH_ORDINAL) * _DAY for o in cols["time"]))
    return CachedBars(**cols)


def _select(bars: CachedBars, start: float, end: float) -> CachedBars:
    keep = [i for i, t in enumerate(bars.time) if start <= t < end]
    if len(keep) == len(bars.time):
        return bars

    def pick(col: array[Any]) -> array[Any]:
        return array(col.typecode, (col[i] for i in keep))

    return CachedBars(
        time=pick(bars.time),
        open=pick(bars.open),
        high=pick(bars.high),
        low=pick(bars.low),
        close=pick(bars.close),
        volume=pick(bars.volume),
        wap=pick(bars.wap),
        count=pick(bars.count),
    )


@attrs.define
class _Storing:
    """Whether a download stores its chunks in the cache: bars before ``final`` (epoch
    seconds) are final; ``on`` goes off for the rest of the download when the cache fails."""

    final: float
    on: bool


@attrs.frozen
class Job:
    """One series being fetched: what to ask for and how long each request may take."""

    spec: ContractSpec
    details: ContractDetails
    size: BarSize
    show: WhatToShow
    rth: bool
    limit: float

    @property
    def key(self) -> SeriesKey:
        """The cache's key of this series."""
        return SeriesKey(self.details.contract.con_id, self.show.value, self.size.value, self.rth)

    def paced_bars(self, end_text: str, duration: str) -> PacedRequest:
        """What the pacing rules see in one reqHistoricalData of this series."""
        return PacedRequest(
            contract=str(self.details.contract.con_id),
            exchange=self.spec.exchange,
            what_to_show=self.show.value,
            bar_size=self.size.value,
            identity=(end_text, duration, str(self.rth), str(FORMAT_DATE)),
        )

    def paced_head(self) -> PacedRequest:
        """What the pacing rules see in this series' reqHeadTimeStamp."""
        return PacedRequest(
            contract=str(self.details.contract.con_id),
            exchange=self.spec.exchange,
            what_to_show=self.show.value,
            identity=(str(self.rth),),
            head_timestamp=True,
        )


@attrs.frozen
class Source:
    """What the engine needs of a client: its pacing rules and chunk spans, and the two
    paced requests it is built on (one reqHistoricalData, one reqHeadTimeStamp)."""

    pacing: PacingRules | None
    chunk_spans: Mapping[BarSize, str]
    request_bars: Callable[[Job, str, str], Bars]
    request_head: Callable[[Job], dt.datetime]


class HistoryEngine:
    """Downloads ranges for one client, through its :class:`Source`."""

    def __init__(self, source: Source, cache: BarStore | None) -> None:
        self._source = source
        self.cache = cache
        self._lock = threading.Lock()
        self._inflight: dict[tuple[Any, ...], Future[CachedBars]] = {}
        self._calls: dict[tuple[Any, ...], Future[Bars]] = {}
        self._heads: dict[tuple[int, str, bool], float] = {}

    def shared(self, ident: tuple[Any, ...], run: Callable[[], Bars]) -> Bars:
        """Run ``run()`` once for concurrent calls with the same ``ident``; the others wait
        for its result (or its exception)."""
        with self._lock:
            leader = self._calls.get(ident)
            if leader is None:
                mine: Future[Bars] = Future()
                self._calls[ident] = mine
        if leader is not None:
            return leader.result()
        try:
            result = run()
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(result)
            return result
        finally:
            with self._lock:
                self._calls.pop(ident, None)

    def _unusable(self, doing: str, exc: Exception) -> None:
        """Say that the cache failed at ``doing``; the caller goes on without it."""
        assert self.cache is not None
        message = (
            f"ibdata cache {self.cache.location} could not {doing} ({type(exc).__name__}: {exc}); "
            "going on without it"
        )
        log.info("%s", message)  # the warning is what the user sees
        warnings.warn(CacheWarning(message), stacklevel=3)

    def known_head(self, job: Job) -> float | None:
        """The first data point (epoch seconds) if this client or its cache knows it."""
        key = (job.details.contract.con_id, job.show.value, job.rth)
        with self._lock:
            known = self._heads.get(key)
        if known is None and self.cache is not None:
            try:
                known = self.cache.head(*key)
            except _CACHE_FAILURES as exc:
                self._unusable("read a head timestamp", exc)
        return known

    def head(self, job: Job) -> float:
        """The first data point IB has (epoch seconds), asked once and remembered."""
        key = (job.details.contract.con_id, job.show.value, job.rth)
        known = self.known_head(job)
        if known is None:
            known = self._source.request_head(job).timestamp()
            if self.cache is not None:
                try:
                    self.cache.set_head(*key, known)
                except _CACHE_FAILURES as exc:
                    self._unusable("store a head timestamp", exc)
        with self._lock:
            self._heads[key] = known
        return known

    def _want(self, job: Job, start: dt.datetime, end: dt.datetime, head: float | None) -> Window:
        """The part of ``[start, end)`` to return, clipped to the head timestamp if known."""
        want_lo = start.timestamp()
        if head is not None:
            want_lo = max(want_lo, head if job.size.intraday else _day_floor(head))
        return want_lo, end.timestamp()

    def _gaps(self, job: Job, lo: float, hi: float) -> list[Window] | None:
        """What the cache lacks of ``[lo, hi)``; None when it cannot be read (all of it)."""
        if self.cache is None:
            return [(lo, hi)]
        try:
            return self.cache.missing(job.key, lo, hi)
        except _CACHE_FAILURES as exc:
            self._unusable("be read", exc)
            return None

    def _chunks(self, job: Job, gaps: list[Window]) -> list[_planner.Chunk]:
        return _planner.plan_gaps(
            [(_utc(a), _utc(b)) for a, b in gaps],
            job.size,
            spans=self._source.chunk_spans,
            # IB counts weeks in the instrument's zone: 167 or 169 hours across DST changes
            time_zone=job.details.time_zone_id or None,
        )

    def plan(self, job: Job, start: dt.datetime, end: dt.datetime) -> DownloadPlan:
        """What :meth:`download` would send for ``[start, end)``, without sending anything.

        The head timestamp is used if this client or its cache knows it, never asked.
        """
        now = dt.datetime.now(UTC)
        if job.spec.sec_type is SecType.CONTFUT:
            duration = continuous_duration(job.spec, start, end, job.size, now)
            return self._plan(job, start, end, None, [(start, now, "", duration)])
        head = self.known_head(job)
        want_lo, want_hi = self._want(job, start, end, head)
        chunks: list[_planner.Chunk] = []
        if want_lo < want_hi:
            lo, hi = _on_grid(want_lo, want_hi, job.size, job.details.time_zone_id)
            gaps = self._gaps(job, lo, hi)
            chunks = self._chunks(job, [(lo, hi)] if gaps is None else gaps)
        return self._plan(job, start, end, head, self._windows(job, chunks, now))

    def _plan(
        self,
        job: Job,
        start: dt.datetime,
        end: dt.datetime,
        head: float | None,
        windows: list[tuple[dt.datetime, dt.datetime, str, str]],
        *,
        asks_head: bool | None = None,
    ) -> DownloadPlan:
        """The plan of ``windows`` (start, end, endDateTime and duration of each request,
        oldest first); the head-timestamp request is counted when ``head`` is None."""
        if asks_head is None:
            asks_head = head is None and job.spec.sec_type is not SecType.CONTFUT
        seconds = 0.0
        rules = self._source.pacing
        if rules is not None:
            paced = [job.paced_head()] if asks_head else []
            paced += [job.paced_bars(e, d) for _, _, e, d in reversed(windows)]  # newest first
            seconds = _pacer.minimum_time(rules, paced)
        return DownloadPlan(
            contract=job.details.contract,
            bar_size=job.size,
            what_to_show=job.show,
            use_rth=job.rth,
            start=start,
            end=end,
            head_timestamp=None if head is None else _utc(head),
            head_timestamp_request=asks_head,
            chunks=[(a, b) for a, b, _, _ in windows],
            minimum_time=dt.timedelta(seconds=seconds),
        )

    def download(
        self,
        job: Job,
        start: dt.datetime,
        end: dt.datetime,
        progress: Progress | None,
        max_requests: int | None = None,
    ) -> Bars:
        """Every bar of ``[start, end)``; see the module docstring for the rules.

        Raises RangeTooLargeError, before any bars are requested, when more than
        ``max_requests`` chunks are missing from the cache.
        """
        now = dt.datetime.now(UTC)
        if job.spec.sec_type is SecType.CONTFUT:
            return self._continuous(job, start, end, now)
        head = self.head(job)
        want_lo, want_hi = self._want(job, start, end, head)
        if want_lo >= want_hi:
            return self._bars(job, [], start, end)
        # fetch and cache whole bars only: the range widened to the instrument's bar grid
        lo, hi = _on_grid(want_lo, want_hi, job.size, job.details.time_zone_id)
        storing = _Storing(self._final_boundary(job.size, now), on=self.cache is not None)
        gaps, cached = self._gaps(job, lo, hi), CachedBars.empty()
        if self.cache is not None and gaps is not None:
            try:
                cached = self.cache.load(job.key, lo, hi)
            except _CACHE_FAILURES as exc:
                self._unusable("be read", exc)
                gaps = None
        if gaps is None:  # the cache cannot be read: fetch all of it, store nothing
            gaps, cached, storing.on = [(lo, hi)], CachedBars.empty(), False
        chunks = self._chunks(job, gaps)
        pieces = [cached]
        if max_requests is not None and len(chunks) > max_requests:
            windows = self._windows(job, chunks, now)
            plan = self._plan(job, start, end, head, windows, asks_head=False)
            raise RangeTooLargeError(plan, max_requests)
        done, total = 0, len(chunks)
        count = sum(len(p.time) for p in pieces)
        if progress is not None:
            progress(done, total, count)
        for chunk in reversed(chunks):  # newest first: recent data is usually wanted first
            got = _select(self._chunk(job, chunk, storing), lo, hi)
            pieces.append(got)
            done += 1
            count += len(got.time)
            if progress is not None:
                progress(done, total, count)
        if (lo, hi) != (want_lo, want_hi):
            pieces = [_select(p, want_lo, want_hi) for p in pieces]
        return self._bars(job, pieces, start, end)

    def _chunk(self, job: Job, chunk: _planner.Chunk, storing: _Storing) -> CachedBars:
        """One chunk's bars, fetched once even when several threads want it at once (with
        the same timeout: no caller waits on a request that may outlast its own)."""
        ident = (job.key, chunk.end, chunk.duration, job.limit)
        with self._lock:
            shared = self._inflight.get(ident)
            if shared is None:
                mine: Future[CachedBars] = Future()
                self._inflight[ident] = mine
        if shared is not None:
            return shared.result()
        try:
            bars = self._fetch(job, chunk, storing)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(bars)
            return bars
        finally:
            with self._lock:
                self._inflight.pop(ident, None)

    @staticmethod
    def _window(job: Job, chunk: _planner.Chunk, now: dt.datetime) -> tuple[str, str]:
        """The ``endDateTime`` and duration of the request that fetches ``chunk``."""
        if job.size.intraday:
            return chunk.end_date_time, chunk.duration
        if job.size is BarSize.ONE_DAY:
            # Daily bars are placed by session date, but IB selects them by session start,
            # which can be the evening before: widen the request by a few days each side.
            end_text = _convert.end_date_time(chunk.end + dt.timedelta(days=3))
            return end_text, _widen_by_a_week(chunk.duration)
        return _period_request(chunk, job.size, now)

    @classmethod
    def _windows(
        cls, job: Job, chunks: list[_planner.Chunk], now: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime, str, str]]:
        """Each chunk with the ``endDateTime`` and duration of the request that fetches it."""
        return [(c.start, c.end, *cls._window(job, c, now)) for c in chunks]

    def _fetch(self, job: Job, chunk: _planner.Chunk, storing: _Storing) -> CachedBars:
        """One chunk's bars: leased in the store while they are fetched, so that no other
        client sharing the store requests them too; read from the store if another client
        fetched them meanwhile."""
        lo, hi = chunk.start.timestamp(), chunk.end.timestamp()
        cache = self.cache
        if cache is None or not storing.on or hi > storing.final:
            return self._request(job, chunk, storing)  # not stored whole: nothing to share
        lease = uuid.uuid4().hex
        mine = False
        try:
            while True:
                try:
                    gaps, mine = cache.claim(job.key, lo, hi, lease)
                except _CACHE_FAILURES as exc:
                    storing.on = False
                    self._unusable("lease a chunk", exc)
                    return self._request(job, chunk, storing)
                if mine or not gaps:
                    break
                time.sleep(LEASE_POLL_SECONDS)  # another client is fetching some of it
            if gaps == [(lo, hi)]:
                return self._request(job, chunk, storing)
            try:  # another client stored some or all of it meanwhile
                pieces = [cache.load(job.key, lo, hi)]
            except _CACHE_FAILURES as exc:
                storing.on = False
                self._unusable("be read", exc)
                return self._request(job, chunk, storing)
            pieces += [self._request(job, part, storing) for part in self._chunks(job, gaps)]
            return _merge(pieces)
        finally:
            if mine:
                try:
                    cache.release(lease)
                except _CACHE_FAILURES as exc:  # it expires on its own
                    log.info("could not release a chunk lease in %s: %s", cache.location, exc)

    def _request(self, job: Job, chunk: _planner.Chunk, storing: _Storing) -> CachedBars:
        """Request one chunk from IB and store its final bars."""
        lo, hi = chunk.start.timestamp(), chunk.end.timestamp()
        end_text, duration = self._window(job, chunk, dt.datetime.now(UTC))
        try:
            got = _to_cached(self._source.request_bars(job, end_text, duration), job.size)
        except NoDataError:  # nothing in this window (a weekend, a holiday): an empty chunk
            got = CachedBars.empty()
        got = _select(got, lo, hi)
        stop = min(hi, storing.final)
        if self.cache is not None and storing.on and stop > lo:
            try:
                self.cache.store(job.key, lo, stop, got)  # keeps only bars in [lo, stop)
            except _CACHE_FAILURES as exc:
                storing.on = False
                self._unusable("store a chunk", exc)
        return got

    def _final_boundary(self, size: BarSize, now: dt.datetime) -> float:
        return final_boundary(size, now)

    def _continuous(self, job: Job, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Bars:
        """A continuous future takes no end date (IB error 10339): one request up to now."""
        duration = continuous_duration(job.spec, start, end, job.size, now)
        bars = self._source.request_bars(job, "", duration)
        got = _select(_to_cached(bars, job.size), start.timestamp(), end.timestamp())
        return self._bars(job, [got], start, end)

    def _bars(
        self, job: Job, pieces: list[CachedBars], start: dt.datetime, end: dt.datetime
    ) -> Bars:
        """One sorted Bars without duplicate times (a later piece wins a tie)."""
        merged = _merge(pieces)
        time = merged.time
        if not job.size.intraday:
            time = array("d", (_EPOCH_ORDINAL + t / _DAY for t in time))
        return Bars.from_columns(
            time,
            merged.open,
            merged.high,
            merged.low,
            merged.close,
            merged.volume,
            merged.wap,
            merged.count,
            intraday=job.size.intraday,
            contract=job.details.contract,
            bar_size=job.size,
            what_to_show=job.show,
            use_rth=job.rth,
            start=start,
            end=end,
            time_zone=job.details.time_zone_id,
        )


_FIELDS = ("time", "open", "high", "low", "close", "volume", "wap", "count")


def _merge(pieces: list[CachedBars]) -> CachedBars:
    """Join pieces (each sorted) into one sorted piece with unique times.

    Pieces that follow each other are joined column by column at C speed; interleaved
    pieces (cached bars around freshly fetched gaps) are sorted once, stably, so that for a
    repeated time the later piece wins.
    """
    pieces = sorted((p for p in pieces if len(p.time)), key=lambda p: p.time[0])
    if len(pieces) == 1:
        return pieces[0]  # sorted and unique already (CachedBars checks it)
    cols: dict[str, array[Any]] = {f: array("q" if f == "count" else "d") for f in _FIELDS}
    for p in pieces:
        for f in _FIELDS:
            cols[f].extend(getattr(p, f))
    t = cols["time"]
    if all(map(operator.lt, t, itertools.islice(t, 1, None))):
        return CachedBars(**cols)
    order = sorted(range(len(t)), key=t.__getitem__)
    keep = [i for i, j in itertools.pairwise([*order, -1]) if j < 0 or t[i] != t[j]]
    return CachedBars(**{f: array(c.typecode, map(c.__getitem__, keep)) for f, c in cols.items()})


#: Chunk spans for daily and longer bars: 50 weeks, so that the week added on fetching
#: (see ``HistoryEngine._fetch``) stays within IB's limit of 52.
LONG_BAR_SPANS = {
    BarSize.ONE_DAY: "50 W",
    BarSize.ONE_WEEK: "50 W",
    BarSize.ONE_MONTH: "50 W",
}


def final_boundary(size: BarSize, now: dt.datetime) -> float:
    """Bars (by their time: start, or date at 00:00 UTC) before this epoch second are final:
    an intraday bar once it has ended; a daily bar :data:`DAILY_FINAL_AFTER` after its
    date; a weekly or monthly bar, which is dated by its last trading day so far, only once
    its week or month is over, and that long after."""
    if size.intraday:
        return now.timestamp() - size.seconds
    settled = _day_floor((now - DAILY_FINAL_AFTER).timestamp())
    if size is BarSize.ONE_DAY:
        return settled
    return min(settled, _period_start(now, size).timestamp())


def _on_grid(lo: float, hi: float, size: BarSize, time_zone: str) -> tuple[float, float]:
    """``[lo, hi)`` widened to whole bars: intraday bars sit on a grid of their size in the
    instrument's zone (a 1-hour bar starts on the hour of its exchange's clock); daily and
    longer bars are placed by date and need nothing."""
    if not size.intraday:
        return lo, hi
    step = size.seconds
    tz = _convert.zone(time_zone) if time_zone else UTC

    def floor(t: float) -> float:
        offset = dt.datetime.fromtimestamp(t, tz).utcoffset()
        off = offset.total_seconds() if offset is not None else 0.0
        return t - (t + off) % step

    start = floor(lo)
    end = floor(hi)
    return start, end if end == hi else end + step


def _period_start(t: dt.datetime, size: BarSize) -> dt.datetime:
    """00:00 UTC of the first day of the week (Monday) or month that holds ``t``."""
    day = t.astimezone(UTC).date()
    first = day.replace(day=1) if size is BarSize.ONE_MONTH else day - dt.timedelta(day.weekday())
    return dt.datetime(first.year, first.month, first.day, tzinfo=UTC)


def _period_request(chunk: _planner.Chunk, size: BarSize, now: dt.datetime) -> tuple[str, str]:
    """End and duration of a request for the weekly or monthly bars dated in ``chunk``.

    IB dates such a bar by its last trading day up to the request's end and cuts it there,
    and includes the bar that holds the request's start: so the request ends after the
    close of the week (Saturday 12:00 UTC, before any Sunday-evening session) or month (the
    1st, 12:00 UTC) of the chunk's last day, or now, and starts a whole period before the
    chunk; bars dated outside the chunk are dropped. The duration is in years, which IB
    accepts for these bar sizes.
    """
    last = (chunk.end - dt.timedelta(seconds=1)).astimezone(UTC).date()
    if size is BarSize.ONE_MONTH:
        following = dt.date(last.year + last.month // 12, last.month % 12 + 1, 1)
    else:
        following = last + dt.timedelta(days=5 - last.weekday() if last.weekday() < 5 else 7)
    end = dt.datetime(following.year, following.month, following.day, 12, tzinfo=UTC)
    start = chunk.start - dt.timedelta(days=40 if size is BarSize.ONE_MONTH else 10)
    if end >= now:
        end_text, until = "", now
    else:
        end_text, until = _convert.end_date_time(end), end
    years = max(1, math.ceil((until - start).total_seconds() / (365 * _DAY)))
    return end_text, f"{years} Y"


def _widen_by_a_week(duration: str) -> str:
    n, unit = duration.split(" ")
    if unit != "W":
        raise ValueError(f"daily chunks must be planned in weeks, got {duration!r}")
    return f"{int(n) + 1} W"


def continuous_duration(
    spec: ContractSpec, start: dt.datetime, end: dt.datetime, size: BarSize, now: dt.datetime
) -> str:
    """The duration of the one request (ending now) that serves a continuous future's range.

    The client checks this before it sends anything, the engine again when it downloads.

    Raises:
        ValueError: the range ends in the past (IB refuses an end date, error 10339), or
            is longer than one request may be for the bar size.
    """
    what = spec.describe()
    if end < now - dt.timedelta(minutes=1):
        raise ValueError(
            f"{what} is a continuous future, which IB serves only up to now (it refuses "
            "an end date, error 10339); for a range ending in the past, ask for the "
            "contract months instead (e.g. 'EURBBLM25', 'EURBBLU25')"
        )
    duration = _single_duration(start, now, size)
    if duration is None:
        raise ValueError(
            f"{what} is a continuous future: IB serves it in one request ending now, and "
            f"this range is longer than one request may be for {size.value} bars; "
            "use a larger bar size or the contract months"
        )
    return duration


def _single_duration(start: dt.datetime, now: dt.datetime, size: BarSize) -> str | None:
    """The shortest IB duration reaching from ``start`` to ``now`` in one request, or None."""
    seconds = max(1, math.ceil((now - start).total_seconds()))
    candidates = [f"{seconds} S"]
    weeks = math.ceil(seconds / (7 * _DAY))
    if weeks <= 52:
        candidates.append(f"{weeks} W")
    for duration in candidates:
        try:
            _planner.validate_span(size, duration)
        except ValueError:
            continue
        return duration
    return None


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


def _day_floor(t: float) -> float:
    return math.floor(t / _DAY) * _DAY
