"""Where an Azure OpenAI request goes: pure URL building, no I/O.

Azure serves two APIs on one resource host (`https://{resource}.openai.azure.com`, also
`*.cognitiveservices.azure.com` and AI Foundry's `*.services.ai.azure.com`):

- the deployments API, `/openai/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD`:
  the deployment is in the path and a missing or unknown `api-version` is a 404 / 400;
- the versionless v1 API, `/openai/v1/chat/completions`, with the deployment as the body's `model`
  (`api_version: preview` or `latest` is sent as `?api-version=` there, the form v1 took while
  it was in preview; `v1` itself is sent as no query at all).

Operators paste the resource URL in every form the portal and the SDK docs show (bare, with
`/openai`, with `/openai/v1`, with a trailing slash), so the base is cut back to the resource root
before a path is added: a path part is never doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# `api_version` values that name the v1 API rather than a dated deployments-API version; a client
# library once turned `api_version: v1` into a deployments URL that could only 404.
_V1_VERSIONS = frozenset({"v1", "preview", "latest"})
# The first dated version that takes `max_completion_tokens` (reasoning deployments refuse
# `max_tokens`) and `stream_options` (the usage chunk); older versions refuse both ("Unrecognized
# request argument supplied"), so they get `max_tokens` and no usage chunk.
_SINCE_2024_09 = "2024-09-01"


@dataclass(frozen=True, slots=True)
class AzureUrls:
    """The URLs of one Azure provider. `api_version` None (or a v1 name): the v1 API."""

    root: str  # scheme://host[/proxy-prefix], without /openai...
    query: tuple[tuple[str, str], ...]  # the base URL's own query parameters, kept
    api_version: str | None

    @classmethod
    def parse(cls, base_url: str, api_version: str | None) -> AzureUrls:
        parts = urlsplit(base_url)
        path = parts.path.rstrip("/")
        for suffix in ("/openai/v1", "/openai"):
            if path.lower().endswith(suffix):
                path = path[: -len(suffix)]
                break
        query = tuple((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "api-version")
        root = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        return cls(root, query, api_version or None)

    @property
    def deployments_api(self) -> bool:
        return self.api_version is not None and self.api_version.lower() not in _V1_VERSIONS

    @property
    def takes_max_completion_tokens(self) -> bool:
        return not self.deployments_api or (self.api_version or "")[:10] >= _SINCE_2024_09

    @property
    def takes_stream_options(self) -> bool:
        return self.takes_max_completion_tokens  # both came with 2024-09-01-preview

    def chat(self, deployment: str) -> str:
        return self.operation(deployment, "chat/completions")

    def embeddings(self, deployment: str) -> str:
        return self.operation(deployment, "embeddings")

    def operation(self, deployment: str, op: str) -> str:
        """The URL of `op` (e.g. `chat/completions`) for `deployment` (an endpoint's `model`)."""
        query = list(self.query)
        if self.deployments_api:
            path = f"/openai/deployments/{quote(deployment, safe='')}/{op}"
        else:
            path = f"/openai/v1/{op}"
        if self.api_version is not None and self.api_version.lower() != "v1":
            query.append(("api-version", self.api_version))
        return self.root + path + (f"?{urlencode(query)}" if query else "")
