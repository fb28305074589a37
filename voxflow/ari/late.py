"""Create requests naming the id the client chose, made to survive a loaded Asterisk that
answers late: a call's media set-up (``voxflow.media.callmedia``) and call bridges
(``voxflow.telephony.bridging``).

An overloaded Asterisk serves a request (the channel or bridge exists, its events are sent) and
answers after the client's deadline. Each of these requests names the id voxflow chose
(``vf-em-*``, ``vf-snoop-*``, ``vf-mb-*``, ``vf-br-*``), so one that timed out goes again with
twice the deadline (:func:`voxflow.ari.cleanup.again_if_late`, up to 120 s) and cannot make a
second object: Asterisk refuses an id in use. Such a refusal counts as success only once the
object read back is the one asked for:

- ``POST /channels/externalMedia``: 409 "Channel with given unique ID already exists"
  (``ast_dial_prerun``); ours when ``GET /channels/{id}`` names it ``UnicastRTP/<our
  external_host>-...`` (chan_rtp's name). Asterisk's side, which only the lost answer carried, is
  read with ``GET /channels/{id}/variable`` (``UNICASTRTP_LOCAL_ADDRESS``/``PORT`` are channel
  variables chan_rtp sets).
- ``POST /channels/{id}/snoop``: 500 "Snoop channel could not be created" (channel.c refuses the
  id; res/ari answers every failed snoop so); ours when named ``Snoop/<the spied channel>-...``.
- ``POST /bridges``: 409 "Bridge with id '...' already exists"; ours when ``GET /bridges/{id}`` is
  a mixing bridge with the name asked for.
- ``POST /bridges/{id}/addChannel`` that timed out: ``GET /bridges/{id}`` first; members already
  in it mean the first was served; otherwise it goes again (Asterisk moves a channel already in
  the bridge out and in again, which changes nothing).

An object with our id that is not ours raises :class:`ForeignObject`: it is not used, and the
caller must not delete it. No repeat is sent once ``closed()`` (the call or its media ended).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from voxflow.ari.cleanup import again_if_late
from voxflow.errors import AriError, AriHTTPError, AriNotFound, AriTimeoutError, CallEndedError

__all__ = ["ForeignObject", "LateRequests", "TimedRest"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_UNICAST_VARS = ("UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT")


class ForeignObject(AriError):
    """Asterisk holds an object with the id voxflow chose that is not the one it asked for."""


class TimedRest(Protocol):
    """What these requests need of :class:`~voxflow.ari.rest.AriRestClient`."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        timeout: float | None = ...,
    ) -> Any: ...


class LateRequests:
    """Create requests over ``rest`` that go again when answered late (``base``: the client's
    deadline in seconds; ``closed()``: the call or its media ended, so no repeat is sent)."""

    def __init__(self, rest: TimedRest, base: float, closed: Callable[[], bool]) -> None:
        self.rest = rest
        self.base = base
        self.closed = closed

    async def _late(self, op: Callable[[float | None], Awaitable[T]], what: str) -> T:
        """``op`` given its deadline, sent again with twice the deadline after a timeout until
        ``closed()``."""

        async def attempt(deadline: float | None) -> T:
            if self.closed():
                raise CallEndedError(f"{what}: the call ended")
            return await op(deadline)

        return await again_if_late(attempt, what, base=self.base)

    async def _get(self, path: str, **params: str) -> Any:
        """``GET path`` (safe to repeat)."""

        async def op(deadline: float | None) -> Any:
            return await self.rest.request("GET", path, params=params or None, timeout=deadline)

        return await self._late(op, f"GET {path}")

    async def _create(
        self,
        what: str,
        request: Callable[[float | None], Awaitable[Any]],
        in_use: Callable[[AriHTTPError], bool],
        ours: Callable[[], Awaitable[T]],
    ) -> Any:
        """``request`` until answered; a refusal ``in_use`` says the id is taken returns
        ``ours()`` (raising :class:`ForeignObject` unless it is the object asked for); the
        refusal is raised when nothing has the id (404 reading it back)."""

        async def op(deadline: float | None) -> Any:
            try:
                return await request(deadline)
            except AriHTTPError as exc:
                if not in_use(exc):
                    raise
                log.info("%s: %s; reading it back", what, exc)
                try:
                    return await ours()
                except AriNotFound:
                    raise exc from None

        return await self._late(op, what)

    async def external_media(
        self, channel_id: str, params: Mapping[str, str], external_host: str
    ) -> Any:
        """``POST /channels/externalMedia``; the answer (with ``channelvars``)."""

        async def request(deadline: float | None) -> Any:
            path = "/channels/externalMedia"
            return await self.rest.request("POST", path, params=params, timeout=deadline)

        async def ours() -> dict[str, Any]:
            got = await self._get(f"/channels/{channel_id}")
            name = str((got or {}).get("name", ""))
            if not name.startswith(f"UnicastRTP/{external_host}-"):
                raise ForeignObject(
                    f"externalMedia {channel_id}: Asterisk has a channel with this id that is "
                    f"not ours ({name!r}, not sending to {external_host})"
                )
            path = f"/channels/{channel_id}/variable"
            values = await asyncio.gather(*(self._get(path, variable=v) for v in _UNICAST_VARS))
            read = {
                v: str((a or {}).get("value", ""))
                for v, a in zip(_UNICAST_VARS, values, strict=True)
            }
            return {**(got or {}), "channelvars": read}

        conflict = lambda exc: exc.status == 409  # noqa: E731 - one condition, named
        return await self._create(f"externalMedia {channel_id}", request, conflict, ours)

    async def snoop(self, target: str, snoop_id: str, app: str) -> None:
        """``POST /channels/{target}/snoop`` (``spy=in``) as ``snoop_id``."""
        path = f"/channels/{target}/snoop"
        params = {"spy": "in", "app": app, "snoopId": snoop_id}

        async def request(deadline: float | None) -> Any:
            return await self.rest.request("POST", path, params=params, timeout=deadline)

        async def ours() -> None:
            got = await self._get(f"/channels/{snoop_id}")
            name = str((got or {}).get("name", ""))
            if not name.startswith(f"Snoop/{target}-"):
                raise ForeignObject(
                    f"snoop {snoop_id}: Asterisk has a channel with this id that is not our snoop"
                    f" of {target} ({name!r})"
                )

        await self._create(f"snoop {snoop_id}", request, lambda exc: exc.status == 500, ours)

    async def bridge(self, bridge_id: str, name: str) -> None:
        """``POST /bridges`` (mixing, ``bridge_id``, ``name``)."""
        params = {"type": "mixing", "bridgeId": bridge_id, "name": name}

        async def request(deadline: float | None) -> Any:
            return await self.rest.request("POST", "/bridges", params=params, timeout=deadline)

        async def ours() -> None:
            got = await self._get(f"/bridges/{bridge_id}") or {}
            kind, named = got.get("bridge_type"), got.get("name")
            if kind != "mixing" or named != name:
                raise ForeignObject(
                    f"bridge {bridge_id}: Asterisk has a bridge with this id that is not ours "
                    f"({kind} bridge named {named!r})"
                )

        await self._create(f"bridge {bridge_id}", request, lambda exc: exc.status == 409, ours)

    async def add_channels(self, bridge_id: str, members: list[str]) -> None:
        """``POST /bridges/{id}/addChannel``; one that timed out is looked for in the bridge
        before it goes again."""
        path = f"/bridges/{bridge_id}/addChannel"

        async def op(deadline: float | None) -> None:
            try:
                await self.rest.request(
                    "POST", path, params={"channel": ",".join(members)}, timeout=deadline
                )
            except AriTimeoutError:
                got = await self._get(f"/bridges/{bridge_id}") or {}
                if not set(members) <= set(got.get("channels") or ()):
                    raise
                log.info("%s timed out but %s are in the bridge", path, ", ".join(members))

        await self._late(op, path)
