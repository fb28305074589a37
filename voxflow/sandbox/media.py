"""Media in the PBX core: playbacks, bridges (really mixing), recordings, MOH, the 20 ms tick.

Every channel and bridge advances on ONE shared tick. Per tick: each far end says a frame
(``spoken``), each channel hears its playback, else its bridge's mix of the others, else
music on hold, else silence; recordings append what they capture; finished playbacks emit
PlaybackFinished after their last frame went out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .audio import (
    FRAME_SAMPLES,
    Frame,
    SoundBank,
    frames_from_pcm16,
    number_words,
    tone_frames,
)
from .model import Bridge, Channel, LiveRecording, Playback, RestError
from .recfiles import RECORDING_FORMATS, recording_file, stored_path, stored_pcm, write_recording
from .state import PbxCore

__all__ = ["RECORDING_FORMATS", "SILENCE_THRESHOLD", "UNKNOWN_SCHEME", "PbxMedia"]

log = logging.getLogger(__name__)

UNKNOWN_SCHEME = object()  # media with an unknown scheme: started, never finished
_MOH = "440/400,554/400,659/400,554/400,0/400"
_SILENT_GAP = [None] * 5
_ZERO = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_ZERO.setflags(write=False)


def _mix(frames: list[Frame]) -> Frame | None:
    if not frames:
        return None
    if len(frames) == 1:
        return frames[0]
    acc = np.sum(np.stack(frames).astype(np.int32), axis=0)
    mixed: Frame = np.clip(acc, -32768, 32767).astype(np.int16)
    return mixed


SILENCE_THRESHOLD = 256
"""Asterisk's ``silencethreshold`` (dsp.conf default): a 20 ms frame whose mean absolute
sample is below it counts as silence for ``maxSilenceSeconds`` (a quiet line, comfort noise or
A-law's smallest code is silence, not only digital zero)."""


def _is_silent(frame: Frame | None) -> bool:
    """Silence as Asterisk's DSP sees it: no frame, or average energy under the threshold."""
    if frame is None or not len(frame):
        return True
    return bool(np.abs(frame.astype(np.int32)).sum() < SILENCE_THRESHOLD * len(frame))


class PbxMedia(PbxCore):
    """Adds media to :class:`PbxCore`."""

    sounds: SoundBank
    recordings_dir: Path
    live_recordings: dict[str, LiveRecording]
    tick_no: int

    def init_media(self, sounds: SoundBank, recordings_dir: Path) -> None:
        self.sounds = sounds
        self.recordings_dir = recordings_dir
        self.live_recordings = {}
        self.tick_no = 0
        self.media_idle = False
        self._moh_frames: dict[int, Iterator[Frame]] = {}
        self._beeps: dict[str, list[Frame]] = {}  # channel id -> beep frames left
        self.whisperers: dict[str, list[Channel]] = {}  # channel id -> snoops whispering to it
        self._rec_skip: dict[str, int] = {}  # recording name -> frames before it records

    def wake_media(self) -> None:
        """Something may need the media tick again (it pauses while nothing plays, mixes,
        records or speaks, so virtual time can jump straight to the next timer)."""
        self.media_idle = False
        if self.on_channel_added is not None:
            self.on_channel_added()

    def media_released(self, ch: Channel) -> None:
        """A channel's playback or recording ended (the call layer runs a queued continue)."""

    # --- media resolution ------------------------------------------------------------------

    def resolve_media(self, uri: str) -> Iterator[Frame | None] | object | None:
        """Frames for a media URI; ``None`` if it does not exist, UNKNOWN_SCHEME if the
        scheme is not one Asterisk knows."""
        scheme, _, rest = uri.partition(":")
        if scheme == "sound":
            pcm = self.sounds.pcm(rest)
            return iter(frames_from_pcm16(pcm)) if pcm else None
        if scheme == "recording":
            pcm = self.stored_pcm(rest)
            return iter(frames_from_pcm16(pcm)) if pcm is not None else None
        if scheme in ("digits", "characters"):
            frames: list[Frame | None] = []
            for ch in rest:
                pcm = self.sounds.digit_pcm(ch) if scheme == "digits" else None
                if pcm is None and scheme == "characters" and ch.isalnum():
                    pcm = self.sounds.pcm(ch.lower()) or self._spell(ch)
                if pcm is None:
                    return None
                frames.extend(frames_from_pcm16(pcm))
                frames.extend(_SILENT_GAP)
            return iter(frames)
        if scheme == "number":
            try:
                n = int(rest.split(",")[0])
            except ValueError:
                return None
            frames = []
            for word in number_words(n):
                pcm = self.sounds.pcm(word)
                if pcm is None:
                    return None
                frames.extend(frames_from_pcm16(pcm))
            return iter(frames)
        if scheme == "tone":
            return tone_frames(rest)
        return UNKNOWN_SCHEME

    def _spell(self, ch: str) -> bytes | None:
        from .audio import espeak_pcm16

        try:
            pcm = espeak_pcm16(ch)
        except (OSError, RuntimeError):
            return None
        self.sounds.add(ch.lower(), pcm)
        return pcm

    # --- playbacks -------------------------------------------------------------------------

    def play(
        self,
        target: Channel | Bridge,
        media: list[str],
        *,
        playback_id: str | None,
        lang: str = "en",
        offsetms: int = 0,
        skipms: int = 3000,
    ) -> Playback:
        """Queue a playback (201 answer carries state ``queued``)."""
        if not media or not all(media):
            raise RestError(400, "media is required")
        pid = playback_id or self.new_uuid()
        kind = "channel" if isinstance(target, Channel) else "bridge"
        pb = Playback(
            id=pid,
            media=list(media),
            target_uri=f"{kind}:{target.id}",
            language=lang or "en",
            owner=target,
            skip_frames=max(0, skipms) // 20,
        )
        if pid in self.playbacks:  # no check in res_stasis_playback.c: it plays again
            self.playback_dups.setdefault(pid, []).append(pb)
        else:
            self.playbacks[pid] = pb
        target.playbacks.append(pb)
        self.wake_media()
        if len(target.playbacks) == 1:
            self._start_playback(pb, offset_frames=max(0, offsetms) // 20)
        return pb

    def _pb_event(self, etype: str, pb: Playback) -> None:
        owner = pb.owner
        if isinstance(owner, Channel):
            self.emit(etype, {"playback": pb.json()}, channels=[owner])
            if owner.far is not None:
                owner.far.far_event(
                    "playback", {"uri": pb.media_uri, "state": pb.state, "id": pb.id}
                )
        elif isinstance(owner, Bridge):
            self.emit(etype, {"playback": pb.json()}, bridges=[owner])
            for m in owner.members:
                if m.far is not None:
                    m.far.far_event(
                        "playback",
                        {"uri": pb.media_uri, "state": pb.state, "id": pb.id, "bridge": owner.id},
                    )

    def _start_playback(self, pb: Playback, *, offset_frames: int = 0) -> None:
        owner = pb.owner
        if isinstance(owner, Bridge) and owner.announcer is None:
            self._keep_bridge_subscribed(owner)
            owner.announcer = self.pseudo_name("Announcer")
            owner.pseudo.append(owner.announcer)
            self.update_bridge_peers(owner, connected_line=True)
        src = self.resolve_media(pb.media_uri)
        pb.state = "playing"
        self._pb_event("PlaybackStarted", pb)
        if src is UNKNOWN_SCHEME:
            # Asterisk never finishes these; the playback vanishes from /playbacks.
            self._forget_playback(pb)
            self._dequeue(pb)
            return
        if src is None:
            self._finish_playback(pb, "failed")
            return
        pb.frames = src  # type: ignore[assignment]  # an iterator: the sentinels returned above
        for _ in range(offset_frames):
            if next(pb.frames, StopIteration) is StopIteration:  # type: ignore[arg-type]  # end marker
                break

    def _forget_playback(self, pb: Playback) -> None:
        """``pb`` is over: its id now finds the next playback given the same id, if any."""
        dups = self.playback_dups.pop(pb.id, [])
        if self.playbacks.get(pb.id) is pb:
            if dups:
                self.playbacks[pb.id] = dups.pop(0)
            else:
                del self.playbacks[pb.id]
        elif pb in dups:
            dups.remove(pb)
        if dups:
            self.playback_dups[pb.id] = dups

    def _keep_bridge_subscribed(self, br: Bridge) -> None:
        """Asterisk's Announcer/Recorder channels keep the members' apps subscribed to the
        bridge after they leave: BridgeDestroyed still reaches them (capture C)."""
        br.explicit_subs.update(m.app for m in br.members if m.app is not None)

    def _dequeue(self, pb: Playback) -> None:
        owner = pb.owner
        if owner is None:
            return
        if pb in owner.playbacks:
            owner.playbacks.remove(pb)
        if isinstance(owner, Bridge) and not owner.playbacks and owner.announcer:
            if owner.announcer in owner.pseudo:
                owner.pseudo.remove(owner.announcer)
            owner.announcer = None
        if owner.playbacks and owner.playbacks[0].state == "queued":
            nxt = owner.playbacks[0]
            if isinstance(owner, Channel) and owner.hungup:
                return
            self._start_playback(nxt)

    def _finish_playback(self, pb: Playback, state: str) -> None:
        pb.state = state
        pb.frames = None
        self._forget_playback(pb)
        self._pb_event("PlaybackFinished", pb)
        self._dequeue(pb)
        if pb.on_done is not None:
            pb.on_done()
        if isinstance(pb.owner, Channel):
            self.media_released(pb.owner)

    def _next_playback_frame(self, owner: Channel | Bridge) -> tuple[bool, Frame | None]:
        """(playing, frame) for the head playback of ``owner``; advances it."""
        if not owner.playbacks:
            return False, None
        pb = owner.playbacks[0]
        if pb.frames is None:
            return False, None
        if pb.paused:
            return True, None
        frame = next(pb.frames, StopIteration)
        while frame is StopIteration:
            if pb.index + 1 < len(pb.media):
                pb.index += 1
                src = self.resolve_media(pb.media_uri)
                if src is None or src is UNKNOWN_SCHEME:
                    self._finish_playback(pb, "failed")
                    return False, None
                pb.frames = src  # type: ignore[assignment]  # an iterator: the sentinels returned above
                pb.state = "continuing"
                self._pb_event("PlaybackContinuing", pb)
                pb.state = "playing"
                frame = next(pb.frames, StopIteration)  # type: ignore[arg-type]  # end marker
            else:
                self._finish_playback(pb, "done")
                return False, None
        return True, frame  # type: ignore[return-value]  # the loop leaves no end marker

    def stop_playback(self, pid: str) -> None:
        pb = self.playbacks.get(pid)
        if pb is None:
            raise RestError(404, "Playback not found")
        # Asterisk reports stopped, completed and cancelled (still queued) playbacks all as
        # "done" (res_stasis_playback.c); "canceled" is not a playback state in the swagger.
        self._finish_playback(pb, "done")

    def control_playback(self, pid: str, operation: str) -> None:
        pb = self.playbacks.get(pid)
        if pb is None:
            raise RestError(404, "Playback not found")
        if operation not in ("restart", "pause", "unpause", "reverse", "forward"):
            raise RestError(400, "Invalid operation parameter")
        if pb.state == "queued":
            raise RestError(409, "Playback not currently playing")
        if operation == "pause":
            pb.paused = True
            pb.state = "paused"
        elif operation == "unpause":
            pb.paused = False
            pb.state = "playing"
        elif operation == "restart" or operation == "reverse":
            src = self.resolve_media(pb.media_uri)
            if isinstance(src, Iterator):
                pb.frames = src
        elif operation == "forward" and pb.frames is not None:
            for _ in range(pb.skip_frames):
                if next(pb.frames, StopIteration) is StopIteration:
                    break

    # --- bridges ---------------------------------------------------------------------------

    def create_bridge(self, bid: str | None, types: str, name: str) -> Bridge:
        kinds = {t.strip() for t in (types or "mixing").split(",") if t.strip()}
        unknown = kinds - {
            "mixing",
            "holding",
            "dtmf_events",
            "proxy_media",
            "video_sfu",
            "video_single",
            "sdp_label",
        }
        if unknown:
            raise RestError(400, f"Invalid bridge type '{sorted(unknown)[0]}'")
        bid = bid or self.new_uuid()
        existing = self.bridges.get(bid)
        if existing is not None and not existing.destroyed:
            # res/ari/resource_bridges.c (create and create_with_id): ast_bridge_topic_exists
            raise RestError(409, f"Bridge with id '{bid}' already exists")
        br = Bridge(
            id=bid,
            bridge_type="holding" if "holding" in kinds else "mixing",
            name=name or "",
            creationtime=self.now_ts(),
        )
        self.bridges[bid] = br
        for a in self.apps.values():
            if a.subscribe_all:
                self.emit("BridgeCreated", {"bridge": br.json()}, apps=[a.name])
        return br

    def _peer_string(self, br: Bridge, ch: Channel) -> str:
        names = [m.name for m in br.members if m is not ch] + br.pseudo
        return ",".join(names)

    def update_bridge_peers(self, br: Bridge, *, connected_line: bool = False) -> None:
        if br.bridge_type == "holding":
            return
        for m in list(br.members):
            peers = self._peer_string(br, m)
            if peers and m.variables.get("BRIDGEPEER") != peers:
                self.set_var(m, "BRIDGEPEER", peers)
                if connected_line and m.tech == "Local":
                    self.emit_channel("ChannelConnectedLine", m)

    def _notify_partners(self, br: Bridge) -> None:
        for m in br.members:
            if m.far is not None:
                partners = [o.name for o in br.members if o is not m]
                m.far.far_event("bridge", {"bridge": br.id, "partners": partners})

    def add_to_bridge(self, br: Bridge, channels: list[Channel]) -> None:
        for ch in channels:
            if ch.bridge is br:
                continue
            if ch.bridge is not None:
                self.remove_from_bridge(ch.bridge, ch)
            ch.bridge = br
            br.members.append(ch)
            self.emit(
                "ChannelEnteredBridge",
                {"bridge": br.json(), "channel": ch.json()},
                channels=[ch],
                bridges=[br],
            )
        self.update_bridge_peers(br)
        self._notify_partners(br)
        self.wake_media()

    def remove_from_bridge(self, br: Bridge, ch: Channel) -> None:
        if ch.bridge is not br:
            raise RestError(422, "Channel not in this bridge")
        apps = self._apps_for([ch], [br])
        if br.bridge_type != "holding":
            self.set_var(ch, "BRIDGEPEER", "")
        br.members.remove(ch)
        ch.bridge = None
        ch.bridge_role, ch.absorb_dtmf, ch.bridge_muted = "", False, False
        self.emit("ChannelLeftBridge", {"bridge": br.json(), "channel": ch.json()}, apps=apps)
        self.update_bridge_peers(br)
        self._notify_partners(br)
        if ch.far is not None:
            ch.far.far_event("bridge", {"bridge": None, "partners": []})

    def destroy_bridge(self, br: Bridge) -> None:
        apps = self._apps_for([], [br])
        for ch in list(br.members):
            self.remove_from_bridge(br, ch)
        for pb in list(br.playbacks):
            self._finish_playback(pb, "done")
        for rec in list(br.recordings):
            self.finish_recording(rec)
        br.destroyed = True
        self.bridges.pop(br.id, None)
        if apps:
            self.emit("BridgeDestroyed", {"bridge": br.json()}, apps=apps)

    def bridge_moh(self, br: Bridge, moh_class: str | None) -> None:
        if moh_class is not None and br.moh is None:
            name = self.pseudo_name("Announcer").replace("ARI-", "ARI_MOH-")
            br.pseudo.append(name)
            br.moh = name
            self.update_bridge_peers(br)
            self.wake_media()
        elif moh_class is None and br.moh is not None:
            if br.moh in br.pseudo:
                br.pseudo.remove(br.moh)
            br.moh = None

    # --- recordings ------------------------------------------------------------------------

    def recording_file(self, name: str, fmt: str) -> Path:
        """Where recording ``name`` in format ``fmt`` lives (:func:`.recfiles.recording_file`)."""
        return recording_file(self.recordings_dir, name, fmt)

    def stored_pcm(self, name: str) -> bytes | None:
        """8 kHz pcm16 of a stored recording (wav/sln/ulaw/alaw)."""
        return stored_pcm(self.recordings_dir, name)

    def start_recording(
        self,
        target: Channel | Bridge,
        *,
        name: str,
        fmt: str,
        max_duration: float,
        max_silence: float,
        if_exists: str,
        terminate_on: str,
        beep: bool = False,
    ) -> LiveRecording:
        """Start recording ``target``; ``beep`` plays a 1 kHz beep to a channel first (not
        part of the file), as Asterisk's play-and-record does."""
        self._check_recording_request(name, fmt, if_exists, terminate_on)
        kind = "channel" if isinstance(target, Channel) else "bridge"
        rec = LiveRecording(
            name=name,
            format=fmt,
            target_uri=f"{kind}:{target.id}",
            owner=target,
            max_duration=max_duration,
            max_silence=max_silence,
            terminate_on=terminate_on,
        )
        if if_exists == "append":
            old = self.stored_pcm(name)
            if old:
                rec.frames.extend(frames_from_pcm16(old))
                rec.heard_audio = True
        if isinstance(target, Channel) and target.bridge is not None:
            rec.state = "failed"
            rec.cause = "Cannot record channel while in bridge"
            self.emit("RecordingFailed", {"recording": rec.json()}, channels=[target])
            return rec
        self.live_recordings[name] = rec
        target.recordings.append(rec)
        self.wake_media()
        rec.state = "recording"
        self._announce_recording(target, rec, beep)
        return rec

    def _check_recording_request(
        self, name: str, fmt: str, if_exists: str, terminate_on: str
    ) -> None:
        """Raise the RestError Asterisk answers a bad or clashing recording request with."""
        if not name:
            raise RestError(400, "Recording name is required")
        if fmt not in RECORDING_FORMATS:
            raise RestError(422, "specified format is unknown on this system")
        self.recording_file(name, fmt)  # 400 when it would land outside the recordings dir
        if if_exists not in ("fail", "overwrite", "append"):
            raise RestError(400, "ifExists invalid")
        if terminate_on not in ("none", "any", "*", "#"):
            raise RestError(400, "terminateOn invalid")
        # Asterisk (stasis_app_control_record: EEXIST) answers both alike
        taken = f"Recording '{name}' already exists and can not be overwritten"
        if if_exists == "fail" and stored_path(self.recordings_dir, name) is not None:
            raise RestError(409, taken)
        if name in self.live_recordings:
            raise RestError(409, taken)

    def _announce_recording(self, target: Channel | Bridge, rec: LiveRecording, beep: bool) -> None:
        """Emit RecordingStarted; a bridge gets a Recorder pseudo member, a channel its beep."""
        if isinstance(target, Bridge):
            self._keep_bridge_subscribed(target)
            target.pseudo.append(self.pseudo_name("Recorder"))
            self.update_bridge_peers(target)
            self.emit("RecordingStarted", {"recording": rec.json()}, bridges=[target])
            return
        self.emit("RecordingStarted", {"recording": rec.json()}, channels=[target])
        if beep:
            tone = frames_from_pcm16(self.sounds.pcm("beep") or b"")
            self._beeps[target.id] = tone
            self._rec_skip[rec.name] = len(tone)

    def _rec_emit(self, etype: str, rec: LiveRecording, **extra: Any) -> None:
        payload = rec.json(**extra)
        if isinstance(rec.owner, Channel):
            self.emit(etype, {"recording": payload}, channels=[rec.owner])
        else:
            self.emit(etype, {"recording": payload}, bridges=[rec.owner])

    def finish_recording(self, rec: LiveRecording, *, cancel: bool = False) -> None:
        """Stop a live recording: write the file (unless cancelled) and emit the event."""
        self.live_recordings.pop(rec.name, None)
        self._rec_skip.pop(rec.name, None)
        owner = rec.owner
        if rec in owner.recordings:
            owner.recordings.remove(rec)
        if isinstance(owner, Bridge):
            rname = next((p for p in owner.pseudo if p.startswith("Recorder/")), None)
            if rname:
                owner.pseudo.remove(rname)
        if cancel:
            rec.state = "canceled"
            self._rec_emit("RecordingFinished", rec)
            if isinstance(owner, Channel):
                self.media_released(owner)
            return
        frames: list[Frame | None] = rec.frames if rec.heard_audio else []
        if rec.max_silence and rec.trailing_silence and frames:
            frames = frames[: len(frames) - rec.trailing_silence] or frames
        pcm = b"".join(
            (f if f is not None else np.zeros(FRAME_SAMPLES, np.int16)).astype("<i2").tobytes()
            for f in frames
        )
        write_recording(self.recordings_dir, rec.name, rec.format, pcm)
        rec.state = "done"
        duration = len(frames) // 50
        self._rec_emit("RecordingFinished", rec, duration=duration)
        if isinstance(owner, Channel):
            if owner.far is not None:
                owner.far.far_event("recorded", {"name": rec.name, "duration": duration})
            self.media_released(owner)

    def _record_frame(self, rec: LiveRecording, frame: Frame | None) -> None:
        if rec.state != "recording":
            return
        if self._rec_skip.get(rec.name):  # the beep is still playing
            self._rec_skip[rec.name] -= 1
            return
        if rec.muted:
            frame = None
        silent = _is_silent(frame)
        if not silent:
            rec.heard_audio = True
            rec.trailing_silence = 0
        else:
            rec.trailing_silence += 1
        rec.frames.append(frame)
        if rec.max_duration and len(rec.frames) >= rec.max_duration * 50:
            self.finish_recording(rec)
        elif rec.max_silence and rec.heard_audio and rec.trailing_silence >= rec.max_silence * 50:
            self.finish_recording(rec)

    def on_dtmf_media(self, ch: Channel, digit: str) -> None:
        for rec in list(ch.recordings):
            if rec.terminate_on == "any" or rec.terminate_on == digit:
                self.finish_recording(rec)

    # --- hang-up cleanup -------------------------------------------------------------------

    def on_hangup_media(self, ch: Channel) -> None:
        self._beeps.pop(ch.id, None)
        self.whisperers.pop(ch.id, None)
        if ch.snoop_of is not None:
            snoops = self.whisperers.get(ch.snoop_of.id)
            if snoops and ch in snoops:
                snoops.remove(ch)
                if not snoops:
                    del self.whisperers[ch.snoop_of.id]
        for pb in list(ch.playbacks):
            # Asterisk still runs the playbacks queued behind the current one: each starts
            # and fails at once (capture continue-outcomes.json i)
            if pb.state == "queued":
                pb.state = "playing"
                self._pb_event("PlaybackStarted", pb)
            self._finish_playback(pb, "failed")
        for rec in list(ch.recordings):
            self.finish_recording(rec)
        if ch.bridge is not None:
            self.remove_from_bridge(ch.bridge, ch)

    # --- the tick --------------------------------------------------------------------------

    def _moh_frame(self, ch: Channel) -> Frame | None:
        it = self._moh_frames.get(id(ch))
        if it is None:
            it = tone_frames(_MOH)
            assert it is not None
            self._moh_frames[id(ch)] = it
        return next(it, None)

    def tick(self) -> None:
        """Advance all media by 20 ms (mixing every bridge in one numpy pass)."""
        self.tick_no += 1
        active = self._active_channels()
        bridges = self._take_spoken(active)
        bridge_frames = self._bridge_frames(bridges)
        self.media_idle = not active and not any(b.playbacks for b in self.bridges.values())
        mixes = self._mix_bridges(bridges, bridge_frames)
        for ch in active:
            if not ch.hungup:
                self._tick_channel(ch, mixes)
        self._record_bridges(bridge_frames)

    def _active_channels(self) -> list[Channel]:
        """The channels with media to move this tick."""
        whisperers = self.whisperers
        return [
            ch
            for ch in self.channels.values()
            if ch.bridge is not None
            or ch.playbacks
            or ch.recordings
            or ch.moh is not None
            or (ch.far is not None and ch.far.wants_tick)
            or (whisperers and ch.id in whisperers)
        ]

    @staticmethod
    def _take_spoken(active: list[Channel]) -> dict[str, Bridge]:
        """Take each active channel's next spoken frame; return the bridges they are in."""
        bridges: dict[str, Bridge] = {}
        for ch in active:
            far = ch.far
            ch.spoken = far.next_spoken() if far is not None else None
            if ch.bridge is not None:
                bridges[ch.bridge.id] = ch.bridge
        return bridges

    def _bridge_frames(self, bridges: dict[str, Bridge]) -> dict[str, Frame | None]:
        """Each bridge's own media this tick (playback, else music on hold)."""
        bridge_frames: dict[str, Frame | None] = {}
        for br in list(self.bridges.values()):
            if br.id in bridges:
                bframe = self._next_playback_frame(br)[1] if br.playbacks else None
                if bframe is None and br.moh is not None:
                    bframe = self._moh_frame_for(br)
                bridge_frames[br.id] = bframe
            elif br.playbacks:  # bridges playing to nobody still advance
                self._next_playback_frame(br)
        return bridge_frames

    def _own_frame(self, ch: Channel) -> tuple[bool, Frame | None]:
        """(playing, frame) of what is played to the channel itself: a beep, else a playback."""
        beep = self._beeps.get(ch.id) if self._beeps else None
        if beep:  # a recording's beep goes first
            frame = beep.pop(0)
            if not beep:
                del self._beeps[ch.id]
            return True, frame
        if ch.playbacks:
            return self._next_playback_frame(ch)
        return False, None

    def _heard_frame(self, ch: Channel, mixes: dict[str, Frame | None]) -> Frame | None:
        """What the channel hears this tick: its own playback, else its bridge or hold music,
        with its whisperers mixed in."""
        playing, frame = self._own_frame(ch)
        if not playing:
            if ch.bridge is not None:
                frame = mixes.get(ch.id)
                if frame is None and ch.bridge.softmix:
                    frame = _ZERO  # softmix sends silence; simple_bridge sends nothing
            elif ch.moh is not None:
                frame = self._moh_frame(ch)
        whisperers = self.whisperers
        if whisperers and ch.id in whisperers:
            extra = [getattr(s.far, "last_heard", None) for s in whisperers[ch.id]]
            frame = _mix([f for f in [frame, *extra] if f is not None])
        return frame

    def _tick_channel(self, ch: Channel, mixes: dict[str, Frame | None]) -> None:
        """Give the channel what it hears and record what it says."""
        frame = self._heard_frame(ch, mixes)  # advances playbacks even when silenced
        if ch.silenced:
            frame = None
        ch.heard = frame
        if ch.far is not None:
            ch.far.hear(frame, self.tick_no)
        if ch.recordings:
            for rec in list(ch.recordings):
                self._record_frame(rec, ch.spoken)

    def _record_bridges(self, bridge_frames: dict[str, Frame | None]) -> None:
        """Record each recorded bridge's mix of its unmuted members and its own media."""
        for br in [b for b in self.bridges.values() if b.recordings]:
            if br.recordings:
                parts2 = [
                    m.spoken for m in br.members if m.spoken is not None and not m.bridge_muted
                ]
                bf2 = bridge_frames.get(br.id)
                if bf2 is not None:
                    parts2.append(bf2)
                mixed = _mix(parts2)
                for rec in list(br.recordings):
                    self._record_frame(rec, mixed)

    def _mix_bridges(
        self, bridges: dict[str, Bridge], bridge_frames: dict[str, Frame | None]
    ) -> dict[str, Frame | None]:
        """What each bridged channel hears: the bridge's own media plus (mixing bridges) the
        sum of the other members' voices. Bridges with at most one sound source take a fast
        path; the rest are summed together in one numpy pass (int32 accumulate, clip)."""
        out: dict[str, Frame | None] = {}
        parts: list[Frame] = []
        starts: list[int] = []
        members: list[Channel] = []
        groups: list[int] = []
        for br in bridges.values():
            bframe = bridge_frames.get(br.id)
            if br.bridge_type == "holding":
                for m in br.members:
                    out[m.id] = bframe
                continue
            voices = [m for m in br.members if m.spoken is not None and not m.bridge_muted]
            if len(voices) + (bframe is not None) <= 1:
                if bframe is not None or not voices:
                    for m in br.members:
                        out[m.id] = bframe
                else:
                    talker = voices[0]
                    for m in br.members:
                        out[m.id] = None if m is talker else talker.spoken
                continue
            group = len(starts)
            starts.append(len(parts))
            parts.extend(m.spoken for m in voices)  # type: ignore[misc]  # voices: spoken is set
            if bframe is not None:
                parts.append(bframe)
            for m in br.members:
                members.append(m)
                groups.append(group)
        if not members:
            return out
        sums = np.add.reduceat(np.stack(parts).astype(np.int32), starts, axis=0)
        own = np.stack([_ZERO if m.spoken is None or m.bridge_muted else m.spoken for m in members])
        heard = np.clip(sums[groups] - own, -32768, 32767).astype(np.int16)
        for i, m in enumerate(members):
            out[m.id] = heard[i]
        return out

    def _moh_frame_for(self, br: Bridge) -> Frame | None:
        it = self._moh_frames.get(id(br))
        if it is None:
            it = tone_frames(_MOH)
            assert it is not None
            self._moh_frames[id(br)] = it
        return next(it, None)
