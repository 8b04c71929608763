"""A seatserver of the fault run's own on loopback, built to be hurt and put back.

Unlike ``loadtest.locust.local`` (whose pieces it reuses) every server here is one the run may
stop and start again: its own Postgres (embedded, in the work dir), its own ``redis-server``
(append-only, fsync on every write, so a kill loses nothing it acknowledged), the show hosts on
the caller's Ray (Ray starts a killed one again), localstripe, and ``gateways`` gateway
processes sharing one port. The catalog is small on purpose: two theaters with an admin each,
``shows`` shows of ``rows`` x ``per_row`` seats (seats run out, customers contend) and one more
show in a flash sale whose waiting room is open now. Customers and visitors are made straight
in Postgres, each with an access token valid for the whole run.

    stack = await open_fault_stack(FaultStackOptions(work_dir=Path("/tmp/f1")), print)  # Ray up
    fault = await stack.kill_host(random.Random(7))     # a model.Fault, once it is put back
    await stack.restore()                               # whatever an interrupted fault left
    await stack.close()                                 # every process by its pid, the work dir

Every process is ended by its pid; closing tries every step even when one fails, also after a
failure halfway through opening.

Its modules: ``options`` (what is asked for, checked), ``servers`` (the Postgres and
redis-server it restarts), ``catalog`` (shows and accounts), ``opening`` (starting it all),
``faults`` (the open stack: its faults, putting back, closing).
"""

from loadtest.faults.stack.faults import FaultStack
from loadtest.faults.stack.opening import open_fault_stack
from loadtest.faults.stack.options import FaultStackOptions

__all__ = ["FaultStack", "FaultStackOptions", "open_fault_stack"]
