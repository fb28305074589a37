"""Calls in the PBX: inbound calls, originate (PJSIP/SIP far ends, Local pairs), create+dial,
externalMedia, snoop, answer, continue, redirect, and a tiny dialplan like the one the
captures were made with."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .audio import Frame
from .dialplan import (
    INBOUND_CONTEXT,
    INBOUND_RETRY,
    Program,
    ShippedContexts,
    captured_program,
    label_priority,
    shipped_inbound,
)
from .media import PbxMedia
from .model import HANGUP_REASONS, Channel, RestError

__all__ = ["RESERVED_ENDPOINTS", "LocalFar", "Pbx", "SnoopFar", "parse_caller_id"]

RESERVED_ENDPOINTS = {"busy": "busy", "noanswer": "noanswer", "congestion": "congestion"}
BEHAVIOURS = ("answer", "busy", "noanswer", "congestion", "ring")
_TECHS = {"pjsip": "PJSIP", "sip": "SIP", "local": "Local"}
_OUTGOING = ("default", "s", 1, "AppDial2", "(Outgoing Line)")


def parse_caller_id(text: str) -> tuple[str, str]:
    """``"Alice" <5551234>`` / ``Bob <5550000>`` / ``5551234`` -> (name, number)."""
    text = (text or "").strip()
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', text)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    if text and all(c.isdigit() or c in "+*#" for c in text):
        return "", text
    return text, ""


class LocalFar:
    """One half of a Local channel: what it hears the other half says, and vice versa."""

    def __init__(self, pbx: Pbx, me: Channel) -> None:
        self.pbx = pbx
        self.me = me
        self.last_heard: Frame | None = None

    @property
    def wants_tick(self) -> bool:
        other = self.me.peer
        return other is not None and (other.bridge is not None or bool(other.playbacks))

    def next_spoken(self) -> Frame | None:
        other = self.me.peer
        far = other.far if other is not None else None
        return far.last_heard if isinstance(far, LocalFar) else None

    def hear(self, frame: Frame | None, tick: int) -> None:
        self.last_heard = frame

    def far_event(self, kind: str, data: dict[str, Any]) -> None:
        other = self.me.peer
        if other is None or other.hungup:
            return
        if kind == "dtmf":
            self.pbx.dtmf_received(other, data["digit"], data["duration_ms"])
        elif kind == "answered":
            self.pbx.local_answered(other)


class SnoopFar:
    """A snoop channel's far end: it 'says' what the spied channel says and/or hears, and
    (``whisper`` out/both) what the snoop channel hears is whispered to the spied channel."""

    def __init__(self, target: Channel, spy: str, whisper: str = "none") -> None:
        self.target = target
        self.spy = spy
        self.whisper = whisper
        self.last_heard: Frame | None = None

    @property
    def wants_tick(self) -> bool:
        return self.whisper != "none"

    def next_spoken(self) -> Frame | None:
        t = self.target
        parts = []
        if self.spy in ("in", "both") and t.spoken is not None:
            parts.append(t.spoken)
        if self.spy in ("out", "both") and t.heard is not None:
            parts.append(t.heard)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        mixed: Frame = np.clip(parts[0].astype(np.int32) + parts[1], -32768, 32767).astype(np.int16)
        return mixed

    def hear(self, frame: Frame | None, tick: int) -> None:
        self.last_heard = frame

    def far_event(self, kind: str, data: dict[str, Any]) -> None:
        return None


class Pbx(PbxMedia):
    """The whole PBX core. ``make_far(channel, resource)`` builds the simulated far end of
    an outbound PJSIP/SIP call (the server gives it a SimCall)."""

    answer_delay: float = 0.0
    outbound_behaviour: dict[str, str]
    contexts: ShippedContexts
    ari_channelvars: tuple[str, ...] = ()  # ari.conf [general] channelvars
    make_far: Callable[[Channel, str], Any] | None = None
    # (min, max) seconds between the REST answer creating an externalMedia or snoop channel
    # and its StasisStart (capture external-media-ordering.json: 0.3 to 30 ms, always after).
    stasis_delay: tuple[float, float] = (0.0, 0.0)

    def init_calls(self, answer_delay: float, stasis_delay: tuple[float, float]) -> None:
        self.answer_delay = answer_delay
        self.stasis_delay = stasis_delay
        self.outbound_behaviour = {}
        self.contexts = ShippedContexts(self)
        self._delay_rng = random.Random(7)

    def _after_reply(self, ch: Channel, enter: Callable[[], None]) -> None:
        """Run ``enter`` (the new channel's way into Stasis) after the REST answer went out,
        ``stasis_delay`` later; never synchronously, as on Asterisk."""
        lo, hi = self.stasis_delay
        delay = lo if hi <= lo else self._delay_rng.uniform(lo, hi)
        self.schedule(ch, delay, enter)

    def on_dtmf_media(self, ch: Channel, digit: str) -> None:
        super().on_dtmf_media(ch, digit)
        self.contexts.queue_digit(ch, digit)  # Queue() reads the caller's keys

    # --- the tiny dialplan -----------------------------------------------------------------

    def dialplan_stasis(self, context: str, exten: str) -> tuple[str, list[str]] | None:
        """Which Stasis app a context/extension enters, as in the captures' dialplan
        (``voxflow-in`` -> Stasis(voxflow); ``voxflow-args`` passes [exten, inbound];
        ``stasis-APP`` -> Stasis(APP))."""
        if context == "voxflow-in":
            return "voxflow", []
        if context == "voxflow-args":
            return "voxflow", [exten, "inbound"]
        if context.startswith("stasis-") and len(context) > 7:
            return context[7:], []
        return None

    def run_program(self, ch: Channel, context: str, exten: str) -> bool:
        """Run the ``caller`` context's extensions on a channel outside Stasis."""
        if context != "caller" or exten not in ("s", "wait", "audio"):
            return False
        ch.context, ch.exten, ch.priority = context, exten, 1
        if ch.state != "Up" and ch.peer is not None and ch.peer.state == "Up":
            ch.state = "Up"
        if exten == "wait":
            self.schedule(ch, 120.0, lambda: self.hangup(ch, 16))
        elif exten == "audio":
            self._loop_play(ch)
        else:

            def after_play() -> None:
                for i, d in enumerate("123#"):
                    self.schedule(ch, 0.25 + 0.35 * i, self._digit_sender(ch, d))
                self.schedule(ch, 61.4, lambda: self.hangup(ch, 16))

            def play() -> None:
                self.play(ch, ["sound:hello-world"], playback_id=None).on_done = after_play

            self.schedule(ch, 1.0, play)
        return True

    def _digit_sender(self, ch: Channel, digit: str) -> Callable[[], None]:
        return lambda: self._send_to_peer(ch, digit)

    def _send_to_peer(self, ch: Channel, digit: str) -> None:
        if ch.far is not None:
            ch.far.far_event("dtmf", {"digit": digit, "duration_ms": 100})

    def _loop_play(self, ch: Channel) -> None:
        if not ch.hungup:
            pb = self.play(ch, ["sound:hello-world"], playback_id=None)
            pb.on_done = lambda: self._loop_play(ch)

    # --- inbound ---------------------------------------------------------------------------

    def inbound(
        self,
        far: Any,
        *,
        caller: tuple[str, str],
        to: str,
        app: str,
        args: list[str],
        endpoint: str = "caller",
        channel_id: str | None = None,
        enter: bool = True,
        variables: dict[str, str] | None = None,
    ) -> Channel | None:
        """A call arriving from a SIP phone into the shipped ``[voxflow-in]``'s Stasis(app) at
        priority 2; while the app has no websocket, its retry (``ShippedContexts.stasis_in``).
        ``enter=False``: the caller runs Stasis() itself (per call, a broadcast)."""
        cid = channel_id or self.new_channel_id()
        self.check_new_id(cid)
        ch = Channel(
            id=cid,
            name=f"PJSIP/{endpoint}-{self.next_chan_seq():08x}",
            state="Ring",
            creationtime=self.now_ts(),
            caller=caller,
            connected=caller,
            context="voxflow-in",
            exten=to,
            priority=2,
            tech="PJSIP",
            far=far,
            variables=dict(variables or {}),
            shown_vars=self.ari_channelvars,
        )
        if not enter:  # Stasis() waits for an outbound websocket (or a broadcast claim)
            self.add_channel(ch)
            return ch
        if not self.app_active(app):
            if not shipped_inbound(to):  # Stasis() fails, then Hangup()
                return None
            self.add_channel(ch)  # Stasis() fails: the shipped [voxflow-in] tries again
            self.contexts.stasis_in(ch, app, args, 2)
            return ch
        self.add_channel(ch)
        self.enter_stasis(ch, app, args)
        return ch

    # --- originate -------------------------------------------------------------------------

    def _tech(self, endpoint: str) -> tuple[str, str]:
        tech, _, res = endpoint.partition("/")
        norm = _TECHS.get(tech.lower())
        # ARI originates one channel: Dial()'s "A&B" is no endpoint a channel driver knows
        if norm is None or not res or "&" in res:
            raise RestError(500, "Allocation failed", key="error")
        return norm, res

    def originate(self, p: dict[str, Any], *, dial_now: bool = True) -> Channel:
        """POST /channels (``dial_now``) and POST /channels/create (dial later)."""
        endpoint = p.get("endpoint") or ""
        app = p.get("app") or None
        if not endpoint:
            raise RestError(400, "Endpoint must be specified")
        if dial_now and not app and not p.get("extension"):
            raise RestError(400, "Application or extension must be specified")
        if not dial_now and not app:
            raise RestError(400, "app is required")
        tech, res = self._tech(endpoint)
        cid = p.get("channelId") or self.new_channel_id()
        self.check_new_id(cid)
        other = p.get("otherChannelId") if p.get("channelId") else None
        caller = parse_caller_id(p.get("callerId", ""))
        args = [a for a in str(p.get("appArgs") or "").split(",") if a] if app else []
        try:
            timeout = float(p.get("timeout", 30))
        except ValueError:
            raise RestError(400, "timeout must be a number") from None
        variables = p.get("variables") or {}
        if tech == "Local":
            return self._originate_local(p, res, cid, other, caller, app, args, timeout, dial_now)
        ch = Channel(
            id=cid,
            name=f"{tech}/{res.split('/')[0]}-{self.next_chan_seq():08x}",
            state="Down",
            creationtime=self.now_ts(),
            caller=caller,
            connected=caller,
            tech=tech,
            ari_created=True,
        )
        ch.context, ch.exten, ch.priority, ch.app_name, ch.app_data = _OUTGOING
        for k, v in variables.items():
            ch.variables[str(k)] = str(v)
        if app:
            ch.subs.add(app)
        ch.variables["__dial_target"] = res
        ch.variables["__dial_app"] = app or ""
        ch.variables["__dial_args"] = ",".join(args)
        ch.variables["__dial_ctx"] = f"{p.get('context') or 'default'},{p.get('extension') or ''}"
        self.add_channel(ch)
        if dial_now:
            self.dial(ch, timeout)
        elif app:
            self.set_var(ch, "STASISSTATUS", "")
            if not self.enter_stasis(ch, app, args):
                self.hangup(ch, 16)
        return ch

    def dial(self, ch: Channel, timeout: float) -> None:
        """Dial the simulated far end of an originated/created channel."""
        if ch.state != "Down" or ch.variables.get("__dialed"):
            raise RestError(409, "Channel is already dialed")
        ch.variables["__dialed"] = "1"
        res = ch.variables.get("__dial_target", "")
        name = res.split("/")[0]
        behaviour = self.outbound_behaviour.get(name) or RESERVED_ENDPOINTS.get(name, "answer")
        if self.make_far is not None and ch.far is None:
            ch.far = self.make_far(ch, res)
        self.dial_event(ch, "", res)

        def ringing() -> None:
            if behaviour == "busy":
                self.dial_event(ch, "BUSY", res)
                self.destroy_unanswered(ch, 17)
                return
            if behaviour == "congestion":
                self.dial_event(ch, "CONGESTION", res)
                self.destroy_unanswered(ch, 34)
                return
            self.set_state(ch, "Ringing")
            self.dial_event(ch, "RINGING", res)
            if ch.far is not None:
                ch.far.far_event("ringing", {})
            if behaviour == "answer":
                self.schedule(ch, self.answer_delay, lambda: self.far_answer(ch))

        self.schedule(ch, 0.0, ringing)
        if timeout > 0:

            def no_answer() -> None:
                if ch.state != "Up":
                    self.dial_event(ch, "NOANSWER", res)
                    self.destroy_unanswered(ch, 19)

            self.schedule(ch, timeout, no_answer)

    def far_answer(self, ch: Channel) -> None:
        """The far end of an outbound call picked up."""
        if ch.hungup or ch.state == "Up":
            return
        res = ch.variables.get("__dial_target", "")
        self.set_state(ch, "Up")
        self.dial_event(ch, "ANSWER", res)
        if ch.far is not None:
            ch.far.far_event("answered", {})
        app = ch.variables.get("__dial_app") or ""
        if ch.app is not None:  # created with /channels/create: already in Stasis
            return
        if app:
            self.set_var(ch, "STASISSTATUS", "")
            args = [a for a in ch.variables.get("__dial_args", "").split(",") if a]
            if not self.enter_stasis(ch, app, args):
                self.hangup(ch, 16)
            return
        context, _, exten = ch.variables.get("__dial_ctx", "default,").partition(",")
        target = self.dialplan_stasis(context, exten)
        if target is not None and not self.enter_stasis(ch, target[0], target[1]):
            self.hangup(ch, 16)

    def destroy_unanswered(self, ch: Channel, cause: int) -> None:
        """An originated channel that never answered goes away (no Stasis involved)."""
        if ch.hungup:
            return
        ch.hungup = True
        for t in ch.timers:
            t.cancel()
        from .events import cause_text

        self.emit(
            "ChannelDestroyed",
            {"cause": cause, "cause_txt": cause_text(cause), "channel": ch.json()},
            channels=[ch],
        )
        ch.subs.clear()
        self.channels.pop(ch.id, None)
        if ch.far is not None:
            ch.far.far_event("hangup", {"cause": cause, "by": "pbx"})

    # --- Local channels --------------------------------------------------------------------

    def _originate_local(
        self,
        p: dict[str, Any],
        res: str,
        cid: str,
        other: str | None,
        caller: tuple[str, str],
        app: str | None,
        args: list[str],
        timeout: float,
        dial_now: bool,
    ) -> Channel:
        """Originate or create a Local channel pair: ``;1`` to the app, ``;2`` into the dialplan."""
        dest = res.split("/")[0]
        exten, _, context = dest.partition("@")
        context = context or "default"
        base = f"Local/{exten}@{context}-{self.next_local_seq():08x}"
        id2 = other or (f"{cid};2" if p.get("channelId") else self.new_channel_id())
        self.check_new_id(id2)
        if other and cid.startswith(other):  # Asterisk 22 refuses it although neither exists
            raise RestError(409, "Channel with given unique ID already exists")
        one, two = self._local_pair(base, (cid, id2), exten, context, caller)
        if app:
            one.subs.add(app)
            if dial_now:  # originate subscribes the app to both halves; create does not
                two.subs.add(app)
                two.explicit_subs.add(app)
            one.variables["__dial_app"] = app
            one.variables["__dial_args"] = ",".join(args)
        else:
            one.variables["__program"] = f"{p.get('context') or ''},{p.get('extension') or ''}"
        one.variables["__dialstring"] = dest
        self.add_channel(one)
        self.add_channel(two)
        if dial_now:
            self.dial_local(one, timeout)
        elif app:
            self._local_enter_stasis(one, app, args)
        return one

    def _local_pair(
        self, base: str, ids: tuple[str, str], exten: str, context: str, caller: tuple[str, str]
    ) -> tuple[Channel, Channel]:
        """The two halves ``base;1`` and ``base;2`` of a new Local channel, peered."""
        cid, id2 = ids
        now = self.now_ts()
        one = Channel(
            id=cid,
            name=f"{base};1",
            state="Down",
            creationtime=now,
            caller=caller,
            connected=caller,
            tech="Local",
            ari_created=True,
        )
        one.context, one.exten, one.priority = context, exten, 1
        one.app_name, one.app_data = "AppDial2", "(Outgoing Line)"
        two = Channel(
            id=id2,
            name=f"{base};2",
            state="Ring",
            creationtime=now,
            caller=caller,
            connected=caller,
            tech="Local",
            context=context,
            exten=exten,
        )
        one.peer, two.peer = two, one
        one.far, two.far = LocalFar(self, one), LocalFar(self, two)
        return one, two

    def _local_enter_stasis(self, one: Channel, app: str, args: list[str]) -> None:
        """A created (not dialled) Local ``;1`` enters Stasis at once; hung up if it cannot.

        Its context and extension stay the ones it was made with."""
        one.app_name, one.app_data = "Stasis", app
        self.emit(
            "ChannelDialplan",
            {"dialplan_app": "Stasis", "dialplan_app_data": app, "channel": one.json()},
            channels=[one],
        )
        self.set_var(one, "STASISSTATUS", "")
        if not self.enter_stasis(one, app, args):
            self.hangup(one, 16)

    def dial_local_created(self, one: Channel, timeout: float) -> None:
        """POST /channels/{id}/dial on a Local channel made with /channels/create."""
        two = one.peer
        assert two is not None
        self.dial_event(one, "", one.variables.get("__dialstring", ""))
        if self.run_program(two, two.context, two.exten):
            self.answer(two)
            return
        target = self.dialplan_stasis(two.context, two.exten)
        if target is None or not self.enter_stasis(two, target[0], target[1]):
            self.schedule(None, 0.0, lambda: self.hangup(two, 16))
            return
        self.schedule(one, 0.0, lambda: self.set_state(one, "Ringing"))
        if timeout > 0:
            self.schedule(one, timeout, lambda: self._local_timeout(one))

    def dial_local(self, one: Channel, timeout: float) -> None:
        two = one.peer
        assert two is not None
        dest = one.variables.get("__dialstring", "")
        app = one.variables.get("__dial_app") or None
        target = self.dialplan_stasis(two.context, two.exten)
        if app:
            evapps = [app]  # the originating app is subscribed to both halves
            cp = {
                "caller_presentation": 0,
                "caller_presentation_txt": "Presentation Allowed, Not Screened",
            }
            self.emit("ChannelCallerId", {**cp, "channel": two.json()}, apps=evapps)
            self.emit("ChannelConnectedLine", {"channel": two.json()}, apps=evapps)
            self.dial_event(one, "", dest)
            if target is not None:
                for dp_app, data in (
                    ("NoOp", f"voxflow inbound call to {two.exten}"),
                    ("Stasis", ",".join([target[0], *target[1]])),
                ):
                    two.priority, two.app_name, two.app_data = (
                        2 if dp_app == "Stasis" else 1,
                        dp_app,
                        data,
                    )
                    self.emit(
                        "ChannelDialplan",
                        {"dialplan_app": dp_app, "dialplan_app_data": data, "channel": two.json()},
                        apps=evapps,
                    )
                if self.app_active(target[0]):
                    self.emit(
                        "ChannelVarset",
                        {"variable": "STASISSTATUS", "value": "", "channel": two.json()},
                        apps=evapps,
                    )
        entered = target is not None and self.enter_stasis(two, target[0], target[1])
        if not entered:
            self.schedule(None, 0.0, lambda: self.hangup(two, 16))
            return
        two.priority = 2

        def ringing() -> None:
            self.set_state(one, "Ringing")
            if app:
                self.dial_event(one, "RINGING", dest)

        self.schedule(one, 0.0, ringing)
        if timeout > 0:
            self.schedule(one, timeout, lambda: self._local_timeout(one))

    def _local_timeout(self, one: Channel) -> None:
        if one.state != "Up":
            two = one.peer
            self.destroy_unanswered(one, 19)
            if two is not None:
                self.hangup(two, 16, from_far=True)

    def local_answered(self, one: Channel) -> None:
        """The ;2 half was answered: the ;1 half comes up (and enters its app or program)."""
        if one.state == "Up" or one.hungup:
            return
        self.set_state(one, "Up")
        app = one.variables.get("__dial_app")
        if one.app is not None:  # created with /channels/create: already in Stasis
            self.dial_event(one, "ANSWER", "")
            return
        if app:
            self.dial_event(one, "ANSWER", one.variables.get("__dialstring", ""))
            self.set_var(one, "STASISSTATUS", "")
            args = [a for a in one.variables.get("__dial_args", "").split(",") if a]
            if not self.enter_stasis(one, app, args):
                self.hangup(one, 16)
            return
        ctx, _, ext = one.variables.get("__program", ",").partition(",")
        self.run_program(one, ctx, ext)

    # --- answer / continue / redirect ------------------------------------------------------

    def answer(self, ch: Channel) -> None:
        if ch.state == "Up":
            return
        self.set_state(ch, "Up")
        if ch.far is not None:
            ch.far.far_event("answered", {})

    def continue_in_dialplan(
        self, ch: Channel, context: str, exten: str, priority: int, label: str
    ) -> None:
        """Leave Stasis into the dialplan. Like Asterisk, a continue sent while a channel
        playback or live recording runs is queued until that media ends (the REST answer is
        still 204); at hangup it never runs."""
        if ch.playbacks or ch.recordings:
            ch.pending_continue = (context, exten, priority, label)
            return
        ch.pending_continue = None
        if ch.bridge is not None:
            self.remove_from_bridge(ch.bridge, ch)
        ctx = context or ch.context
        ext = exten or ch.exten
        pri = priority or (ch.priority + 1 if not (context or exten) else 1)
        if label:
            pri = self.label_priority(ctx, ext, label)
        if ch.far is not None:
            ch.far.far_event(
                "continue", {"context": ctx, "exten": ext, "priority": pri, "label": label}
            )
        self.leave_stasis(ch)
        ch.context, ch.exten, ch.priority, ch.app_name, ch.app_data = ctx, ext, pri, "", ""
        if pri == 1 and self.contexts.run(ch, ctx, ext):  # shipped [voxflow-transfer]/-queue
            return
        if ctx == INBOUND_CONTEXT and pri == INBOUND_RETRY + 1:  # after a retry's Stasis()
            app = ch.variables.get("VOXFLOW_APP", "voxflow")
            then = self.contexts.after_stasis_in
            self.schedule(ch, 0.0, lambda: then(ch, app, [], INBOUND_RETRY, "SUCCESS"))
            return
        program = captured_program(ctx, ext)
        back = label_priority(ctx, ext, "back")
        if program is None and back is not None and pri > back:  # after a return: Hangup()
            self.schedule(ch, 0.0, lambda: self.contexts.after_return(ch, ext, pri))
            return
        if program is not None:
            self.schedule(ch, 0.0, lambda: self._run_program(ch, program, pri))
            return
        target = self.dialplan_stasis(ctx, ext) if pri == 1 else None
        if target is not None:
            self.schedule(ch, 0.0, lambda: self._reenter(ch, target[0], target[1]))
        elif not self.run_program(ch, ctx, ext):
            # no such context/extension/priority (or the Hangup() after Stasis()): the channel
            # is hung up, ChannelDestroyed cause 0 "Unknown" (continue-outcomes.json b, d, g)
            self.schedule(ch, 0.0, lambda: self.hangup(ch, 0, request={"cause": 16, "soft": True}))

    def label_priority(self, context: str, exten: str, label: str) -> int:
        """The priority of ``label``; ``404 "Requested label can not be found"`` otherwise
        (continue-outcomes.json f: the channel stays in Stasis)."""
        pri = label_priority(context, exten, label)
        if pri is None:
            raise RestError(404, "Requested label can not be found")
        return pri

    def _run_program(self, ch: Channel, program: Program, priority: int) -> None:
        """Run ``program`` from ``priority`` as Asterisk's pbx loop does: ChannelDialplan per
        priority; Stasis() enters the app (STASISSTATUS "" first) or goes on with FAILED;
        Hangup() hangs up with 16; no such priority: hung up, cause 0 "Unknown"
        (continue-outcomes.json a, b, e, g)."""
        for pri in range(priority, len(program) + 1):
            app, data = program[pri - 1]
            ch.priority, ch.app_name, ch.app_data = pri, app, data
            self.emit(
                "ChannelDialplan",
                {"dialplan_app": app, "dialplan_app_data": data, "channel": ch.json()},
                channels=[ch],
            )
            if app == "Hangup":
                self.hangup(ch, 16, request={"cause": 16, "soft": True})
                return
            if app == "Stasis":
                name, *args = data.split(",")
                self.set_var(ch, "STASISSTATUS", "")
                if self.enter_stasis(ch, name, args):
                    return
                self.set_var(ch, "STASISSTATUS", "FAILED")
        ch.app_name, ch.app_data = "", ""
        self.hangup(ch, 0, request={"cause": 16, "soft": True})

    def media_released(self, ch: Channel) -> None:
        """A playback or recording of ``ch`` ended: run a continue queued behind it."""
        pending = ch.pending_continue
        if pending is None or ch.hungup or ch.playbacks or ch.recordings or ch.app is None:
            return
        self.continue_in_dialplan(ch, *pending)

    def _reenter(self, ch: Channel, app: str, args: list[str]) -> None:
        if not self.enter_stasis(ch, app, args):
            self.hangup(ch, 16)

    def redirect(self, ch: Channel, endpoint: str) -> None:
        if not endpoint:
            raise RestError(400, "Required parameter endpoint not present")
        tech, _, res = endpoint.partition("/")
        if not res:
            raise RestError(400, "Endpoint parameter is malformed")
        if tech.lower() != ch.tech.lower():
            raise RestError(422, "Endpoint technology does not match channel")
        if ch.far is not None:
            ch.far.far_event("redirect", {"endpoint": endpoint})
        self.schedule(ch, 0.0, lambda: self.hangup(ch, 16))

    def hangup_cause(self, reason: str | None, reason_code: str | None) -> int:
        if reason_code:
            try:
                return int(reason_code)
            except ValueError:
                raise RestError(400, "Invalid reason_code") from None
        if reason:
            if reason not in HANGUP_REASONS:
                raise RestError(400, "Invalid reason for hangup provided")
            return HANGUP_REASONS[reason]
        return 16

    # --- externalMedia and snoop -----------------------------------------------------------

    def external_media(
        self, *, app: str, host: str, fmt: str, cid: str | None, far: Any, local: tuple[str, int]
    ) -> dict[str, Any]:
        """Create the UnicastRTP channel; returns the REST answer (state Down, channelvars)."""
        cid = cid or self.new_channel_id()
        self.check_new_id(cid)
        ch = Channel(
            id=cid,
            name=f"UnicastRTP/{host}-0x{np.random.randint(0x10000000, 0x7FFFFFFF):x}",
            state="Down",
            creationtime=self.now_ts(),
            tech="UnicastRTP",
            ari_created=True,
            far=far,
        )
        ch.context, ch.exten, ch.priority, ch.app_name, ch.app_data = _OUTGOING
        ch.channelvars = {
            "UNICASTRTP_LOCAL_ADDRESS": local[0],
            "UNICASTRTP_LOCAL_PORT": str(local[1]),
        }
        # chan_rtp sets them as channel variables (a subscribeAll observer gets their
        # ChannelVarset): GET /channels/{id}/variable reads them, not only the REST answer
        ch.variables.update(ch.channelvars)
        ch.subs.add(app)
        self.add_channel(ch)
        answer = ch.json(with_vars=True)
        dialstring = f"{host}/c({fmt})"

        def enter() -> None:
            self.dial_event(ch, "", dialstring)
            self.set_state(ch, "Up")
            self.dial_event(ch, "ANSWER", dialstring)
            self.set_var(ch, "STASISSTATUS", "")
            if not self.enter_stasis(ch, app, []):
                self.hangup(ch, 16)

        self._after_reply(ch, enter)
        return answer

    def snoop(
        self, target: Channel, *, spy: str, whisper: str, app: str, args: list[str], sid: str | None
    ) -> Channel:
        for v, what in ((spy, "spy"), (whisper, "whisper")):
            if v not in ("none", "both", "out", "in"):
                raise RestError(400, f"Invalid {what} direction")
        if not app:
            raise RestError(400, "app is required")
        sid = sid or self.new_channel_id()
        if sid in self.channels:  # channel.c refuses the id (AST_CHANNEL_ERROR_ID_EXISTS), and
            # res/ari's snoop answers any failed stasis_app_control_snoop with this 500
            raise RestError(500, "Snoop channel could not be created")
        ch = Channel(
            id=sid,
            name=f"Snoop/{target.id}-{next(self._snoop_seq):08x}",
            state="Up",
            creationtime=self.now_ts(),
            tech="Snoop",
            far=SnoopFar(target, spy, whisper),
            snoop_of=target,
            snoop_spy=spy,
        )
        self.add_channel(ch)
        if whisper in ("out", "both"):
            self.whisperers.setdefault(target.id, []).append(ch)

        def enter() -> None:
            if not self.enter_stasis(ch, app, args):
                self.hangup(ch, 16)

        self._after_reply(ch, enter)
        return ch
