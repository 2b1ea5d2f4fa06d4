"""Cohere v2 `/v1/rerank` client side: parsing, validation, rendering, the error body."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from keeprouter.clients.cohere_rerank.request import MAX_DOCUMENTS, parse_request
from keeprouter.clients.cohere_rerank.response import render, render_error
from keeprouter.errors import InvalidRequest, RateLimited
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import RerankRequest, RerankResponse, RerankResult
from keeprouter.formats.wire.openai import error_type

DOCS = ["Paris is in France", "Berlin is in Germany", "Rome is in Italy"]


def test_parse_v2_body() -> None:
    req = parse_request(
        {
            "model": "r",
            "query": "q",
            "documents": DOCS,
            "top_n": 2,
            "return_documents": True,
            "max_tokens_per_doc": 512,
            "priority": 1,
            "provider": {"only": ["x"]},
        }
    )
    assert req == RerankRequest(
        model="r",
        query="q",
        documents=DOCS,
        top_n=2,
        return_documents=True,
        max_tokens_per_doc=512,
        extra={"priority": 1},
    )


def test_documents_as_objects_with_text() -> None:
    req = parse_request({"model": "r", "query": "q", "documents": [{"text": "a"}, "b"]})
    assert req.documents == ["a", "b"]
    assert req.top_n is None and req.return_documents is False


def test_voyages_top_k_is_the_cut_when_top_n_is_absent() -> None:
    # Voyage-shaped clients name the cut top_k; it must cut here, not ride along to the upstream
    req = parse_request({"model": "r", "query": "q", "documents": DOCS, "top_k": 1})
    assert req.top_n == 1 and "top_k" not in req.extra
    both = parse_request({"model": "r", "query": "q", "documents": DOCS, "top_n": 2, "top_k": 1})
    assert both.top_n == 2  # Cohere's own name wins
    with pytest.raises(InvalidRequest) as bad:
        parse_request({"model": "r", "query": "q", "documents": DOCS, "top_k": 0})
    assert bad.value.param == "top_k"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": "q", "documents": ["a"]}, "model"),
        ({"model": "r", "documents": ["a"]}, "query"),
        ({"model": "r", "query": "", "documents": ["a"]}, "query"),
        ({"model": "r", "query": "q"}, "documents"),
        ({"model": "r", "query": "q", "documents": []}, "documents"),
        ({"model": "r", "query": "q", "documents": "a"}, "documents"),
        ({"model": "r", "query": "q", "documents": ["a", 3]}, "documents[1]"),
        ({"model": "r", "query": "q", "documents": [{"title": "a"}]}, "documents[0]"),
        ({"model": "r", "query": "q", "documents": ["a"] * (MAX_DOCUMENTS + 1)}, "documents"),
        ({"model": "r", "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
        ({"model": "r", "query": "q", "documents": ["a"], "top_n": "2"}, "top_n"),
        ({"model": "r", "query": "q", "documents": ["a"], "return_documents": "yes"}, "return_documents"),
        ({"model": "r", "query": "q", "documents": ["a"], "max_tokens_per_doc": -1}, "max_tokens_per_doc"),
    ],
)
def test_invalid_bodies_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert caught.value.param == param
    out = render_error(caught.value)
    assert out["message"] == out["error"]["message"] == caught.value.message
    assert out["error"]["code"] == 400 and out["error"]["param"] == param


def test_error_body_for_other_statuses() -> None:
    out = render_error(RateLimited("over rpm_limit"))
    assert out["message"] == "over rpm_limit"
    assert out["error"]["code"] == 429
    assert out["error"]["type"] == error_type(429)


def _resp(units: int | None = None) -> RerankResponse:
    return RerankResponse(
        results=[
            RerankResult(index=0, relevance_score=0.1),
            RerankResult(index=2, relevance_score=0.7),
            RerankResult(index=1, relevance_score=0.4),
        ],
        usage=Usage(input_tokens=30),
        search_units=units,
    )


def test_render_sorted_cut_to_top_n_with_documents_from_the_request() -> None:
    req = RerankRequest(model="r", query="q", documents=DOCS, top_n=2, return_documents=True)
    out = render(_resp(), req, id="gen-9", model="r", provider="p", cost=Decimal("0.002"))
    assert out["id"] == "gen-9"
    assert out["results"] == [
        {"index": 2, "relevance_score": 0.7, "document": {"text": DOCS[2]}},
        {"index": 1, "relevance_score": 0.4, "document": {"text": DOCS[1]}},
    ]
    assert out["meta"]["billed_units"] == {"search_units": 1}
    assert out["meta"]["api_version"]["version"] == "2"
    assert out["usage"] == {"search_units": 1, "total_tokens": 30, "cost": 0.002}
    assert out["model"] == "r" and out["provider"] == "p"


def test_render_without_documents_keeps_every_result_and_the_hosts_units() -> None:
    req = RerankRequest(model="r", query="q", documents=DOCS)
    out = render(_resp(units=3), req, id="g", model="r")
    assert [r["index"] for r in out["results"]] == [2, 1, 0]
    assert all("document" not in r for r in out["results"])
    assert out["meta"]["billed_units"] == {"search_units": 3}
    assert "provider" not in out and "cost" not in out["usage"]


def test_search_units_count_one_per_hundred_documents() -> None:
    req = RerankRequest(model="r", query="q", documents=["d"] * 201)
    out = render(RerankResponse(results=[]), req, id="g", model="r")
    assert out["meta"]["billed_units"]["search_units"] == 3
