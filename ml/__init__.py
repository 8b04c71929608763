"""Model training and evaluation: datasets, features, training entry points and versioned
artifacts. Imports nothing of ours but ``storage``."""

__all__: list[str] = []
