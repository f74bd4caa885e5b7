"""Fixtures for the batch tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_data import write_cohort


@pytest.fixture
def bad_cohort(tmp_path: Path) -> dict:
    return write_cohort(tmp_path / "data")
