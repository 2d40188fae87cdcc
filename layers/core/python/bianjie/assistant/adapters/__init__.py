"""Adapters of the assistant to outside systems (the OpenAI-compatible chat API of an on-premises LLM)."""
