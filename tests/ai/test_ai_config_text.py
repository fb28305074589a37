"""Provider config (precedence, secrets), the sentence chunker and tool-argument validation."""

from __future__ import annotations

import pickle

import pytest

from voxflow.agent.schema import ToolArgumentsError, parse_tool_arguments, schema_from_types
from voxflow.agent.sentences import SentenceChunker, split_sentences
from voxflow.ai.config import AiConfig, Secret, build_llm, build_stt, build_tts, load_ai_config
from voxflow.ai.deepgram_stt import DeepgramSTT
from voxflow.ai.openai_llm import OpenAIChatModel
from voxflow.ai.openai_stt import OpenAISTT
from voxflow.ai.openai_tts import OpenAITTS
from voxflow.errors import ConfigError


def test_secret_never_shows_its_value() -> None:
    s = Secret("sk-very-secret")
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s)
    assert "sk-very-secret" not in f"{s} {s!r} {[s]} {dict(k=s)}"
    assert s.get() == "sk-very-secret" and s == Secret("sk-very-secret")
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_nothing_configured_by_a_key_alone() -> None:
    assert load_ai_config(env={"OPENAI_API_KEY": "sk-x"}) == AiConfig()


def test_precedence_app_over_flow_over_env() -> None:
    env = {
        "VOXFLOW_LLM_BASE_URL": "http://env:1/v1",
        "VOXFLOW_LLM_MODEL": "env-model",
        "OPENAI_API_KEY": "sk-env",
        "DEEPGRAM_API_KEY": "dg-env",
        "VOXFLOW_TTS_VOICE": "echo",
        "VOXFLOW_TTS_PROVIDER": "openai",
    }
    cfg = load_ai_config(
        app={"llm": {"model": "app-model"}},
        flow={
            "llm": {"model": "flow-model", "temperature": 0.2},
            "stt": "deepgram",
            "tts_voice": "nova",
        },
        env=env,
    )
    assert cfg.llm is not None and cfg.llm.model == "app-model"
    assert cfg.llm.base_url == "http://env:1/v1"
    assert cfg.llm.api_key == Secret("sk-env") and cfg.llm.options == {"temperature": 0.2}
    assert cfg.stt is not None and cfg.stt.provider == "deepgram"
    assert cfg.stt.api_key == Secret("dg-env")
    assert cfg.tts is not None and cfg.tts.voice == "nova"
    assert "sk-env" not in repr(cfg)
    llm = build_llm(cfg.llm)
    assert isinstance(llm, OpenAIChatModel) and llm.model == "app-model" and llm.temperature == 0.2
    assert isinstance(build_stt(cfg.stt), DeepgramSTT)
    tts = build_tts(cfg.tts)
    assert isinstance(tts, OpenAITTS) and tts.voice == "nova"
    whisper = build_stt(load_ai_config(env={"VOXFLOW_STT_MODEL": "whisper-1"}).stt)
    assert isinstance(whisper, OpenAISTT) and whisper.response_format == "verbose_json"
    env = {"VOXFLOW_STT_MODEL": "whisper-1", "VOXFLOW_STT_RESPONSE_FORMAT": "json"}
    plain = build_stt(load_ai_config(env=env).stt)
    assert isinstance(plain, OpenAISTT) and plain.response_format == "json"
    env["VOXFLOW_STT_RESPONSE_FORMAT"] = "srt"
    with pytest.raises(ConfigError, match="response_format must be one of"):
        build_stt(load_ai_config(env=env).stt)


def test_key_in_flow_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="may not appear in flow files"):
        load_ai_config(flow={"llm": {"model": "m", "api_key": "sk-leak"}}, env={})
    with pytest.raises(ConfigError, match="may not appear"):
        load_ai_config(flow={"llm_api_key": "sk-leak"}, env={})


@pytest.mark.parametrize(
    ("app", "match"),
    [
        ({"llm": {"provider": "nope"}}, "unknown llm provider"),
        ({"tts": {"provider": "openai", "timeout": "soon"}}, "timeout must be a number"),
        ({"stt": {"provider": "openai", "timeout": -1}}, "must be positive"),
        ({"llm": 3}, "must be a table"),
    ],
)
def test_bad_config(app: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_ai_config(app=app, env={})


def test_chunker_streams_sentences_token_by_token() -> None:
    text = "Hello Dr. Smith, your balance is $3.50 today! Would you like e.g. a refund? Okay"
    chunker = SentenceChunker(first_min_chars=1000)
    out: list[str] = []
    for ch in text:
        out += chunker.push(ch)
    assert out == ["Hello Dr. Smith, your balance is $3.50 today!", "Would you like e.g. a refund?"]
    assert chunker.flush() == "Okay" and chunker.flush() is None


def test_chunker_emits_sentence_only_once_followed() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Sure.") == []  # might be "Sure.com" or "Sure..."
    assert chunker.push(" Next") == ["Sure."]


def test_chunker_early_first_clause_and_long_runs() -> None:
    chunker = SentenceChunker(first_min_chars=30, max_chars=60)
    first = chunker.push("Thanks for calling Acme support today, let me look that up for you")
    assert first == ["Thanks for calling Acme support today,"]
    long = chunker.push(" and " + "word " * 30)
    assert long and all(len(p) <= 60 for p in long)


def test_split_sentences_handles_quotes_and_newlines() -> None:
    assert split_sentences('He said "stop." Then left.\nNew line') == [
        'He said "stop."',
        "Then left.",
        "New line",
    ]


def test_tool_arguments_validation() -> None:
    schema = schema_from_types(
        {"department": "string", "priority": "int"}, optional=frozenset({"priority"})
    )
    assert parse_tool_arguments('{"department": "sales"}', schema) == {"department": "sales"}
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        parse_tool_arguments('{"department": ', schema)
    with pytest.raises(ToolArgumentsError, match="missing required argument 'department'"):
        parse_tool_arguments("{}", schema)
    with pytest.raises(ToolArgumentsError, match="priority must be integer"):
        parse_tool_arguments('{"department": "x", "priority": "high"}', schema)
    with pytest.raises(ToolArgumentsError, match="unexpected argument 'dept'"):
        parse_tool_arguments('{"department": "x", "dept": 1}', schema)
    enum = {"type": "object", "properties": {"d": {"enum": ["a", "b"]}}, "required": ["d"]}
    with pytest.raises(ToolArgumentsError, match='one of "a", "b"'):
        parse_tool_arguments('{"d": "c"}', enum)
    with pytest.raises(ToolArgumentsError, match="must be a JSON object"):
        parse_tool_arguments("[1]", enum)
    assert parse_tool_arguments("", {}) == {}
    with pytest.raises(ValueError, match="unknown parameter type"):
        schema_from_types({"x": "date"})


def test_offline_providers_come_from_media() -> None:
    from voxflow.media.stt_pocketsphinx import PocketSphinxSTT
    from voxflow.media.tts_espeak import EspeakTTS

    cfg = load_ai_config(
        app={"tts": {"provider": "espeak", "voice": "en"}, "stt": "pocketsphinx"}, env={}
    )
    tts = build_tts(cfg.tts, {"espeak": EspeakTTS})
    assert isinstance(tts, EspeakTTS)
    assert isinstance(build_stt(cfg.stt, {"pocketsphinx": PocketSphinxSTT}), PocketSphinxSTT)
    with pytest.raises(ConfigError, match="espeak tts is not available"):
        build_tts(cfg.tts)
