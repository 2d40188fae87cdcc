"""The service bot (云客服, issue 18): knowledge base, understanding, dialogue, human handoff, grounded LLM."""
