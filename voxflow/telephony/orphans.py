"""Calls, media channels and bridges in our Stasis application that no session owns.

After a crash and restart, or when a ``StasisStart`` was lost while the events socket was down,
Asterisk holds channels in the application that voxflow has no session for. At start-up and
after every reconnect, :func:`sweep` lists the application's channels and the bridges, and:

* **calls** with no session are adopted by the configured policy (``VoxtraApp(orphans=...)``):
  ``"restart"`` (default) starts a session as if the call had just entered Stasis, so the flow
  runs from its first state; ``"hangup"`` plays an apology (``orphan_apology``) and hangs up;
* **legs voxflow dialled** (ids ``vf-out-*``) whose call is gone are hung up;
* **voxflow's own media channels** (``vf-em-*`` externalMedia, ``vf-snoop-*`` snoops) and
  **bridges** (``vf-mb-*`` media, ``vf-br-*`` call bridges; ours when named after the application,
  subscribed by it, or holding one of its channels) that no live session owns are removed.

Everything else (other applications' channels, bridges others named) is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from voxflow import observe
from voxflow.ari.cleanup import Backoff, delete_until_gone
from voxflow.ari.models import Bridge, Channel

if TYPE_CHECKING:
    from voxflow.ari.rest import AriRestClient
    from voxflow.telephony.app import VoxtraApp
    from voxflow.telephony.session import CallSession

__all__ = [
    "BRIDGE_PREFIXES",
    "MEDIA_PREFIXES",
    "OUTBOUND_PREFIX",
    "OrphanPolicy",
    "SweepReport",
    "adopt_link_orphan",
    "remove_stale_bridges",
    "sweep",
]

log = logging.getLogger(__name__)

OrphanPolicy = Literal["restart", "hangup"]
MEDIA_PREFIXES = ("vf-em-", "vf-snoop-")
BRIDGE_PREFIXES = ("vf-mb-", "vf-br-")
OUTBOUND_PREFIX = "vf-out-"
_SWEEP_BACKOFF = Backoff(initial=0.1, cap=2.0, attempts=6)


@dataclass
class SweepReport:
    """What one sweep did (ids)."""

    adopted: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    removed_channels: list[str] = field(default_factory=list)
    removed_bridges: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.adopted or self.ended or self.removed_channels or self.removed_bridges)


def _owned_ids(sessions: Iterable[CallSession]) -> set[str]:
    """Ids of the channels and bridges live sessions (and their media) use."""
    owned: set[str] = set()
    for s in sessions:
        owned.add(s.id)
        for bid in (s._bridge_id, s._shared_bridge):
            if bid:
                owned.add(bid)
        voice = s._voice
        for attr in ("channel_id", "snoop_id", "bridge_id"):
            rid = getattr(voice, attr, None)
            if isinstance(rid, str):
                owned.add(rid)
    return owned


def _is_our_leg(ch: Channel, outbound_arg: str) -> bool:
    data = ch.dialplan.app_data if ch.dialplan else ""
    return ch.id.startswith(OUTBOUND_PREFIX) or outbound_arg in data.split(",")[1:2]


async def sweep(app: VoxtraApp, *, outbound_arg: str, deadline: float | None = None) -> SweepReport:
    """Adopt or end the application's channels that have no session; remove voxflow's media
    channels and bridges that no live session owns. Raises ``AriError`` if listing fails
    (``deadline``: the listings' own, else the client's)."""
    report = SweepReport()
    rest = app.rest
    listing = await asyncio.gather(  # at once: a dead worker's callers wait
        rest.get_application(app.app_name, timeout=deadline),
        rest.list_channels(timeout=deadline),
        rest.list_bridges(timeout=deadline),
    )
    info, all_channels, bridges = listing
    in_app = set(info.get("channel_ids") or [])
    channels = {c.id: c for c in all_channels}
    observe.moment("listed")
    live = [s for s in app._sessions.values() if not s.ended]
    owned = _owned_ids(live)
    live_ids = {s.id for s in live}
    calls, doomed = _orphan_channels(app, in_app, channels, owned, outbound_arg, report)
    app_bridges = set(info.get("bridge_ids") or [])
    holding = _orphan_bridges(app, bridges, app_bridges, in_app, owned, live_ids, doomed, report)
    # A dead worker's 20 calls leave 40 media channels and bridges, and its callers wait: each
    # call is adopted as soon as the bridges holding it are gone, so the bridges go first, all
    # at once; its media channels and legs (nothing waits for them) once every call is adopted,
    # not ahead of the bridges in Asterisk's queue (they were: adoption waited for them too).
    first = [d for d in doomed if d[0].startswith("/bridges/")]
    deleting = {path: asyncio.ensure_future(_delete(app, path)) for path, _, _ in first}
    prefetching = asyncio.ensure_future(_prefetch(app, [ch.id for ch in calls]))

    async def adopt(ch: Channel) -> None:
        await asyncio.gather(prefetching, *(deleting[path] for path in holding.get(ch.id, [])))
        observe.moment("adopted", ch.id)
        app._adopt(ch)
        (report.adopted if app.orphans == "restart" else report.ended).append(ch.id)

    try:
        await asyncio.gather(*deleting.values(), *(adopt(ch) for ch in calls))
        later = [path for path, _, _ in doomed if path not in deleting]
        deleting.update({path: asyncio.ensure_future(_delete(app, path)) for path in later})
        await asyncio.gather(*deleting.values())
    finally:  # one that raised (the sweep is retried) leaves none running
        for task in (*deleting.values(), prefetching):
            task.cancel()
    observe.moment("swept")
    for path, into, rid in doomed:
        if deleting[path].result():
            into.append(rid)
    if report:
        _log_report(app, report)
    return report


_Doomed = tuple[str, list[str], str]
"""What the sweep deletes: (REST path, the report's list it goes to once deleted, its id)."""


def _orphan_channels(
    app: VoxtraApp,
    in_app: set[str],
    channels: dict[str, Channel],
    owned: set[str],
    outbound_arg: str,
    report: SweepReport,
) -> tuple[list[Channel], list[_Doomed]]:
    """The app's channels without a session: calls to adopt, and voxflow's own media channels
    and legs to delete."""
    calls: list[Channel] = []  # each adopted once the bridges holding it are gone
    doomed: list[_Doomed] = []
    for cid in sorted(in_app - set(app._sessions) - (app._seen or set())):
        ch = channels.get(cid)
        if ch is None:
            continue
        if cid.startswith(MEDIA_PREFIXES):
            if cid not in owned:
                doomed.append((f"/channels/{cid}", report.removed_channels, cid))
        elif _is_our_leg(ch, outbound_arg):
            doomed.append((f"/channels/{cid}", report.ended, cid))
        elif _out_on_trip(app, ch):
            log.info("call %s is out in the dialplan: it goes on when it comes back", cid)
        elif ch.technology not in app._internal_techs:
            calls.append(ch)
    return calls, doomed


def _out_on_trip(app: VoxtraApp, ch: Channel) -> bool:
    """Cluster mode: ``ch`` is in the shipped queue or transfer context and not in Stasis (a
    dead worker's call in ``Queue()`` or a transfer's ``Dial()``, still subscribed by the
    app): left alone, it comes back with a return tag (``VoxtraApp.adopt_returns``)."""
    plan = ch.dialplan
    return (
        app.adopt_returns
        and plan is not None
        and plan.context in (app.transfer_context, app.queue_context)
        and plan.app_name != "Stasis"
    )


def _orphan_bridges(
    app: VoxtraApp,
    bridges: list[Bridge],
    app_bridges: set[str],
    in_app: set[str],
    owned: set[str],
    live_ids: set[str],
    doomed: list[_Doomed],
    report: SweepReport,
) -> dict[str, list[str]]:
    """Add voxflow's bridges of this app that no live session is in to ``doomed``; returns
    call id -> the paths of the doomed bridges it is in."""
    holding: dict[str, list[str]] = {}
    for b in bridges:
        if not b.id.startswith(BRIDGE_PREFIXES) or b.id in owned:
            continue
        ours = b.id in app_bridges or b.name == app.app_name or in_app.intersection(b.channels)
        if not ours or live_ids.intersection(b.channels):
            continue
        doomed.append((f"/bridges/{b.id}", report.removed_bridges, b.id))
        for cid in b.channels:
            holding.setdefault(cid, []).append(f"/bridges/{b.id}")
    return holding


def _log_report(app: VoxtraApp, report: SweepReport) -> None:
    log.warning(
        "orphans in app %s: %d calls adopted (%s), %d ended, %d media channels and %d bridges"
        " removed",
        app.app_name,
        len(report.adopted),
        app.orphans,
        len(report.ended),
        len(report.removed_channels),
        len(report.removed_bridges),
    )


def adopt_link_orphan(app: VoxtraApp, channel: Channel, app_name: str) -> bool:
    """Asterisk re-connected ``app_name`` (outbound websockets) holding ``channel``, a call no
    session drives (its worker died): adopt it when ``app.adopt_link_orphans`` (set in cluster
    mode, where the handler resumes it from its checkpoint), or leave it alone while it is out
    in the shipped queue or transfer context (it goes on when it comes back). False: not
    adopted (the links hang it up): not in cluster mode, or voxflow's own media channel or
    dialled leg."""
    links = app.links
    if (
        not app.adopt_link_orphans
        or links is None
        or channel.technology in app._internal_techs
        or channel.id.startswith((*MEDIA_PREFIXES, OUTBOUND_PREFIX))
    ):
        return False
    if _out_on_trip(app, channel):  # comes back with a return tag: it goes on then
        log.info("call %s is out in the dialplan: it goes on when it comes back", channel.id)
        return True
    app._adopt(channel, links.rest_for(app_name), app_name)
    return True


async def remove_stale_bridges(
    app: VoxtraApp, rest: AriRestClient, app_name: str, bridge_ids: set[str]
) -> list[str]:
    """Outbound links: voxflow's bridges of ``app_name`` (named after it or in
    ``bridge_ids``, the app's bridges) that no live session owns or uses (their worker died)
    are removed; returns their ids. Raises ``AriError`` if listing fails."""
    live = [s for s in app._sessions.values() if not s.ended]
    owned = _owned_ids(live)
    live_ids = {s.id for s in live}
    removed: list[str] = []
    for b in await rest.list_bridges():
        if not b.id.startswith(BRIDGE_PREFIXES) or b.id in owned:
            continue
        if not (b.id in bridge_ids or b.name == app_name) or live_ids.intersection(b.channels):
            continue
        path = f"/bridges/{b.id}"
        if await delete_until_gone(rest, path, backoff=_SWEEP_BACKOFF, base=rest.timeout):
            removed.append(b.id)
    return removed


async def _prefetch(app: VoxtraApp, call_ids: list[str]) -> None:
    """``app.prefetch`` the calls about to be adopted (cluster mode: their checkpoints read in
    one round trip, while the bridges holding them are removed); a failure only logs."""
    if app.prefetch is None or not call_ids:
        return
    try:
        await app.prefetch(call_ids)
    except Exception:
        log.warning("prefetching %d adopted calls failed", len(call_ids), exc_info=True)


async def _delete(app: VoxtraApp, path: str) -> bool:
    return await delete_until_gone(app.rest, path, backoff=_SWEEP_BACKOFF, base=app.rest.timeout)
