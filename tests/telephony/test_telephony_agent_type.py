"""``call.agent`` has a precise type at every seam (no ``Any``): ``CallSession.agent``, the
agent factory hook, the app's builder, and the runtime's ports all say ``CallAgent``, so mypy
checks ``call.agent.respond(...)`` in user code and in the runtime."""

from __future__ import annotations

import typing

from voxflow.agent.call_agent import CallAgent
from voxflow.ari.rest import AriRestClient
from voxflow.runtime.port import AgentHost, CallPort
from voxflow.telephony import agents
from voxflow.telephony.app import VoxtraApp
from voxflow.telephony.session import CallSession
from voxflow.testing.simcall import SimCall

NAMES = {
    "CallAgent": CallAgent,
    "CallSession": CallSession,
    "VoxtraApp": VoxtraApp,
    "AriRestClient": AriRestClient,
}


def _returns(fn: typing.Any) -> object:
    return typing.get_type_hints(fn, localns=NAMES)["return"]


def test_call_agent_is_typed_at_every_seam() -> None:
    for owner in (CallSession, AgentHost, CallPort, SimCall):
        prop = owner.agent
        assert isinstance(prop, property) and prop.fget is not None
        assert _returns(prop.fget) is CallAgent, owner
    assert _returns(VoxtraApp._make_agent) is CallAgent
    [_, made] = typing.get_args(agents.AgentFactory)
    assert made in (CallAgent, "CallAgent", typing.ForwardRef("CallAgent")), made
    hints = typing.get_type_hints(CallSession.__init__, localns=NAMES)
    assert typing.Any not in hints.values()


def test_the_media_path_sees_ari_through_a_typed_port() -> None:
    """``VoiceContext.rest`` (what ``CallMedia`` sends REST requests through) is the
    ``AriRequests`` Protocol, which ``AriRestClient`` implements, not ``Any``."""
    from voxflow.voice.call import AriRequests, VoiceContext

    hints = typing.get_type_hints(VoiceContext)
    assert hints["rest"] is AriRequests
    # mypy checks it statically where CallSession builds its VoiceContext, and here (this file
    # is in mypy's scope)
    rest: AriRequests = AriRestClient("http://127.0.0.1:9/ari", "u", "p")
    assert callable(rest.request)
