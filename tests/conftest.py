"""Shared fixtures for the voxflow test suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden`` rewrites golden files (tests/golden/) instead of comparing."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/golden/ from the current output",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was started with --update-golden."""
    return bool(request.config.getoption("--update-golden"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (30 s or more on CI) first, in their order: xdist's load scheduler
    deals the first tests out one per worker, so each worker starts with its share of the long
    ones instead of one of them starting last and running alone at the end of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
