"""Shared fixtures: the real HL60 cell from ../shared, small simulated data, temp folders."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

os.environ.setdefault("RI2FL_NO_PROGRESS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HL60_PATH = SHARED / "data" / "hl60" / "hl60_ri.h5"


@pytest.fixture(scope="session")
def hl60_path() -> Path:
    """The real, measured HL60 cell (140³ float32 RI, 0.139 µm isotropic, PBS n=1.335)."""
    if not HL60_PATH.exists():
        pytest.skip(f"real HL60 cell not found at {HL60_PATH}")
    return HL60_PATH


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """Import ``scripts/<name>.py`` (the scripts are not a package) as a module."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
