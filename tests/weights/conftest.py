from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    # small networks: extra intra-op threads only add synchronisation cost on a busy machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

