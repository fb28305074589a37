"""Issue 14 item 8: templates have resource limits at run time (the sandbox intercepts binary
operators, ranges and padding; the rendered text is capped) and the checker reports the constant
blow-ups it can see, quickly and without building them."""

from __future__ import annotations

import time

import pytest

from voxflow.check.templates import analyze_template
from voxflow.errors import TemplateError
from voxflow.runtime.templating import TemplateRenderer

BLOWUPS = [
    "{{ (1,)*99999999 }}",
    "{{ 'a' * 99999999 }}",
    "{{ ('a' * 1000) * 1000 }}",
    "{{ 9 ** 99999999 }}",
    "{% for i in range(99999999) %}x{% endfor %}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '{:>999999999}'.format(1) }}",
]


@pytest.mark.parametrize("source", BLOWUPS)
def test_the_checker_flags_constant_blowups_without_building_them(source: str) -> None:
    # CPU time of this thread: what the template costs, whatever else the machine runs
    t0 = time.thread_time()
    info = analyze_template(source)
    assert info.error is not None and "too expensive" in info.error
    assert time.thread_time() - t0 < 1.0


@pytest.mark.parametrize("source", BLOWUPS)
def test_rendering_a_blowup_fails_fast_with_a_template_error(source: str) -> None:
    t0 = time.thread_time()
    with pytest.raises(TemplateError, match="too expensive"):
        TemplateRenderer().render(source, {})
    assert time.thread_time() - t0 < 1.0


@pytest.mark.parametrize(
    "source",
    [
        "{{ (1,) * n }}",  # not constant: only the runtime can tell
        "{{ 'ab' * n }}",
        "{{ '{:>{}}'.format(1, n) }}",
        "{% for i in range(n) %}{% for j in range(n) %}x{% endfor %}{% endfor %}",
    ],
)
def test_runtime_limits_catch_what_only_the_values_show(source: str) -> None:
    assert analyze_template(source).error is None
    with pytest.raises(TemplateError, match="too expensive"):
        TemplateRenderer().render(source, {"n": 999_999})


def test_ordinary_templates_still_render() -> None:
    out = TemplateRenderer().render(
        "{{ 'ab' * 2 }} {{ 2 ** 10 }} {{ range(3)|list }} {{ '%05d' % 42 }} {{ '{:>4}'.format(7) }}"
        " {{ 'x'|center(5) }}|{{ n + 1 }} {{ 'a' + 'b' }}",
        {"n": 1},
    )
    assert out == "abab 1024 [0, 1, 2] 00042    7   x  |2 ab"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'ab'|replace('a', 'a' * 99999)|replace('a', 'a' * 99999) }}",
        "{{ 'ab'.replace('a', 'a' * 99999).replace('a', 'a' * 99999) }}",
        "{{ ['x' * 99999] * 99999 }}",  # 99999 references to one long string
        "{{ (['x' * 99999] * 99999)|join }}",
        "{{ ([0] * 99999)|join('x' * 99999) }}",
        "{{ ''.join(['x' * 99999] * 99999) }}",
        "{{ ([[0]] * 99999)|sum(start=[]) }}",  # quadratic copying
        "{% set l = [] %}{% for i in range(10000) %}{% if l.append('x' * 9999) %}{% endif %}"
        "{% endfor %}{{ l }}",
    ],
)
def test_amplifiers_that_multiply_a_long_string_fail_fast(source: str) -> None:
    t0 = time.thread_time()
    with pytest.raises(TemplateError, match="too expensive"):
        TemplateRenderer().render(source, {})
    assert time.thread_time() - t0 < 2.0


def test_ordinary_joins_replaces_sums_and_lists_still_render() -> None:
    out = TemplateRenderer().render(
        "{{ 'ab'|replace('a', 'c') }} {{ [1, 2]|join(', ') }} {{ [1, 2]|sum }} "
        "{{ [[1], [2]]|sum(start=[]) }} {{ ['a'] * 2 }} {{ {'k': 'v'} }} {{ '-'.join(xs) }} "
        "{{ xs|join }}",
        {"xs": ["x", "y"]},
    )
    assert out == "cb 1, 2 3 [1, 2] ['a', 'a'] {'k': 'v'} x-y xy"
