"""The fast template-name scanner agrees with jinja2's own analysis."""

from __future__ import annotations

import jinja2.meta
import jinja2.sandbox
import pytest

from voxflow.spec.options import template_names

TEMPLATES = [
    "no names at all",
    "Hi {{ name }}",
    "{{ call.caller }} and {{ x | default(y) }}",
    '{{ a.b[c] }} {{ "str {{ x" ~ d }}',
    "{{ f(k=v) }}",
    "{{ x is defined and not y }}",
    "{{ card[-4:] }}",
    "{{ a if b else c }}",
    "{{ items|join(sep) }}",
    "{% for i in items %}{{ i }}{{ total }}{% endfor %}",
    "{% set z = 1 %}{{ z + w }}",
    "{# comment #}{{ q }}",
]


@pytest.mark.parametrize("source", TEMPLATES)
def test_names_match_jinja(source: str) -> None:
    env = jinja2.sandbox.SandboxedEnvironment()
    expected = tuple(sorted(jinja2.meta.find_undeclared_variables(env.parse(source))))
    assert template_names(source) == (expected, None)


@pytest.mark.parametrize("source", ["{{ x ", "{{ }}", "{% if x %}no end", "{{ x | }}"])
def test_bad_templates_are_reported(source: str) -> None:
    names, problem = template_names(source)
    assert problem is not None and names == ()
