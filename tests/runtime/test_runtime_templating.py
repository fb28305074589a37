"""Prompt templates: strict undefined, sandbox, caching."""

from __future__ import annotations

import pytest

from voxflow.errors import TemplateError
from voxflow.runtime.templating import TemplateRenderer, is_template


def test_renders_variables_and_filters() -> None:
    r = TemplateRenderer()
    out = r.render(
        "Hello {{ name }}, you owe {{ amount }}. Code {{ code | digits }}.",
        {"name": "Ana", "amount": 12.5, "code": "1234"},
    )
    assert out == "Hello Ana, you owe 12.5. Code 1 2 3 4."


def test_plain_text_is_returned_unchanged() -> None:
    r = TemplateRenderer()
    assert r.render("Welcome to Acme.", {}) == "Welcome to Acme."
    assert not is_template("Welcome")
    assert is_template("{{ x }}")


def test_undefined_name_is_an_error() -> None:
    with pytest.raises(TemplateError, match="undefined"):
        TemplateRenderer().render("Hi {{ nobody }}", {"name": "x"})


def test_undefined_attribute_is_an_error() -> None:
    with pytest.raises(TemplateError):
        TemplateRenderer().render("Hi {{ user.nickname }}", {"user": {"name": "x"}})


def test_sandbox_blocks_unsafe_attribute_access() -> None:
    with pytest.raises(TemplateError, match="sandbox"):
        TemplateRenderer().render("{{ x.__class__.__mro__ }}", {"x": 1})


def test_syntax_error_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="syntax"):
        TemplateRenderer().render("Hi {{ name ", {"name": "x"})


def test_runtime_error_inside_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError):
        TemplateRenderer().render("{{ 1 / zero }}", {"zero": 0})


def test_compiled_templates_are_cached_and_bounded() -> None:
    r = TemplateRenderer(cache_size=2)
    a = r.compile("{{ a }}")
    assert r.compile("{{ a }}") is a
    r.compile("{{ b }}")
    r.compile("{{ c }}")
    assert r.compile("{{ a }}") is not a  # evicted, recompiled


def test_names_lists_undeclared_variables() -> None:
    r = TemplateRenderer()
    assert r.names("{{ a }} {% for x in items %}{{ x }}{% endfor %}") == {"a", "items"}


def test_a_missing_map_key_names_the_key_not_a_python_dict() -> None:
    # a token the dialplan did not pass: the message said "'dict object' has no attribute"
    with pytest.raises(TemplateError) as info:
        TemplateRenderer().render(
            "Bearer {{ call.metadata.accounts_token }}", {"call": {"metadata": {}}}
        )
    msg = str(info.value)
    assert "dict object" not in msg
    assert "no key 'accounts_token'" in msg
    with pytest.raises(TemplateError) as info:
        TemplateRenderer().render("{{ caller_nme }}", {"caller_name": "Ann"})
    assert "'caller_nme' is undefined" in str(info.value)
