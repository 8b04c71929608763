"""The assistant's configuration (``GatewayConfig.assistant``); every field has a default, so
``AssistantConfig()`` is a working assistant without Claude."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.rates import Rate


@dataclass(frozen=True)
class AssistantConfig:
    # The Anthropic API key (None: no Claude, the local assistant answers) and its base URL
    # (None: the SDK's default; tests point it at a loopback replay server).
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    small_model: str = "claude-haiku-4-5"
    large_model: str = "claude-sonnet-4-5"
    # Conversations longer than this many customer turns go to the larger model.
    large_after_turns: int = 12
    # Most model calls in one turn (the tool loop's bound), tokens per answer, and the
    # budget of one API call in seconds (retries included).
    max_steps: int = 8
    max_tokens: int = 1024
    timeout_s: float = 20.0
    # After an API failure, the local assistant answers for this long before Claude is tried.
    retry_after_s: float = 30.0
    # Conversation state: lifetime in Redis (refreshed on each turn), messages kept.
    conversation_ttl_s: int = 1800
    max_messages: int = 40
    # Failed turns in a row before the conversation goes to a person.
    failures_to_escalate: int = 3
    # Chat messages per user and per client address (``gateway.rates.Rate``; None: unlimited).
    rate_user: Rate | None = None
    rate_ip: Rate | None = None

    @property
    def claude_enabled(self) -> bool:
        return bool(self.anthropic_api_key)


@dataclass(frozen=True)
class ChatLimits:
    """What ``gateway.ratelimit.Limiter`` reads for the action ``chat``."""

    chat_user: Rate | None = None
    chat_ip: Rate | None = None


def chat_limits(config: AssistantConfig) -> Any:
    return ChatLimits(config.rate_user, config.rate_ip)


__all__ = ["AssistantConfig", "ChatLimits", "chat_limits"]
