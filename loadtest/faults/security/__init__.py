"""The security checks of a fault run: requests an attacker, a careless client or a forged
notification would send, each of which the gateway must refuse with the right 4xx and its
machine-readable code, with nothing changed.

    victim = await make_victim(plan)        # A holds, pays and books; keeps one more hold
    results = await run_security_checks(plan, victim)
    assert all(r.passed for r in results), run.describe_failures(results)

The groups: no token, an expired or forged token (``auth``); customer B on A's hold, booking
and payment (``ownership``); a theater's admin on another theater's show, a customer or a
theater admin on an admin or ops endpoint (``admin``: each refusal must also be in the audit
log); unsigned, mis-signed, stale and re-bodied payment webhooks (``webhook``); oversized,
malformed and mistyped requests (``input``).

What "refused" means is what the gateway answers: 401 ``unauthorized`` without a token,
``token_expired`` / ``invalid_token`` for a bad one; someone else's booking or payment is
404 ``not_found`` (ids are not probed), someone else's hold 403 ``hold_not_yours``; 403
``forbidden`` for a role or theater that may not; 400 ``invalid_webhook``; 413
``body_too_large``; 422 ``validation_failed`` for a body, path or query that does not parse
(malformed JSON included); 415, 428 and 400 for the wrong content type, a missing or a
malformed ``Idempotency-Key``.

The modules: ``victim`` (A's booking and hold), ``catalog`` (the checks), ``forgery`` (the
tokens and signatures they forge), ``probe`` (sending one and judging its answer),
``fingerprint`` (what "nothing changed" compares), ``run`` (all of them in turn, and the
failures in words).
"""

from __future__ import annotations

from loadtest.faults.security.run import run_security_checks
from loadtest.faults.security.victim import make_victim

__all__ = ["make_victim", "run_security_checks"]
