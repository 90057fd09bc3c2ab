"""Tiny random networks with the real architectures, passed explicitly to the pipeline (tests only)."""

from __future__ import annotations

import pytest
import torch
from tiny_nets import tiny_models


@pytest.fixture(scope="session")
def models() -> dict[str, torch.nn.Module]:
    return tiny_models()


@pytest.fixture(scope="session")
def models_no_faces() -> dict[str, torch.nn.Module]:
    return tiny_models(faces=False)
