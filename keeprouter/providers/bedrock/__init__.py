"""AWS Bedrock Runtime upstreams (Converse / ConverseStream, SigV4 or a Bedrock API key)."""

from .adapter import BedrockAdapter

__all__ = ["BedrockAdapter"]
