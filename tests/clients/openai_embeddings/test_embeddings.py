"""OpenAI `/v1/embeddings` client side: every `input` form, validation naming the field, rendering."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from keeprouter.clients.openai_chat.response import render_error
from keeprouter.clients.openai_embeddings.request import MAX_INPUTS, parse_request
from keeprouter.clients.openai_embeddings.response import render
from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import EmbeddingResponse, decode_base64


@pytest.mark.parametrize(
    ("value", "inputs"),
    [
        ("hello", ["hello"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1, 2], [3]], [[1, 2], [3]]),
        ([0], [[0]]),
    ],
)
def test_input_takes_openais_four_forms(value: Any, inputs: list[Any]) -> None:
    assert parse_request({"model": "m", "input": value}).inputs == inputs


def test_modelled_fields_and_extras() -> None:
    req = parse_request(
        {
            "model": "e",
            "input": "x",
            "dimensions": 256,
            "encoding_format": "base64",
            "user": "u1",
            "input_type": "query",
            "provider": {"order": ["p"]},
        }
    )
    assert (req.model, req.dimensions, req.encoding_format, req.user) == ("e", 256, "base64", "u1")
    assert req.extra == {"input_type": "query"}  # router fields stay ours


def test_encoding_format_defaults_to_float() -> None:
    assert parse_request({"model": "e", "input": "x"}).encoding_format == "float"
    assert parse_request({"model": "e", "input": "x", "encoding_format": None}).encoding_format == "float"


def test_openrouter_models_list_stands_in_for_model() -> None:
    assert parse_request({"models": ["a", "b"], "input": "x"}).model == "a"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "", "input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": None}, "input"),
        ({"model": "m", "input": ["a", ""]}, "input[1]"),
        ({"model": "m", "input": ["a", [1]]}, "input[1]"),
        ({"model": "m", "input": [[1], "a"]}, "input[1]"),
        ({"model": "m", "input": [[1], []]}, "input[1]"),
        ({"model": "m", "input": [[1], [-1]]}, "input[1][0]"),
        ({"model": "m", "input": [[1], [True]]}, "input[1][0]"),
        ({"model": "m", "input": [{"text": "a"}]}, "input[0]"),
        ({"model": "m", "input": [1, -2]}, "input[1]"),
        ({"model": "m", "input": ["a"] * (MAX_INPUTS + 1)}, "input"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "x", "dimensions": True}, "dimensions"),
        ({"model": "m", "input": "x", "dimensions": "8"}, "dimensions"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "m", "input": "x", "user": 3}, "user"),
    ],
)
def test_invalid_bodies_name_the_field_in_openais_error_shape(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    err = render_error(caught.value)["error"]
    assert err["param"] == param
    assert f"`{param}`" in err["message"]
    assert err["type"] == "invalid_request_error"
    assert err["code"] == 400


def test_render_float() -> None:
    resp = EmbeddingResponse(vectors=[[0.5, 1.0], [-0.25, 0.0]], usage=Usage(input_tokens=7))
    out = render(
        resp,
        model="text-embedding-3-small",
        encoding_format="float",
        id="gen-1",
        provider="p",
        cost=Decimal("0.00000014"),
    )
    assert out == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, 1.0]},
            {"object": "embedding", "index": 1, "embedding": [-0.25, 0.0]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 7, "total_tokens": 7, "cost": 1.4e-07},
        "id": "gen-1",
        "provider": "p",
    }


def test_render_base64_decodes_to_the_same_vectors() -> None:
    resp = EmbeddingResponse(vectors=[[0.5, 1.0, -3.5]], usage=Usage(input_tokens=1))
    out = render(resp, model="m", encoding_format="base64")
    emb = out["data"][0]["embedding"]
    assert isinstance(emb, str)
    assert decode_base64(emb) == [0.5, 1.0, -3.5]
    import base64

    assert np.frombuffer(base64.b64decode(emb), dtype="float32").tolist() == [0.5, 1.0, -3.5]
    assert "id" not in out and "provider" not in out and "cost" not in out["usage"]
