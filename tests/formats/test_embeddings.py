"""The canonical embeddings / rerank model: base64 vectors, ranking, token estimates."""

from __future__ import annotations

import array
import base64

import numpy as np
import pytest

from keeprouter.formats.embeddings import (
    RerankRequest,
    RerankResult,
    decode_base64,
    encode_base64,
    estimate_embedding_tokens,
    estimate_rerank_tokens,
    ranked,
)


def test_base64_is_little_endian_float32_as_the_sdks_decode_it() -> None:
    vector = [0.5, -1.25, 3.0, 0.0078125]
    data = encode_base64(vector)
    raw = base64.b64decode(data)
    assert len(raw) == 4 * len(vector)
    assert np.frombuffer(raw, dtype="<f4").tolist() == vector  # openai-python with numpy
    assert array.array("f", raw).tolist() == vector  # openai-python without numpy (little-endian host)
    assert decode_base64(data) == vector


def test_base64_rounds_to_float32() -> None:
    data = encode_base64([0.1])
    assert decode_base64(data) == [float(np.float32(0.1))]


def test_decode_base64_refuses_partial_floats() -> None:
    with pytest.raises(ValueError):
        decode_base64(base64.b64encode(b"\x00\x00\x80").decode())
    with pytest.raises(ValueError):
        decode_base64("not base64!")


def test_empty_vector_round_trips() -> None:
    assert decode_base64(encode_base64([])) == []


def test_ranked_sorts_best_first_and_breaks_ties_by_index() -> None:
    results = [
        RerankResult(index=0, relevance_score=0.2),
        RerankResult(index=3, relevance_score=0.9),
        RerankResult(index=1, relevance_score=0.9),
        RerankResult(index=2, relevance_score=0.5),
    ]
    assert [r.index for r in ranked(results, None)] == [1, 3, 2, 0]
    assert [r.index for r in ranked(results, 2)] == [1, 3]
    assert [r.index for r in ranked(results, 10)] == [1, 3, 2, 0]


def test_token_estimates_count_token_ids_exactly_and_texts_by_length() -> None:
    assert estimate_embedding_tokens([[1, 2, 3], [4]]) == 4
    assert estimate_embedding_tokens(["a" * 40]) == 11
    assert estimate_embedding_tokens(["a" * 40, [7, 8]]) == 13
    req = RerankRequest(model="m", query="q" * 8, documents=["d" * 4, "d" * 12])
    assert estimate_rerank_tokens(req) == (3 + 2) + (3 + 4)
