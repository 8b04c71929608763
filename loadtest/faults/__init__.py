"""Proof under faults: a mixed load of customers, seat-map watchers and waiting-room visitors
on a stack of its own while seeded faults hit it (show hosts and gateways killed, webhook
deliveries lost, Postgres and Redis restarted), then a history checker over everything the
clients saw and the final state of Postgres, the show actors and the payment provider.

    python -m loadtest.faults --seed 7 --seconds 300     # the long form, with its report
    tests/faults/                                        # the short form, in the test command
"""
