"""A provider setting that cannot work (``VOXFLOW_LLM_BASE_URL=ftp://x``, an unclosed IPv6
host, a NaN timeout, OpenAI's own URL with no API key) stops ``voxflow run`` at start-up with
one line and exit 2. Before: a ProviderError traceback (the LLM's URL), or every call failing
('say failed: ValueError: Invalid IPv6 URL', 'cannot reach https://api.openai.com/v1')."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voxflow.ai.config import load_ai_config
from voxflow.cli.main import cli
from voxflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOXFLOW_LLM_BASE_URL": "ftp://x", "OPENAI_API_KEY": KEY},
         "error: llm base_url: invalid URL 'ftp://x' (expected http:// or https://)"),
        ({"VOXFLOW_TTS_PROVIDER": "openai", "OPENAI_API_KEY": KEY, "VOXFLOW_TTS_BASE_URL":
          "http://[::1"}, "error: tts base_url: invalid URL 'http://[::1'"),
        ({"VOXFLOW_STT_PROVIDER": "deepgram", "DEEPGRAM_API_KEY": KEY,
          "VOXFLOW_STT_BASE_URL": "http://dg.local/v1/listen"},
         "error: stt base_url: invalid URL 'http://dg.local/v1/listen' (expected ws:// or wss://)"),
        ({"VOXFLOW_TTS_PROVIDER": "openai", "OPENAI_API_KEY": KEY, "VOXFLOW_TTS_TIMEOUT": "nan"},
         "error: tts: timeout must be positive, got nan"),
        ({"VOXFLOW_TTS_PROVIDER": "openai"},
         "error: tts: the openai provider at https://api.openai.com/v1 needs an API key"),
    ],
)  # fmt: skip
def test_run_refuses_a_provider_setting_that_cannot_work(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in ("OPENAI_API_KEY", "DEEPGRAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    flow = str(ROOT / "flows" / "main_ivr.flow")
    result = CliRunner().invoke(cli, ["run", flow, "--no-warm-prompts"])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and KEY not in result.output


def test_a_local_openai_compatible_server_needs_no_key() -> None:
    cfg = load_ai_config(env={"VOXFLOW_TTS_PROVIDER": "openai",
                              "VOXFLOW_TTS_BASE_URL": "http://127.0.0.1:9/v1"})  # fmt: skip
    assert cfg.tts is not None and cfg.tts.api_key is None
    with pytest.raises(ConfigError, match="llm base_url: invalid URL"):
        load_ai_config(env={"VOXFLOW_LLM_BASE_URL": "http://[zz]/v1"})
