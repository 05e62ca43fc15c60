"""Language model."""

from appliance.llm.base import ChatChunk, ChatContext, ChatMessage, LLMMetrics

__all__ = ["ChatChunk", "ChatContext", "ChatMessage", "LLMMetrics"]
