"""Replays real TWS / IB Gateway traffic to ibdata's client over a real socket.

``layouts`` re-lays a recorded frame from the server version it was recorded at to another
one (written from the wire reference, independent of ``ibdata.sim``); ``gateway`` is the
replay server; ``captures`` loads the recorded frames (the shared reference file and this
package's ``captures.json``) and says which request each recorded answer answers.
"""
