"""Attention in transformers (chapter 10): attention maps, head statistics."""

__all__: list[str] = []
