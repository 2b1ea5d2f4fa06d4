"""The `azure` provider kind: Azure OpenAI's deployments API and its versionless v1 API."""

from .adapter import AzureAdapter

__all__ = ["AzureAdapter"]
