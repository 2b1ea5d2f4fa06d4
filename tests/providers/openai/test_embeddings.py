"""OpenAI-compatible `/embeddings` and `/rerank`, upstream side: bodies, batches, answers."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
    encode_base64,
)
from keeprouter.providers.openai.embeddings import (
    DEFAULT_BATCH,
    batch_limit_for,
    embedding_batches,
    embedding_dialect_for,
    learn_batch_limit,
    learn_rerank_dialect,
    merge_rerank,
    parse_embeddings,
    parse_rerank,
    rerank_body,
    rerank_dialect_for,
    rerank_parts,
)
from keeprouter.providers.retrieval import merge


def test_one_body_when_the_inputs_fit() -> None:
    req = EmbeddingRequest(
        model="e", inputs=["a", "b"], dimensions=64, user="u", encoding_format="base64", extra={"input_type": "query"}
    )
    [(inputs, body)] = embedding_batches(req, "up-e", 10)
    assert inputs == ["a", "b"]
    assert body == {
        "input_type": "query",
        "model": "up-e",
        "input": ["a", "b"],
        "dimensions": 64,
        "user": "u",
    }  # no encoding_format: absent means floats on every host; Voyage refuses "float" spelled out


def test_voyage_bodies_name_its_dimensions_field_and_carry_only_its_fields() -> None:
    req = EmbeddingRequest(model="e", inputs=["a"], dimensions=512, user="u", encoding_format="base64")
    [(_, body)] = embedding_batches(req, "voyage-3.5", 10, "voyage")
    assert body == {"model": "voyage-3.5", "input": ["a"], "output_dimension": 512}
    assert embedding_dialect_for("https://api.voyageai.com/v1") == "voyage"
    assert embedding_dialect_for("https://api.openai.com/v1") == "openai"
    # Mistral refuses OpenAI's `dimensions` and `user` as extra fields too (extra_forbidden)
    assert embedding_dialect_for("https://api.mistral.ai/v1") == "mistral"
    [(_, mistral)] = embedding_batches(req, "codestral-embed", 10, "mistral")
    assert mistral == {"model": "codestral-embed", "input": ["a"], "output_dimension": 512}
    assert batch_limit_for("https://api.voyageai.com/v1") == 1000  # Voyage's max list length


def test_batches_split_in_order_at_the_limit() -> None:
    req = EmbeddingRequest(model="e", inputs=[f"t{i}" for i in range(7)])
    batches = embedding_batches(req, "m", 3)
    assert [b[0] for b in batches] == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]
    assert [b[1]["input"] for b in batches] == [b[0] for b in batches]
    assert all("dimensions" not in b[1] and "user" not in b[1] for b in batches)


def test_batch_limits_are_host_data_and_learned_from_refusals() -> None:
    assert batch_limit_for("https://api.openai.com/v1") == DEFAULT_BATCH
    assert learn_batch_limit("batch size 40 > maximum allowed batch size 32", 2048) == 32
    assert learn_batch_limit("Input batch size exceeds the limit of 16", 2048) == 16
    assert learn_batch_limit("send at most 8 inputs per request", 2048) == 8
    # Google's wording (its OpenAI-compatible /embeddings is batchEmbedContents underneath)
    assert (
        learn_batch_limit("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch", 2048) == 100
    )
    assert learn_batch_limit("maximum allowed batch size 64", 32) is None  # not smaller: nothing learned
    assert learn_batch_limit("model not found", 2048) is None


def _answer(vectors: list[Any], usage: Any = None, order: list[int] | None = None) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    if order is not None:
        data = [data[i] for i in order]
    out: dict[str, Any] = {"object": "list", "data": data, "model": "up-e"}
    if usage is not None:
        out["usage"] = usage
    return out


def test_parse_puts_vectors_in_input_order_by_index() -> None:
    data = _answer([[1.0], [2.0], [3]], usage={"prompt_tokens": 5, "total_tokens": 5}, order=[2, 0, 1])
    resp = parse_embeddings(data, ["a", "b", "c"])
    assert resp.vectors == [[1.0], [2.0], [3.0]]
    assert resp.usage.input_tokens == 5 and resp.model == "up-e"


def test_parse_decodes_base64_and_estimates_missing_usage() -> None:
    resp = parse_embeddings(_answer([encode_base64([0.5, -2.0])]), [[1, 2, 3]])
    assert resp.vectors == [[0.5, -2.0]]
    assert resp.usage.input_tokens == 3  # token ids count exactly
    assert parse_embeddings(_answer([[0.0]], usage={"total_tokens": 4}), ["a"]).usage.input_tokens == 4


@pytest.mark.parametrize(
    ("data", "inputs"),
    [
        ([], ["a"]),
        ({"data": "x"}, ["a"]),
        (_answer([[1.0]]), ["a", "b"]),  # a vector missing
        (_answer([[1.0], [2.0]]), ["a"]),  # a vector too many
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}, ["a", "b"]),
        ({"data": ["x"]}, ["a"]),
        ({"data": [{"index": "0", "embedding": [1.0]}]}, ["a"]),
        ({"data": [{"index": 0, "embedding": ["1"]}]}, ["a"]),
        ({"data": [{"index": 0, "embedding": [True]}]}, ["a"]),
        ({"data": [{"index": 0, "embedding": "%%%"}]}, ["a"]),
        ({"data": [{"index": 0}]}, ["a"]),
    ],
)
def test_malformed_answers_are_upstream_errors(data: Any, inputs: list[Any]) -> None:
    with pytest.raises(UpstreamError):
        parse_embeddings(data, inputs)


def test_merge_concatenates_in_batch_order_and_sums_usage() -> None:
    parts = [
        EmbeddingResponse(vectors=[[1.0], [2.0]], usage=Usage(input_tokens=3), model="m"),
        EmbeddingResponse(vectors=[[3.0]], usage=Usage(input_tokens=4), model="m"),
    ]
    out = merge(parts)
    assert out.vectors == [[1.0], [2.0], [3.0]]
    assert out.usage.input_tokens == 7 and out.model == "m"
    assert merge([]).vectors == []


DOCS = ["alpha", "beta", "gamma"]


def _rr(**kw: Any) -> RerankRequest:
    return RerankRequest(model="r", query="q", documents=DOCS, **kw)


def test_rerank_bodies_per_dialect() -> None:
    req = _rr(top_n=2, return_documents=True, max_tokens_per_doc=100, extra={"priority": 0})
    assert rerank_body(req, "up-r", "cohere") == {
        "priority": 0,
        "model": "up-r",
        "query": "q",
        "documents": DOCS,
        "top_n": 2,
        "max_tokens_per_doc": 100,
    }
    assert rerank_body(req, "up-r", "voyage") == {
        "priority": 0,
        "model": "up-r",
        "query": "q",
        "documents": DOCS,
        "top_k": 2,
    }
    assert rerank_body(req, "up-r", "tei") == {"query": "q", "texts": DOCS, "truncate": True}
    assert rerank_body(req, "up-r", "jina") == {  # Jina sends the documents back unless told not to
        "priority": 0,
        "model": "up-r",
        "query": "q",
        "documents": DOCS,
        "top_n": 2,
        "return_documents": False,
    }
    assert rerank_body(_rr(), "up-r", "cohere") == {"model": "up-r", "query": "q", "documents": DOCS}


def test_rerank_dialects_are_host_data_and_learned_from_tei() -> None:
    assert rerank_dialect_for("https://api.voyageai.com/v1") == "voyage"
    assert rerank_dialect_for("https://api.jina.ai/v1") == "jina"
    assert rerank_dialect_for("http://127.0.0.1:8080") == "cohere"
    assert learn_rerank_dialect("Failed to deserialize: missing field `texts` at line 1", "cohere") == "tei"
    assert learn_rerank_dialect("missing field `texts`", "tei") is None
    assert learn_rerank_dialect("model not found", "cohere") is None


def test_parse_rerank_cohere_shape_with_search_units() -> None:
    data = {
        "id": "x",
        "results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}],
        "meta": {"billed_units": {"search_units": 1}, "tokens": {"input_tokens": 12}},
    }
    resp = parse_rerank(data, _rr())
    assert [(r.index, r.relevance_score) for r in resp.results] == [(1, 0.9), (0, 0.1)]
    assert resp.search_units == 1 and resp.usage.input_tokens == 12


def test_parse_rerank_takes_units_written_as_floats_and_a_zero_token_count() -> None:
    # Cohere's schema types billed units as numbers; 1.0 is one search unit, and 0 tokens is a count
    data = {
        "results": [{"index": 0, "relevance_score": 0.5}],
        "meta": {"billed_units": {"search_units": 1.0, "input_tokens": 99}, "tokens": {"input_tokens": 0}},
    }
    resp = parse_rerank(data, _rr())
    assert resp.search_units == 1 and resp.usage.input_tokens == 0
    assert parse_rerank({**data, "meta": {"billed_units": {"search_units": 1.5}}}, _rr()).search_units is None


def test_parse_rerank_vllm_jina_voyage_and_tei_shapes() -> None:
    vllm = {
        "model": "bge",
        "usage": {"total_tokens": 20},
        "results": [{"index": 2, "relevance_score": 0.5, "document": {"text": "gamma"}}],
    }
    resp = parse_rerank(vllm, _rr())
    assert resp.results[0].index == 2 and resp.usage.input_tokens == 20 and resp.model == "bge"
    assert resp.search_units is None
    voyage = {"object": "list", "data": [{"index": 0, "relevance_score": 0.3}], "usage": {"total_tokens": 9}}
    assert parse_rerank(voyage, _rr()).results[0].relevance_score == 0.3
    tei = [{"index": 1, "score": 0.8}, {"index": 0, "score": 1}]
    resp = parse_rerank(tei, _rr())
    assert [(r.index, r.relevance_score) for r in resp.results] == [(1, 0.8), (0, 1.0)]
    assert resp.usage.input_tokens > 0  # no usage reported: our estimate


@pytest.mark.parametrize(
    "data",
    [
        "x",
        {"results": "x"},
        {"results": ["x"]},
        {"results": [{"index": 3, "relevance_score": 0.1}]},
        {"results": [{"index": True, "relevance_score": 0.1}]},
        {"results": [{"index": 0, "relevance_score": "high"}]},
        {"results": [{"index": 0, "relevance_score": 0.2}, {"index": 0, "relevance_score": 0.1}]},
    ],
)
def test_malformed_rerank_answers_are_upstream_errors(data: Any) -> None:
    with pytest.raises(UpstreamError):
        parse_rerank(data, _rr())


def test_azures_input_limit_is_learned() -> None:
    assert learn_batch_limit("Too many inputs. The max number of inputs is 16.  We hope to increase it.", 2048) == 16


def test_rerank_parts_and_their_merge_index_into_the_whole_request() -> None:
    req = RerankRequest(model="r", query="q", documents=[f"d{i}" for i in range(5)], top_n=2)
    parts = rerank_parts(req, 2)
    assert [(offset, part.documents, part.top_n) for offset, part in parts] == [
        (0, ["d0", "d1"], 2),
        (2, ["d2", "d3"], 2),
        (4, ["d4"], 2),
    ]
    answers = [
        RerankResponse(
            results=[RerankResult(index=1, relevance_score=0.4)], usage=Usage(input_tokens=3), search_units=1
        ),
        RerankResponse(
            results=[RerankResult(index=0, relevance_score=0.9)], usage=Usage(input_tokens=4), search_units=1
        ),
        RerankResponse(results=[RerankResult(index=0, relevance_score=0.1)], usage=Usage(input_tokens=2)),
    ]
    merged = merge_rerank([(offset, a) for (offset, _), a in zip(parts, answers, strict=True)])
    assert [(r.index, r.relevance_score) for r in merged.results] == [(1, 0.4), (2, 0.9), (4, 0.1)]
    assert merged.usage.input_tokens == 9 and merged.search_units is None  # one part reported none
