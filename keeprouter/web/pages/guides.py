"""The home page, the quickstart and the use-case guides, with this server's own base URL and a
model that is callable here (when there is one); and `/llms.txt`, the index of every Markdown page.

Text may hold `code` in backticks: the HTML form renders it as <code>, the Markdown form keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from keeprouter.billing.headline import headline
from keeprouter.config import Config, ModelConfig
from keeprouter.web import format as f
from keeprouter.web.charts import Table
from keeprouter.web.pages import samples
from keeprouter.web.pages.common import KEY_ENV, Link, Site, link, prices_as_of
from keeprouter.web.pages.models import newest_first

SEED_MODEL = "ministral-14b-latest"  # the example when no model is callable here


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    anchor: str
    paragraphs: tuple[str, ...] = ()
    samples: tuple[samples.Sample, ...] = ()
    table: Table | None = None
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class Guide:
    site: Site
    path: str
    title: str
    intro: tuple[str, ...]
    sections: tuple[Section, ...]


GUIDES = (
    ("/docs/quickstart", "Quickstart"),
    ("/use-cases/openai-sdk", "Use the OpenAI SDK"),
    ("/use-cases/anthropic-sdk", "Use the Anthropic SDK"),
    ("/use-cases/claude-code", "Use Claude Code"),
)


def example_model(config: Config) -> ModelConfig | None:
    """A model to show in samples: the seed model when callable here, else the cheapest callable
    one, else the seed model as listed (the page then says which variable enables it)."""
    # chat models only: the guides' samples call /v1/chat/completions, which refuses an embedding model
    live = [m for m in config.models.values() if m.endpoints and m.modality == "text->text"]
    seed = config.models.get(SEED_MODEL)
    if seed is not None and seed.endpoints:
        return seed
    if live:
        return min(live, key=lambda m: (_price(m), m.id))
    return seed or next(iter(config.models.values()), None)


def _example(config: Config) -> tuple[ModelConfig | None, str]:
    """The sample model and the id the samples print (the seed id when the catalogue is empty)."""
    model = example_model(config)
    return model, model.id if model else SEED_MODEL


def _price(m: ModelConfig) -> Decimal:
    ep = headline(m)
    return ep.pricing.input + ep.pricing.output if ep else Decimal(0)


def _enable_hint(config: Config) -> str:
    # single keys first: "X and Y" / "X or Y" (the clouds) are the longer story
    envs = sorted(
        {i.enable_env for i in config.provider_info.values() if i.enable_env and not i.configured},
        key=lambda e: (" " in e, e),
    )
    listed = ", ".join(f"`{e}`" for e in envs[:6]) + (", ..." if len(envs) > 6 else "")
    return (
        "No provider is configured on this server yet, so no model can answer. Set a provider's key "
        f"in the environment ({listed}) or add a `providers:` section to the config file, then restart."
    )


def _model_note(config: Config, model: ModelConfig | None) -> tuple[str, ...]:
    if model is None:
        return ("The catalogue is empty: add models to the config file.",)
    if model.endpoints:
        return (f"The samples call `{model.id}` ({model.name}), which this server can serve now.",)
    return (f"The samples call `{model.id}` ({model.name}). {_enable_hint(config)}",)


def home(config: Config, site: Site) -> Guide:
    model, mid = _example(config)
    total = sum(1 for m in config.models.values() if m.endpoints or m.unconfigured)
    available = sum(1 for m in config.models.values() if m.endpoints)
    newest = newest_first(config, 8)
    rows = []
    for m in newest:
        ep = headline(m)
        if ep is not None:
            output = f.price(ep.pricing.output) if m.modality == "text->text" else f.DASH  # none billed
            rows.append((link(site, m.name, f"/models/{m.id}"), m.maker, f.price(ep.pricing.input), output))
    status = (
        f"This server can serve {available} of the {total} models in its catalogue."
        if available
        else _enable_hint(config)
    )
    return Guide(
        site,
        "/",
        f"{site.name}: one API for {total} models, billed at cost",
        (
            f"{site.name} is a self-hosted LLM router: one endpoint and one API key for many models and "
            "providers, with no markup on any price. Every model answers on the OpenAI API and on the "
            "Anthropic API, streaming and tool calls included, whichever API its provider speaks.",
            status,
        ),
        (
            Section(
                "Quickstart",
                "quickstart",
                (
                    f"OpenAI SDKs: base URL `{site.base_url}/v1`. Anthropic SDKs and Claude Code: base URL "
                    f"`{site.base_url}`. Put your key in `{KEY_ENV}`.",
                    *_model_note(config, model),
                ),
                (samples.openai_python(site.base_url, mid), samples.curl(site.base_url, mid)),
                links=(link(site, "Full quickstart", "/docs/quickstart"),),
            ),
            Section(
                "Newest models",
                "models",
                table=Table(("Model", "Maker", "Input per 1M", "Output per 1M"), tuple(rows)),
                links=(link(site, f"All {total} models", "/models"),),
            ),
            Section(
                "Explore",
                "explore",
                links=(
                    link(site, "Models", "/models", "every model with its prices, context and providers"),
                    link(site, "Providers", "/providers", "the upstreams this server knows"),
                    link(site, "Rankings", "/rankings", "models and apps by tokens"),
                    *(link(site, title, path) for path, title in GUIDES),
                ),
            ),
        ),
    )


def quickstart(config: Config, site: Site) -> Guide:
    model, mid = _example(config)
    base = site.base_url
    return Guide(
        site,
        "/docs/quickstart",
        "Quickstart",
        (f"Call any model in the catalogue through {site.name} in three steps.",),
        (
            Section(
                "1. Get an API key",
                "api-key",
                (
                    "Signed in to the console with your organisation's account, make your own under "
                    "Get an API key (`/console/me`), within your budget and your team's. Otherwise the "
                    "operator of this server creates keys with the admin key, each with an optional "
                    "credit limit in USD. From the command line on the server:",
                ),
                (
                    samples.Sample("Command line", "sh", 'keeprouter keys create --name "my app" --limit 10'),
                    samples.Sample(
                        "Keys API",
                        "sh",
                        f'curl {base}/api/v1/keys \\\n  -H "Authorization: Bearer $KEEPROUTER_ADMIN_KEY" \\\n'
                        '  -H "Content-Type: application/json" \\\n  -d \'{"name": "my app", "limit": 10}\'',
                    ),
                ),
            ),
            Section(
                "2. Put the key in the environment",
                "environment",
                (f"The samples read the key from `{KEY_ENV}`; no key ever goes in a URL.",),
                (samples.Sample("Shell", "sh", f"export {KEY_ENV}=sk-kr-..."),),
            ),
            Section(
                "3. Call a model",
                "call",
                _model_note(config, model),
                samples.all_samples(base, mid),
            ),
            Section(
                "Check your credit",
                "credit",
                ("`GET /api/v1/key` with your key shows its usage, limit and what remains.",),
                (samples.Sample("cURL", "sh", f'curl {base}/api/v1/key -H "Authorization: Bearer ${KEY_ENV}"'),),
            ),
        ),
    )


def openai_sdk(config: Config, site: Site) -> Guide:
    model, mid = _example(config)
    return Guide(
        site,
        "/use-cases/openai-sdk",
        "Use the OpenAI SDK",
        (
            f"Point the OpenAI SDK at `{site.base_url}/v1` and use any model id from the catalogue: "
            "streaming, tools, `tool_choice` and `stream_options.include_usage` work for every model, "
            "whichever API its provider speaks.",
            *_model_note(config, model),
        ),
        (
            Section("Python", "python", (), (samples.openai_python(site.base_url, mid),)),
            Section("JavaScript", "javascript", (), (samples.openai_js(site.base_url, mid),)),
            Section(
                "Routing preferences",
                "routing",
                (
                    "Send OpenRouter's `provider` object (order, only, ignore, sort, max_price, ...) or a "
                    "`models` fallback list in the request body (`extra_body` in Python); the response's "
                    "`provider` field names the provider that answered.",
                ),
            ),
        ),
    )


def anthropic_sdk(config: Config, site: Site) -> Guide:
    model, mid = _example(config)
    return Guide(
        site,
        "/use-cases/anthropic-sdk",
        "Use the Anthropic SDK",
        (
            f"Point the Anthropic SDK at `{site.base_url}` (no `/v1`: the SDK adds it). Every model in "
            "the catalogue answers on the Messages API, `count_tokens` included.",
            *_model_note(config, model),
        ),
        (Section("Python", "python", (), (samples.anthropic_python(site.base_url, mid),)),),
    )


def claude_code_guide(config: Config, site: Site) -> Guide:
    model, mid = _example(config)
    return Guide(
        site,
        "/use-cases/claude-code",
        "Use Claude Code",
        (
            f"Claude Code runs on any model of {site.name}: set its base URL and token, and name the model.",
            *_model_note(config, model),
        ),
        (
            Section("Environment", "environment", (), (samples.claude_code(site.base_url, mid),)),
            Section(
                "Notes",
                "notes",
                (
                    "`ANTHROPIC_AUTH_TOKEN` is sent as a Bearer token; `ANTHROPIC_API_KEY` (sent as `x-api-key`) "
                    "works too.",
                    "A prompt longer than the model's context is refused with the error Claude Code acts on.",
                ),
            ),
        ),
    )


GUIDE_PAGES = {
    "/docs/quickstart": quickstart,
    "/use-cases/openai-sdk": openai_sdk,
    "/use-cases/anthropic-sdk": anthropic_sdk,
    "/use-cases/claude-code": claude_code_guide,
}


def llms_txt(config: Config, site: Site) -> str:
    """The llmstxt.org index: a title, a summary, then sections of links to every Markdown page."""
    models = [m for m in config.models.values() if m.endpoints or m.unconfigured]
    lines = [
        f"# {site.name}",
        "",
        f"> A self-hosted LLM router: {len(models)} models on one OpenAI-compatible ({site.base_url}/v1) and "
        f"Anthropic-compatible ({site.base_url}) API, billed at cost. Prices as of "
        f"{prices_as_of(models, site.today)}.",
        "",
        "## Pages",
        "",
        f"- [Home]({site.md('/')}): what this server is, with its quickstart",
        f"- [Models]({site.md('/models')}): every model with prices, context and availability",
        f"- [Providers]({site.md('/providers')}): the upstream providers and their status",
        f"- [Rankings]({site.md('/rankings')}): models and apps by tokens",
        "",
        "## Guides",
        "",
        *(f"- [{title}]({site.md(path)})" for path, title in GUIDES),
        "",
        "## Models",
        "",
    ]
    for m in models:
        ep = headline(m)
        price = f"{f.price(ep.pricing.input)} in / {f.price(ep.pricing.output)} out per 1M tokens" if ep else ""
        lines.append(f"- [{m.name}]({site.md('/models/' + m.id)}): {m.maker}, {price}")
    lines += ["", "## Providers", ""]
    for i in sorted(config.provider_info.values(), key=lambda i: i.name.lower()):
        lines.append(f"- [{i.name}]({site.md('/providers/' + i.id)})")
    lines += [
        "",
        "## Optional",
        "",
        f"- [Models as JSON]({site.base_url}/api/v1/models): OpenRouter's model list shape",
        "",
    ]
    return "\n".join(lines)
