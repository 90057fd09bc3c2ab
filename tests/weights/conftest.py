from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    # on the shared 2-core machine a second intra-op thread makes forwards many times slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

