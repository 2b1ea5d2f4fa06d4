"""OpenAI-compatible upstreams' `/embeddings` and `/rerank`: canonical <-> wire, pure.

Embeddings: POST {base_url}/embeddings, OpenAI's shape, which OpenAI, Mistral, Together, Fireworks,
Ollama, vLLM and TEI all serve. A request with more inputs than the host takes in one call is split
into batches (`embedding_body` a batch), sent concurrently and reassembled in input order
(`providers.retrieval.in_batches`); a host's limit is data (BATCH_LIMITS), or learned from its
refusal (`learn_batch_limit`). `encoding_format` is never sent: floats are every host's default, and
Voyage refuses `"float"` (it takes only `base64` or nothing). Voyage and Mistral name `dimensions`
`output_dimension`, take texts only and refuse fields they do not know (EMBEDDING_DIALECTS).

Rerank: POST {base_url}/rerank. Cohere, Jina, vLLM and Infinity take Cohere's body (`query`,
`documents`, `top_n`, `return_documents`); Voyage names the cut `top_k`; Hugging Face TEI wants
`texts` and answers a bare list. The body's dialect is a host row (RERANK_DIALECTS) or learned from
a TEI refusal; `parse_rerank` reads every answer shape.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import (
    EmbeddingInput,
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
    decode_base64,
    estimate_embedding_tokens,
    estimate_rerank_tokens,
)

DEFAULT_BATCH = 2048  # OpenAI's own limit on the inputs of one request; most hosts take as many
# hostname -> inputs per request, for hosts known to take fewer (Voyage: "max list length 1,000")
BATCH_LIMITS: dict[str, int] = {"api.voyageai.com": 1000}

# hostname -> input tokens a request may carry, summed over its inputs: OpenAI's "maximum of 300,000
# tokens summed across all inputs in a single request" (its embeddings reference). Our count is an
# estimate, so a quarter is kept in hand.
TOKEN_BUDGETS: dict[str, int] = {"api.openai.com": 225_000}

EmbeddingDialect = Literal["openai", "voyage", "mistral"]
EMBEDDING_DIALECTS: dict[str, EmbeddingDialect] = {"api.voyageai.com": "voyage", "api.mistral.ai": "mistral"}
# the dialects whose `input` is texts only, whose size field is `output_dimension`, and which refuse
# OpenAI's `dimensions` and `user` as unknown fields
TEXT_ONLY_DIALECTS: frozenset[EmbeddingDialect] = frozenset({"voyage", "mistral"})

RerankDialect = Literal["cohere", "voyage", "tei", "jina"]
RERANK_DIALECTS: dict[str, RerankDialect] = {"api.voyageai.com": "voyage", "api.jina.ai": "jina"}

# TEI: "batch size 40 > maximum allowed batch size 32"; Azure: "Too many inputs. The max number of
# inputs is 16."; Google's OpenAI-compatible endpoint: "at most 100 requests can be in one batch";
# others: "... at most 16 inputs"
_BATCH_REFUSAL = re.compile(
    r"maximum allowed batch size (\d+)|batch size[^0-9]{0,40}(?:exceeds|over|above|limit of)[^0-9]{0,20}(\d+)"
    r"|at most (\d+) (?:inputs|texts|items|requests)|max(?:imum)? number of inputs is (\d+)",
    re.IGNORECASE,
)
# TEI's /rerank refusing Cohere's body: "missing field `texts`"
_TEI_RERANK = re.compile(r"missing field `?texts`?", re.IGNORECASE)


def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or ""


def batch_limit_for(base_url: str) -> int:
    return BATCH_LIMITS.get(_host(base_url), DEFAULT_BATCH)


def token_budget_for(base_url: str) -> int | None:
    return TOKEN_BUDGETS.get(_host(base_url))


def learn_batch_limit(message: str, current: int) -> int | None:
    """The smaller batch a host's refusal (`message`) names, or None when it names none."""
    m = _BATCH_REFUSAL.search(message)
    if not m:
        return None
    limit = int(next(g for g in m.groups() if g))
    return limit if 0 < limit < current else None


def embedding_dialect_for(base_url: str) -> EmbeddingDialect:
    return EMBEDDING_DIALECTS.get(_host(base_url), "openai")


def embedding_body(
    chunk: list[EmbeddingInput], req: EmbeddingRequest, upstream_model: str, dialect: EmbeddingDialect = "openai"
) -> dict[str, Any]:
    """The upstream body for one batch of `req`'s inputs. No `encoding_format`: its absence means
    floats on every host, whereas `"float"` spelled out is refused by Voyage. The caller's base64 is
    ours to encode (`clients.openai_embeddings.response`)."""
    body: dict[str, Any] = {**req.extra, "model": upstream_model, "input": chunk}
    if req.dimensions is not None:
        body["output_dimension" if dialect in TEXT_ONLY_DIALECTS else "dimensions"] = req.dimensions
    if req.user is not None and dialect not in TEXT_ONLY_DIALECTS:  # an abuse-monitoring id they lack
        body["user"] = req.user
    return body


def embedding_batches(
    req: EmbeddingRequest, upstream_model: str, limit: int, dialect: EmbeddingDialect = "openai"
) -> list[tuple[list[EmbeddingInput], dict[str, Any]]]:
    """The upstream bodies for `req`, each with the inputs it carries, at most `limit` inputs a
    body, in input order (what `providers.retrieval.in_batches` sends)."""
    size = max(1, limit)
    chunks = [req.inputs[start : start + size] for start in range(0, len(req.inputs), size)]
    return [(chunk, embedding_body(chunk, req, upstream_model, dialect)) for chunk in chunks]


def _vector(item: object, i: int) -> tuple[int, list[float]]:
    if not isinstance(item, dict):
        raise UpstreamError(f"embedding {i} is not an object")
    index = item.get("index", i)
    emb = item.get("embedding")
    if isinstance(index, bool) or not isinstance(index, int):
        raise UpstreamError(f"embedding {i} has no integer index")
    if isinstance(emb, str):  # a host that answers base64 although floats were asked for
        try:
            return index, decode_base64(emb)
        except ValueError:
            raise UpstreamError(f"embedding {i} is not valid base64 float32") from None
    if not isinstance(emb, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in emb):
        raise UpstreamError(f"embedding {i} is not an array of numbers")
    return index, [float(x) for x in emb]


def _tokens(usage: object) -> int | None:
    if not isinstance(usage, dict):
        return None
    for key in ("prompt_tokens", "total_tokens", "input_tokens"):
        v = usage.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
    return None


def parse_embeddings(data: object, inputs: list[EmbeddingInput]) -> EmbeddingResponse:
    """One upstream answer for `inputs`, vectors in input order (hosts may answer out of order;
    `index` says whose vector it is). Usage is the host's, else our estimate of `inputs`."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UpstreamError("embeddings answer has no `data` array")
    by_index = dict(_vector(item, i) for i, item in enumerate(data["data"]))
    if sorted(by_index) != list(range(len(inputs))):
        raise UpstreamError(f"embeddings answer has {len(by_index)} vectors for {len(inputs)} inputs")
    tokens = _tokens(data.get("usage"))
    model = data.get("model")
    return EmbeddingResponse(
        vectors=[by_index[i] for i in range(len(inputs))],
        usage=Usage(input_tokens=estimate_embedding_tokens(inputs) if tokens is None else tokens),
        model=model if isinstance(model, str) else None,
    )


# ---- rerank ---------------------------------------------------------------------------------


def rerank_dialect_for(base_url: str) -> RerankDialect:
    return RERANK_DIALECTS.get(_host(base_url), "cohere")


def learn_rerank_dialect(message: str, current: RerankDialect) -> RerankDialect | None:
    """The dialect a host's refusal of our body reveals (TEI wants `texts`), or None."""
    return "tei" if current != "tei" and _TEI_RERANK.search(message) else None


def rerank_body(req: RerankRequest, upstream_model: str, dialect: RerankDialect) -> dict[str, Any]:
    """The upstream body for `req`. Documents are never asked back (the client renderer takes the
    texts from the request), which keeps answers small: Jina returns them unless told not to."""
    if dialect == "tei":  # TEI serves one model per server: no `model`; it ranks every text
        # TEI refuses (413) a text over the model's length unless told to truncate; Cohere's
        # contract, the caller's, is that long documents are truncated
        return {"query": req.query, "texts": req.documents, "truncate": True}
    body: dict[str, Any] = {**req.extra, "model": upstream_model, "query": req.query, "documents": req.documents}
    if req.top_n is not None:
        body["top_k" if dialect == "voyage" else "top_n"] = req.top_n
    if req.max_tokens_per_doc is not None and dialect == "cohere":
        body["max_tokens_per_doc"] = req.max_tokens_per_doc
    if dialect == "jina":  # Jina's `return_documents` defaults to true
        body["return_documents"] = False
    return body


def rerank_parts(req: RerankRequest, size: int) -> list[tuple[int, RerankRequest]]:
    """`req` as requests of at most `size` documents, each with the offset of its first document,
    for a host that ranks fewer a call (TEI's `--max-client-batch-size`, 32 by default). A pair's
    score does not depend on the other documents, so the parts' scores are the whole's; each part
    keeps `top_n` (the best n overall are among the parts' best n)."""
    size = max(1, size)
    return [
        (start, msgspec.structs.replace(req, documents=req.documents[start : start + size]))
        for start in range(0, len(req.documents), size)
    ]


def merge_rerank(parts: list[tuple[int, RerankResponse]]) -> RerankResponse:
    """The parts' answers (with their offsets) as one: indices into the whole request, usage summed,
    search units summed when every part reported them."""
    results = [
        RerankResult(index=offset + r.index, relevance_score=r.relevance_score)
        for offset, resp in parts
        for r in resp.results
    ]
    units = [resp.search_units for _, resp in parts]
    return RerankResponse(
        results=results,
        usage=Usage(input_tokens=sum(resp.usage.input_tokens for _, resp in parts)),
        search_units=None if any(u is None for u in units) else sum(u for u in units if u is not None),
        model=parts[0][1].model if parts else None,
    )


def _result(item: object, n_docs: int) -> RerankResult:
    if not isinstance(item, dict):
        raise UpstreamError("rerank result is not an object")
    index = item.get("index")
    score = item.get("relevance_score", item.get("score"))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_docs:
        raise UpstreamError(f"rerank result has an index outside the {n_docs} documents")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise UpstreamError("rerank result has no numeric score")
    return RerankResult(index=index, relevance_score=float(score))


def parse_rerank(data: object, req: RerankRequest) -> RerankResponse:
    """A rerank answer in any of the hosts' shapes: `results` (Cohere, Jina, vLLM, Infinity),
    `data` (Voyage) or a bare list (TEI, with `score`). Usage is the host's token count, else our
    estimate; Cohere's search units are kept when reported."""
    meta: object = None
    usage: object = None
    model: object = None
    if isinstance(data, list):
        items: object = data
    elif isinstance(data, dict):
        items = data.get("results", data.get("data"))
        meta, usage, model = data.get("meta"), data.get("usage"), data.get("model")
    else:
        items = None
    if not isinstance(items, list):
        raise UpstreamError("rerank answer has no results")
    results = [_result(item, len(req.documents)) for item in items]
    if len({r.index for r in results}) != len(results):
        raise UpstreamError("rerank answer names a document twice")
    units: int | None = None
    tokens = _tokens(usage)
    if isinstance(meta, dict):
        billed = meta.get("billed_units")
        found = billed.get("search_units") if isinstance(billed, dict) else None
        # Cohere's schema types billed units as numbers: 1 and 1.0 are the same unit
        if isinstance(found, int | float) and not isinstance(found, bool) and found >= 0 and found == int(found):
            units = int(found)
        if tokens is None:
            tokens = _tokens(meta.get("tokens"))
        if tokens is None:  # a count of 0 is a count, not a missing one
            tokens = _tokens(billed)
    return RerankResponse(
        results=results,
        usage=Usage(input_tokens=estimate_rerank_tokens(req) if tokens is None else tokens),
        search_units=units,
        model=model if isinstance(model, str) else None,
    )
