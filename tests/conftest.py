"""Shared pytest fixtures: a fresh archive, a CLI runner, paths to fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatarchive.archive.schema import open_db

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
# Real files from the real services (not committed): ../shared/fixtures from
# the project root, present on developer machines and in CI, or wherever this
# variable points (README.md, "Set up", names it).
SHARED_FIXTURES_ENV = "CHATARCHIVE_SHARED_FIXTURES"
SHARED_FIXTURES = Path(os.environ.get(SHARED_FIXTURES_ENV, HERE.parent.parent / "shared" / "fixtures"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chats.db"


@pytest.fixture
def db(db_path: Path):
    return open_db(db_path, create=True)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def needs_shared_fixtures():
    return pytest.mark.skipif(not SHARED_FIXTURES.exists(), reason="../shared/fixtures not present")
