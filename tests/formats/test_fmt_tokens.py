from __future__ import annotations

import pytest
import tiktoken

from keeprouter.formats.canonical import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from keeprouter.formats.tokens import (
    IMAGE_TOKENS,
    TOOLS_PREAMBLE,
    Encodings,
    VocabularyError,
    count_output,
    count_request,
    count_text,
    encoding_for,
    encoding_from,
    exact_counter,
)


@pytest.mark.parametrize(
    "text,lo,hi",
    [
        # (cl100k count in the comment) — the estimate stays within ~25 %
        ("", 0, 0),
        ("Hello world, how are you today?", 7, 9),  # 8
        ("The quick brown fox jumps over the lazy dog.", 9, 11),  # 10
        ('{"city": "Paris", "units": "metric"}', 10, 14),  # 12
        ("def foo(bar_baz):\n    return bar_baz * 2\n", 11, 16),  # 13
        ("你好世界", 3, 6),  # 5
        ("1234567890", 3, 5),  # 4
    ],
)
def test_count_text_is_close_to_cl100k(text: str, lo: int, hi: int) -> None:
    assert lo <= count_text(text) <= hi


def test_count_text_long_words_and_other_scripts_cost_more() -> None:
    assert count_text("antidisestablishmentarianism") > count_text("anti")
    assert count_text("Привет") > 1
    assert count_text("a" * 400) >= 90


def test_count_text_is_deterministic_and_additive_enough() -> None:
    t = "Tokens are counted offline. " * 20
    assert count_text(t) == count_text(t)
    unit = count_text("Tokens are counted offline.")  # the separating space joins the next word
    assert 20 * unit <= count_text(t) <= 20 * unit + 1
    assert count_output(t) == count_text(t)


def test_large_texts_use_a_length_ratio_close_to_the_regex_estimate() -> None:
    from keeprouter.formats.tokens import LARGE_TEXT

    unit = "def handler(request):\n    return json_response({'status': 'ok', 'items': items})\n"
    t = unit * (LARGE_TEXT // len(unit) + 50)
    regex_estimate = count_text(unit) * (LARGE_TEXT // len(unit) + 50)
    assert 0.7 * regex_estimate <= count_text(t) <= 1.4 * regex_estimate
    assert count_text("汉字" * 1000) >= 1500  # non-ASCII runs near a token per character


def test_a_few_non_ascii_characters_do_not_inflate_a_large_english_text(encodings: Encodings) -> None:
    """Claude Code's prompts: English with the odd em dash. One such character once priced the whole
    block at 1.2 characters a token (x3.3), refusing an 11k-token request on a 32k model."""
    from keeprouter.formats.tokens import quick_text

    prose = "Use the Bash tool to run commands — never guess paths; read files before editing them. " * 40
    exact = len(encodings.get("o200k_base").encode_ordinary(prose))
    assert 0.8 * exact <= quick_text(prose) <= 1.5 * exact
    assert count_text(prose) == quick_text(prose)  # above LARGE_TEXT
    assert quick_text(prose.replace("—", "-")) <= quick_text(prose) <= quick_text(prose.replace("—", "-")) + 40
    assert quick_text("汉字" * 1000) >= 1500  # text that is all non-ASCII still counts near a token a character


def test_count_request_counts_every_block_type() -> None:  # decolua/9router#2337
    base = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="hi")])])
    n0 = count_request(base)
    assert n0 == 3 + 4 + count_text("hi")

    def with_part(part: object) -> int:
        req = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="hi"), part])])  # type: ignore[list-item]
        return count_request(req) - n0

    assert with_part(ToolCallPart(id="t", name="get_weather", arguments='{"city":"Paris"}')) >= 10
    assert with_part(ToolResultPart(tool_call_id="t", content=[TextPart(text="18 degrees and sunny")])) >= 12
    assert with_part(ToolResultPart(tool_call_id="t", content=[ImagePart(url="u")])) >= IMAGE_TOKENS
    assert with_part(ThinkingPart(text="Let me think about this carefully")) >= 6
    assert with_part(ThinkingPart(redacted="x" * 400)) == 100
    assert with_part(ImagePart(url="u")) == IMAGE_TOKENS
    sys_req = ChatRequest(model="m", messages=base.messages, system=[TextPart(text="You are a helpful assistant.")])
    assert count_request(sys_req) - n0 == count_text("You are a helpful assistant.")
    tool = Tool(
        name="get_weather",
        description="Get the weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    tools_req = ChatRequest(model="m", messages=base.messages, tools=[tool])
    assert count_request(tools_req) - n0 >= TOOLS_PREAMBLE + 20


def test_request_path_estimate_is_close_to_the_counted_one() -> None:
    from keeprouter.formats.tokens import count_request, estimate_request

    text = "We run an internal LLM gateway between forty services and three providers. " * 10
    req = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text=text)])])
    counted, quick = count_request(req), estimate_request(req)
    assert counted <= quick <= 1.5 * counted  # errs high on prose (~5.4 chars a token), never low


# ---- exact counts with the shipped tiktoken vocabularies --------------------------------------

CODE = "def fetch(url: str) -> bytes:\n\treturn urllib.request.urlopen(url).read()\n"


@pytest.fixture(scope="module")
def encodings() -> Encodings:
    return Encodings()


def test_the_shipped_vocabularies_give_tiktokens_known_answers(encodings: Encodings) -> None:
    o200k, cl100k = encodings.get("o200k_base"), encodings.get("cl100k_base")
    assert o200k.encode_ordinary("hello world") == [24912, 2375]
    assert cl100k.encode_ordinary("hello world") == [15339, 1917]
    assert o200k.encode_ordinary("Привет, как дела?") == [23881, 131903, 11, 6220, 78857, 30]
    assert cl100k.encode_ordinary("你好，世界！") == [57668, 53901, 3922, 3574, 244, 98220, 6447]
    assert isinstance(o200k, tiktoken.Encoding) and isinstance(cl100k, tiktoken.Encoding)
    assert o200k.n_vocab == 200019 and cl100k.n_vocab == 100277
    assert encodings.get("o200k_base") is o200k  # loaded once


def test_a_vocabulary_without_the_published_sha256_is_refused() -> None:
    with pytest.raises(VocabularyError, match="published"):
        encoding_from("cl100k_base", b"aGVsbG8= 0\n")


def test_models_map_to_encodings_by_tiktokens_table() -> None:
    assert encoding_for("gpt-4o-mini") == "o200k_base"
    assert encoding_for("gpt-5") == "o200k_base"
    assert encoding_for("o3-mini") == "o200k_base"
    assert encoding_for("gpt-4") == "cl100k_base"
    assert encoding_for("gpt-3.5-turbo") == "cl100k_base"
    assert encoding_for("mistral-large-latest") == "tekken"  # Mistral's own (test_fmt_tekken.py)
    assert encoding_for("claude-sonnet-4-5") is None


def test_exact_counts_replace_the_estimate_block_by_block(encodings: Encodings) -> None:
    count = exact_counter(encodings.get("o200k_base"))
    assert count("") == 0
    assert count(CODE) == 17 != count_text(CODE)  # the estimate says 23
    r = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text=CODE)])])
    assert count_request(r, count) == 3 + 4 + 17  # per request + per message + the text
