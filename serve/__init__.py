"""Ray Serve deployments for the models (recommendations, pricing, fraud, search, chat), each
with a timeout and a rule-based fallback. Imports ``ml`` artifacts and ``storage``; never
``gateway`` or ``actors``."""

__all__: list[str] = []
