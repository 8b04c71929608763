"""The composition root: settings, the ``seatserver`` command and the wiring that starts storage,
Ray and the gateway. It is the only package that reads the environment; everything below it gets
plain values."""

__all__: list[str] = []
