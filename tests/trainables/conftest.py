import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """On a shared 2-core machine, two intra-op threads run ~15x slower than one when other work competes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
