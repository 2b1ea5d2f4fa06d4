"""The Gemini API's request validation, as the emulators (Gemini, Vertex's Gemini models) apply it:
the 400s the real service gives for the mistakes a translator could make."""

from __future__ import annotations

from typing import Any

TOP_FIELDS = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
)
CONFIG_FIELDS = frozenset(
    {"maxOutputTokens", "temperature", "topP", "topK", "stopSequences", "seed", "candidateCount",
     "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig", "presencePenalty",
     "frequencyPenalty", "responseLogprobs", "logprobs", "responseModalities", "mediaResolution"}
)  # fmt: skip
# Proto3 JSON parsers take a field's original proto name as well as its lowerCamelCase one
# (protobuf.dev, "JSON Mapping"); google-genai sends thinkingConfig's in snake_case.
THINKING_FIELDS = frozenset(
    {"thinkingBudget", "thinkingLevel", "includeThoughts", "thinking_budget", "thinking_level", "include_thoughts"}
)
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult")  # fmt: skip
PART_FIELDS = frozenset({*PART_DATA, "thought", "thoughtSignature", "videoMetadata", "partMetadata"})


# Gemini 2.5's thinkingBudget ranges (ai.google.dev/gemini-api/docs/thinking, "Set budget"): (least,
# most, whether 0 turns thinking off); -1 (dynamic) is always accepted.
BUDGET_RANGES = (
    ("gemini-2.5-pro", (128, 32768, False)),
    ("gemini-2.5-flash-lite", (512, 24576, True)),
    ("gemini-2.5-flash", (1, 24576, True)),
)


THINKING_LEVELS = ("minimal", "low", "medium", "high", "thinking_level_unspecified")


def thinking_problem(body: dict[str, Any], model: str) -> str | None:
    """The 400s for a thinkingConfig the model cannot take: a level before Gemini 3, a 2.5 budget out
    of its model's range, thinking turned off on 2.5 Pro."""
    tc = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    level = tc.get("thinkingLevel", tc.get("thinking_level"))
    if level is not None and "gemini-3" not in model:
        return "Thinking level is not supported for this model."
    if isinstance(level, str) and level.lower() not in THINKING_LEVELS:
        return f"Invalid value at 'generation_config.thinking_config.thinking_level' ({level})"
    if isinstance(level, str) and "gemini-3-pro" in model and level.lower() not in ("low", "high"):
        return (
            f"Thinking level {level.upper()} is not supported for this model. Please retry with other thinking level."
        )
    budget = tc.get("thinkingBudget", tc.get("thinking_budget"))
    if not isinstance(budget, int) or budget == -1:
        return None
    for name, (low, high, can_stop) in BUDGET_RANGES:
        if name in model:
            if budget == 0 and not can_stop:
                return "Budget 0 is invalid. This model only works in thinking mode."
            if not (low <= budget <= high or (budget == 0 and can_stop)):
                return f"The thinking budget {budget} is invalid. Please choose a value between {low} and {high}."
            return None
    return None


def invalid(body: dict[str, Any]) -> str | None:
    """The 400s the real API gives for the mistakes a translator could make."""
    for k in body:
        if k not in TOP_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.'
    gc = body.get("generationConfig") or {}
    for k in gc:
        if k not in CONFIG_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{k}\" at 'generation_config': Cannot find field."
    tc = gc.get("thinkingConfig") or {}
    for k in tc:
        if k not in THINKING_FIELDS:
            return f"Invalid JSON payload received. Unknown name \"{k}\" at 'generation_config.thinking_config'."
    if {"thinkingLevel", "thinking_level"} & tc.keys() and {"thinkingBudget", "thinking_budget"} & tc.keys():
        return "You can only set one of thinking budget and thinking level."
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, c in enumerate(contents):
        if not isinstance(c, dict) or c.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}])"
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        for j, p in enumerate(parts):
            where = f"contents[{i}].parts[{j}]"
            unknown = [k for k in p if k not in PART_FIELDS] if isinstance(p, dict) else ["?"]
            if unknown:
                return f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{where}'."
            data = [k for k in PART_DATA if k in p]
            if len(data) != 1:
                return (
                    f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
                    "initialized field"
                )
            fr = p.get("functionResponse")
            if fr is not None and (not fr.get("name") or not isinstance(fr.get("response"), dict)):
                return f"* GenerateContentRequest.{where}.function_response.name: Name cannot be empty."
            for key, proto in (("functionCall", "function_call"), ("functionResponse", "function_response")):
                if isinstance(p.get(key), dict) and "id" in p[key]:
                    return (
                        f"Invalid JSON payload received. Unknown name \"id\" at '{where}.{proto}': Cannot find field."
                    )
    for t in body.get("tools") or []:
        for d in t.get("functionDeclarations") or []:
            if "parameters" in d and "parametersJsonSchema" in d:
                return "parameters and parameters_json_schema cannot both be set."
            if "$schema" in (d.get("parametersJsonSchema") or {}):
                return 'Invalid JSON payload received. Unknown name "$schema".'
            field = _openapi_unknown(d.get("parameters"))
            if field is not None:
                where = "tools[0].function_declarations.parameters"
                return f"Invalid JSON payload received. Unknown name \"{field}\" at '{where}'."
    field = _openapi_unknown(gc.get("responseSchema"))
    if field is not None:
        return f"Invalid JSON payload received. Unknown name \"{field}\" at 'generation_config.response_schema'."
    return None


# The `Schema` object `parameters` and `responseSchema` take: a subset of OpenAPI 3.0, so JSON Schema's
# `additionalProperties`, `$ref`, `$defs`, `$schema`, `const`... are refused (ai.google.dev/api/caching#Schema).
OPENAPI_SCHEMA_FIELDS = frozenset(
    {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
     "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
     "propertyOrdering", "default", "items", "minimum", "maximum"}
)  # fmt: skip


def _openapi_unknown(schema: Any) -> str | None:
    """The first field of a `Schema` (recursively) that the OpenAPI subset does not know."""
    if not isinstance(schema, dict):
        return None
    nested: list[Any] = []
    for k, v in schema.items():
        if k not in OPENAPI_SCHEMA_FIELDS:
            return str(k)
        if k == "properties" and isinstance(v, dict):
            nested += v.values()
        elif k == "anyOf" and isinstance(v, list):
            nested += v
        elif k == "items":
            nested.append(v)
    return next((found for child in nested if (found := _openapi_unknown(child)) is not None), None)
