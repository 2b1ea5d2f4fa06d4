"""Code that calls a model through this server, as printed on the pages: it runs as shown once the
key is in the KEEPROUTER_API_KEY environment variable."""

from __future__ import annotations

from dataclasses import dataclass

from keeprouter.web.pages.common import KEY_ENV


@dataclass(frozen=True, slots=True)
class Sample:
    title: str
    lang: str  # the Markdown fence's info string
    code: str


def curl(base: str, model: str) -> Sample:
    return Sample(
        "cURL",
        "sh",
        f"""curl {base}/v1/chat/completions \\
  -H "Authorization: Bearer ${KEY_ENV}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'""",
    )


def openai_python(base: str, model: str) -> Sample:
    return Sample(
        "Python (OpenAI SDK)",
        "python",
        f"""import os

from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key=os.environ["{KEY_ENV}"])
completion = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(completion.choices[0].message.content)""",
    )


def openai_js(base: str, model: str) -> Sample:
    return Sample(
        "JavaScript (OpenAI SDK)",
        "js",
        f"""import OpenAI from "openai";

const client = new OpenAI({{ baseURL: "{base}/v1", apiKey: process.env.{KEY_ENV} }});
const completion = await client.chat.completions.create({{
  model: "{model}",
  messages: [{{ role: "user", content: "Hello!" }}],
}});
console.log(completion.choices[0].message.content);""",
    )


def anthropic_python(base: str, model: str) -> Sample:
    return Sample(
        "Python (Anthropic SDK)",
        "python",
        f"""import os

from anthropic import Anthropic

client = Anthropic(base_url="{base}", api_key=os.environ["{KEY_ENV}"])
message = client.messages.create(
    model="{model}",
    max_tokens=1024,
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(message.content[0].text)""",
    )


def claude_code(base: str, model: str) -> Sample:
    return Sample(
        "Claude Code",
        "sh",
        f"""export ANTHROPIC_BASE_URL={base}
export ANTHROPIC_AUTH_TOKEN=${KEY_ENV}
export ANTHROPIC_MODEL={model}
export ANTHROPIC_DEFAULT_HAIKU_MODEL={model}
claude""",
    )


def all_samples(base: str, model: str) -> tuple[Sample, ...]:
    return (curl(base, model), openai_python(base, model), openai_js(base, model),
            anthropic_python(base, model), claude_code(base, model))  # fmt: skip


# Retrieval models answer on their own endpoints, never on chat's: their samples are their own.
TEXTS = ("The cat sat on the mat.", "A dog chased the ball.", "Stocks fell on Monday.")
QUERY = "Which animal sat on the mat?"


def embeddings_samples(base: str, model: str) -> tuple[Sample, ...]:
    texts = ", ".join(f'"{t}"' for t in TEXTS[:2])
    return (
        Sample(
            "cURL",
            "sh",
            f"""curl {base}/v1/embeddings \\
  -H "Authorization: Bearer ${KEY_ENV}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "input": [{texts}]}}'""",
        ),
        Sample(
            "Python (OpenAI SDK)",
            "python",
            f"""import os

from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key=os.environ["{KEY_ENV}"])
result = client.embeddings.create(
    model="{model}",
    input=[{texts}],
)
print(len(result.data), "vectors of", len(result.data[0].embedding), "dimensions")""",
        ),
        Sample(
            "JavaScript (OpenAI SDK)",
            "js",
            f"""import OpenAI from "openai";

const client = new OpenAI({{ baseURL: "{base}/v1", apiKey: process.env.{KEY_ENV} }});
const result = await client.embeddings.create({{
  model: "{model}",
  input: [{texts}],
}});
console.log(result.data.length, "vectors of", result.data[0].embedding.length, "dimensions");""",
        ),
    )


def rerank_samples(base: str, model: str) -> tuple[Sample, ...]:
    docs = ", ".join(f'"{t}"' for t in TEXTS)
    return (
        Sample(
            "cURL",
            "sh",
            f"""curl {base}/v1/rerank \\
  -H "Authorization: Bearer ${KEY_ENV}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "query": "{QUERY}", "documents": [{docs}], "top_n": 2}}'""",
        ),
        Sample(
            "Python (Cohere SDK)",
            "python",
            f"""import os

import cohere

with cohere.ClientV2(base_url="{base}", api_key=os.environ["{KEY_ENV}"]) as client:
    result = client.rerank(
        model="{model}",
        query="{QUERY}",
        documents=[{docs}],
        top_n=2,
    )
for r in result.results:
    print(r.index, round(r.relevance_score, 3))""",
        ),
    )


def samples_for(base: str, model: str, modality: str) -> tuple[Sample, ...]:
    """The samples that call a model of `modality` (config.MODALITIES) on the endpoint serving it."""
    if modality == "text->embedding":
        return embeddings_samples(base, model)
    if modality == "text->rerank":
        return rerank_samples(base, model)
    return all_samples(base, model)
