"""Guard test fixtures: a tiny random Llama + char-level tokenizer, one torch thread."""

import pytest
import torch

from tests.tinymodels import make_tiny, tiny_tokenizer

SCHEMA = ('{"type": "object", "properties": {"name": {"type": "string"}, '
          '"level": {"enum": ["low", "high"]}, "n": {"type": "integer"}}, '
          '"required": ["name", "level"]}')


@pytest.fixture
def one_thread():
    # Decoding a 32-wide model is all per-op overhead: two threads only add contention.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def model():
    # 256 positions: room for a prompt plus 60 new tokens
    return make_tiny("llama", max_position_embeddings=256)[0]
