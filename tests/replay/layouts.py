"""The re-layer: a recorded frame in one server version's layout, laid out for another.

Written from ``reference/tws-wire-protocol.md`` (§2 gates, §3 layouts), independent of
``ibdata.sim``'s encoders and of ibdata's parsers. A frame is a list of text fields (the
message id first). :func:`parse` names the fields of a message as the recording server
version lays them out; :func:`encode` lays the named fields out for another version;
:func:`relay` does both for every frame of one answer, merging or splitting historicalData
(17) and historicalDataEnd (108) where server version 196 moved the window out of 17.

What a layout cannot carry is dropped going down (157 has no size rules, no lastTradeDate,
no ineligibility reasons, no fund fields, no advancedOrderRejectJson and no errorTime) and
filled with TWS's own defaults going up (version ``8``, mdSizeMultiplier ``1``, empty
advancedOrderRejectJson).

Gates (official names): 110 MD_SIZE_MULTIPLIER, 163 FRACTIONAL_SIZE_SUPPORT (sizeMinTick,
that version only), 164 SIZE_RULES, 166 ADVANCED_ORDER_REJECT, 175
HMDS_MARKET_DATA_IN_SHARES (US stocks' bar volumes in shares, not lots), 179
FUND_DATA_FIELDS, 182 LAST_TRADE_DATE, 186 INELIGIBILITY_REASONS, 194 ERROR_TIME, 196
HISTORICAL_DATA_END.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Frame = list[str]

MD_SIZE_MULTIPLIER = 110
FRACTIONAL_SIZE_SUPPORT = 163
SIZE_RULES = 164
ADVANCED_ORDER_REJECT = 166
FUND_DATA_FIELDS = 179
LAST_TRADE_DATE = 182
INELIGIBILITY_REASONS = 186
ERROR_TIME = 194
HISTORICAL_DATA_END = 196
#: From it a US stock's historical volume is in shares, below it in lots of 100.
IN_SHARES = 175

#: The 17 fund fields a FUND's contract data carries from 179 (names as IB's Java client).
FUND_FIELDS = 17

#: contractData fields between minTick and the secId list, in wire order.
_MIDDLE = (
    "multiplier", "orderTypes", "validExchanges", "priceMagnifier", "underConId",
    "longName", "primaryExchange", "contractMonth", "industry", "category", "subcategory",
    "timeZoneId", "tradingHours", "liquidHours", "evRule", "evMultiplier",
)  # fmt: skip
_HEAD = (
    "strike", "right", "exchange", "currency", "localSymbol", "marketName",
    "tradingClass", "conId", "minTick",
)  # fmt: skip
_TAIL = (
    "aggGroup", "underSymbol", "underSecType", "marketRuleIds", "realExpirationDate",
    "stockType",
)  # fmt: skip


class LayoutError(ValueError):
    """A frame does not have the layout of the server version it is said to have."""


# --------------------------------------------------------------------------- error (4)
def parse_error(frame: Frame, sv: int) -> dict[str, Any]:
    """The fields of an error message (4) as ``sv`` lays them out."""
    if sv >= ERROR_TIME:
        names = ["reqId", "code", "text", "advancedOrderRejectJson", "errorTime"]
        body = frame[1:]
    else:
        names = ["reqId", "code", "text"]
        if sv >= ADVANCED_ORDER_REJECT:
            names.append("advancedOrderRejectJson")
        body = frame[2:]
    if len(body) != len(names):
        raise LayoutError(f"error message at {sv} has {len(frame)} fields: {frame!r}")
    return dict(zip(names, body, strict=True))


def encode_error(fields: dict[str, Any], sv: int) -> Frame:
    """An error message (4) laid out for ``sv``."""
    json = fields.get("advancedOrderRejectJson", "")
    if sv >= ERROR_TIME:
        when = fields.get("errorTime", "")
        return ["4", fields["reqId"], fields["code"], fields["text"], json, when]
    frame = ["4", "2", fields["reqId"], fields["code"], fields["text"]]
    if sv >= ADVANCED_ORDER_REJECT:
        frame.append(json)
    return frame


# --------------------------------------------------------------------------- contractData (10)
def parse_contract_data(frame: Frame, sv: int) -> dict[str, Any]:
    """The fields of contractData (10) as ``sv`` lays them out, by name.

    Lists: ``secIds`` (tag, value pairs), ``fund`` (17 fields or None), ``ineligibility``
    (id, description pairs or None); ``sizes`` holds minSize, sizeIncrement and
    suggestedSizeIncrement (None below 164), ``sizeMinTick`` is 163's extra field.
    """
    f = list(frame)
    out: dict[str, Any] = {}
    i = 1
    if sv < SIZE_RULES:
        out["version"] = f[1]
        i = 2
    out["reqId"], out["symbol"], out["secType"], out["lastTradeDateOrContractMonth"] = f[i : i + 4]
    i += 4
    out["lastTradeDate"] = None
    if sv >= LAST_TRADE_DATE:
        out["lastTradeDate"] = f[i]
        i += 1
    for name in _HEAD:
        out[name] = f[i]
        i += 1
    out["mdSizeMultiplier"] = None
    if MD_SIZE_MULTIPLIER <= sv < SIZE_RULES:
        out["mdSizeMultiplier"] = f[i]
        i += 1
    for name in _MIDDLE:
        out[name] = f[i]
        i += 1
    count = int(f[i] or 0)
    i += 1
    out["secIds"] = [(f[i + 2 * k], f[i + 2 * k + 1]) for k in range(count)]
    i += 2 * count
    for name in _TAIL:
        out[name] = f[i]
        i += 1
    out["sizeMinTick"] = None
    out["sizes"] = None
    if sv == FRACTIONAL_SIZE_SUPPORT:
        out["sizeMinTick"] = f[i]
        i += 1
    elif sv >= SIZE_RULES:
        out["sizes"] = tuple(f[i : i + 3])
        i += 3
    out["fund"] = None
    if sv >= FUND_DATA_FIELDS and out["secType"] == "FUND":
        out["fund"] = f[i : i + FUND_FIELDS]
        i += FUND_FIELDS
    out["ineligibility"] = None
    if sv >= INELIGIBILITY_REASONS:
        n = int(f[i] or 0)
        out["ineligibility"] = [(f[i + 1 + 2 * k], f[i + 2 + 2 * k]) for k in range(n)]
        i += 1 + 2 * n
    if i != len(f):
        raise LayoutError(
            f"contractData at {sv}: {len(f)} fields, the layout reads {i} ({f[2:5]!r})"
        )
    return out


def encode_contract_data(d: dict[str, Any], sv: int) -> Frame:
    """contractData (10) laid out for ``sv``."""
    frame: Frame = ["10"]
    if sv < SIZE_RULES:
        frame.append(d.get("version") or "8")
    frame += [d["reqId"], d["symbol"], d["secType"], d["lastTradeDateOrContractMonth"]]
    if sv >= LAST_TRADE_DATE:
        last = d["lastTradeDate"]
        if last is None:  # TWS sends the day of lastTradeDateOrContractMonth for a future
            last = d["lastTradeDateOrContractMonth"].replace("-", " ").split(" ")[0]
        frame.append(last)
    frame += [d[name] for name in _HEAD]
    if MD_SIZE_MULTIPLIER <= sv < SIZE_RULES:
        frame.append(d["mdSizeMultiplier"] or "1")
    frame += [d[name] for name in _MIDDLE]
    frame.append(str(len(d["secIds"])))
    for tag, value in d["secIds"]:
        frame += [tag, value]
    frame += [d[name] for name in _TAIL]
    sizes = d["sizes"]
    if sv == FRACTIONAL_SIZE_SUPPORT:
        frame.append(d["sizeMinTick"] or (sizes[0] if sizes else ""))
    elif sv >= SIZE_RULES:
        frame += list(sizes) if sizes is not None else ["", "", ""]
    if sv >= FUND_DATA_FIELDS and d["secType"] == "FUND":
        frame += d["fund"] if d["fund"] is not None else [""] * FUND_FIELDS
    if sv >= INELIGIBILITY_REASONS:
        reasons = d["ineligibility"] or []
        frame.append(str(len(reasons)))
        for rid, text in reasons:
            frame += [rid, text]
    return frame


# --------------------------------------------------------------------------- historicalData
def parse_historical_data(frame: Frame, sv: int) -> dict[str, Any]:
    """historicalData (17): request id, window (None from 196) and bars of 8 fields."""
    if sv >= HISTORICAL_DATA_END:
        req_id, n, body = frame[1], int(frame[2]), frame[3:]
        window = None
    else:
        req_id, n, body = frame[1], int(frame[4]), frame[5:]
        window = (frame[2], frame[3])
    if len(body) != 8 * n:
        raise LayoutError(f"historicalData at {sv}: {n} bars but {len(body)} bar fields")
    bars = [body[8 * k : 8 * k + 8] for k in range(n)]
    return {"reqId": req_id, "window": window, "bars": bars}


def encode_historical_data(
    req_id: str, window: tuple[str, str] | None, bars: list[Frame], sv: int
) -> Frame:
    """historicalData (17) for ``sv``; ``window`` is dropped from 196 (it goes in 108)."""
    flat = [field for bar in bars for field in bar]
    if sv >= HISTORICAL_DATA_END:
        return ["17", req_id, str(len(bars)), *flat]
    if window is None:
        raise LayoutError(f"historicalData below {HISTORICAL_DATA_END} needs a window")
    return ["17", req_id, window[0], window[1], str(len(bars)), *flat]


# --------------------------------------------------------------------------- one answer
def lots_to_shares(volume: str, source: int, target: int) -> str:
    """A US stock's bar volume recorded at ``source`` as TWS sends it at ``target``: in lots
    of 100 shares below 175, in shares from it (HMDS_MARKET_DATA_IN_SHARES). Exact
    (decimal arithmetic); -1 ("no volume") is kept."""
    if volume.startswith("-") or (source < IN_SHARES) == (target < IN_SHARES):
        return volume
    value = Decimal(volume) * 100 if source < IN_SHARES else Decimal(volume) / 100
    return format(value.normalize(), "f")


def relay(frames: list[Frame], source: int, target: int, *, lots: bool = False) -> list[Frame]:
    """Every frame of one recorded answer (or start-up burst), laid out for ``target``.

    Frames of messages whose layout no gate between the two versions changes are passed
    through unchanged. Going below 196, each run of 17 frames and the 108 that ends it
    become one 17 with the window; going to 196 or above, a 17 with a window becomes a 17
    without it and a 108. ``lots``: the bars are a US stock's, their volumes converted
    between lots and shares across server version 175 (:func:`lots_to_shares`).
    """
    out: list[Frame] = []
    pending: list[Frame] = []  # bars of 17 frames (196+) waiting for their 108
    pending_id = ""
    for frame in frames:
        msg = frame[0]
        if msg == "4":
            out.append(encode_error(parse_error(frame, source), target))
        elif msg == "10":
            out.append(encode_contract_data(parse_contract_data(frame, source), target))
        elif msg == "17":
            data = parse_historical_data(frame, source)
            if lots:
                for bar in data["bars"]:
                    bar[5] = lots_to_shares(bar[5], source, target)
            if data["window"] is None and target < HISTORICAL_DATA_END:
                pending += data["bars"]
                pending_id = data["reqId"]
                continue
            out.append(encode_historical_data(data["reqId"], data["window"], data["bars"], target))
            if data["window"] is not None and target >= HISTORICAL_DATA_END:
                out.append(["108", data["reqId"], *data["window"]])
        elif msg == "108" and target < HISTORICAL_DATA_END:
            out.append(
                encode_historical_data(
                    pending_id or frame[1], (frame[2], frame[3]), pending, target
                )
            )
            pending, pending_id = [], ""
        else:
            out.append(list(frame))
    if pending:
        raise LayoutError("historicalData without the historicalDataEnd that gives its window")
    return out


# --------------------------------------------------------------------------- request ids
def req_id_index(frame: Frame, sv: int) -> int | None:
    """Where the request id of ``frame`` sits at ``sv``; None when it names no request."""
    msg = frame[0]
    if msg == "4":
        index = 1 if sv >= ERROR_TIME else 2
        return None if frame[index] == "-1" else index
    if msg == "10":
        return 1 if sv >= SIZE_RULES else 2
    if msg == "52":
        return 2
    if msg in ("17", "88", "90", "106", "108"):
        return 1
    return None


def restamp(frame: Frame, sv: int, req_id: str) -> Frame:
    """``frame`` with its request id (if it has one) replaced by ``req_id``."""
    index = req_id_index(frame, sv)
    if index is None:
        return list(frame)
    out = list(frame)
    out[index] = req_id
    return out
