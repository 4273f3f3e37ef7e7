"""Watch a TWS session's health and print every change.

Polls ``Client.health()`` (which never blocks on TWS) and prints a line whenever the
status, a data farm or the last connectivity event (1100 lost, 1101/1102 restored)
changes, for ``--seconds`` seconds or until Ctrl-C. If TWS is down at the start the client
keeps trying in the background. Exits with status 1 if the session never became healthy.

Against the simulator, with ``ibdata sim`` running in another terminal::

    IB_PORT=7497 python examples/health_monitor.py --seconds 60

Stop and restart ``ibdata sim`` meanwhile to watch the client reconnect. Against TWS or
IB Gateway with the API enabled, set ``IB_HOST`` / ``IB_PORT`` (TWS 7497 paper, 7496 live;
IB Gateway 4002 paper, 4001 live) and run the same command.
"""

import argparse
import sys
import time

import ibdata


def changes(before: ibdata.Health | None, now: ibdata.Health) -> list[str]:
    """What differs between two health snapshots, one line each."""
    lines = []
    if before is None or now.status != before.status:
        lines.append(f"status {now.status} (client id {now.client_id}, {now.host}:{now.port})")
    old_farms = {} if before is None else dict(before.farms)
    for farm, state in sorted(now.farms.items()):
        if old_farms.get(farm) != state:
            lines.append(f"farm {farm} {state.value}")
    event = now.last_connectivity_event
    if event is not None and (before is None or event != before.last_connectivity_event):
        lines.append(f"event {event.code} at {event.time:%H:%M:%S}: {event.message}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Print every change of the session's health.")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    args = parser.parse_args()

    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    ever_healthy = False
    ib = ibdata.Client.from_env()
    try:
        try:
            ib.connect(retry_in_background=True)
        except ibdata.ConnectError as exc:
            print(f"not connected yet ({exc}); retrying in the background")
        previous = None
        while deadline is None or time.monotonic() < deadline:
            health = ib.health()
            for line in changes(previous, health):
                print(f"{health.timestamp:%H:%M:%S} {line}", flush=True)
            ever_healthy = ever_healthy or health.status == "healthy"
            previous = health
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        ib.close()
    if not ever_healthy:
        sys.exit(f"error: the session to {ib.host}:{ib.port} never became healthy")


if __name__ == "__main__":
    main()
