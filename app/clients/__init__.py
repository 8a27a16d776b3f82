"""Clients of outside services: the Anthropic Messages API (resilient), the sentence-embedding model."""
