"""``holders``: what keeps an object alive, named without its values."""

from __future__ import annotations

from voxflow.testing.holders import holders


class _Session:
    pass


class _Registry:
    def __init__(self) -> None:
        self.by_id: dict[str, object] = {}


def test_holders_name_the_chain_that_keeps_an_object_alive_without_values() -> None:
    session = _Session()
    registry = _Registry()
    registry.by_id["secret-token-value"] = session

    def on_end() -> object:
        return registry

    keep = [on_end]
    lines = holders(session, depth=5)
    text = "\n".join(lines)
    assert lines[0].startswith("dict under 'secret-token-value'")  # the key, not the value
    assert "_Registry" in text and "cell" in text and "on_end" in text
    assert "_Session object" not in text  # no reprs of what is held
    assert keep  # held until here


def test_an_object_nothing_holds_has_no_holders() -> None:
    assert holders(_Session()) == []
