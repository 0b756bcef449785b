"""Shared fixtures: the real HL60 cell (../shared, else the package's copy), small data."""

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
HL60_SHARED = SHARED / "data" / "hl60" / "hl60_ri.h5"
#: The package's copy of the same cell (uint16 with scale and offset, within 5e-6 of the RI).
HL60_BUNDLED = REPO / "src" / "ri2fl" / "data" / "hl60_ri.h5"
#: ``RI2FL_TEST_HL60=bundled`` runs the suite as a fresh clone without ../shared would.
HL60_PATH = (HL60_SHARED if HL60_SHARED.exists() and os.environ.get("RI2FL_TEST_HL60") != "bundled"
             else HL60_BUNDLED)


@pytest.fixture(scope="session")
def hl60_path() -> Path:
    """The real, measured HL60 cell (140³ RI, 0.139 µm isotropic, PBS n=1.335)."""
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
