"""The fault run's clients: customers booking, waiting-room visitors and seat-map watchers, each
request written down as a ``model.Call`` of what the client saw (failed tries and requests that
got no answer included).

    stop, finish = asyncio.Event(), asyncio.Event()
    clients = Clients(plan, history, seed=7, stop=stop, finish=finish,
                      customers=8, watchers=4, visitors=20, say=print)
    task = asyncio.create_task(clients.run())
    stop.set()                   # journeys in flight end, each within ``Tuning.drain_s``
    await clients.drained.wait() # every customer and visitor is done
    finish.set()                 # the stack settled: watchers catch up with the map and close
    await task                   # history.calls and history.watchers are filled

Customers (``plan.customers``' tokens) loop over journeys on ``plan.shows``: hold 1-3 best
seats, then release the hold, abandon it (it expires), or check out and pay: through the gateway
with a test card, or as a browser's provider script does with a card that asks for
authentication (the gateway's confirm leaves the intent waiting; the browser authenticates it at
the provider with the publishable key and the intent's client secret, and the provider's webhook
books it). Then they follow the payment until it settles, read the booking, and sometimes cancel
it. Visitors (``plan.visitors``, one place each) join the flash show's line, poll it until
admitted, hold with the admission token, check out and pay. Watchers follow a show's seat map on
the websocket as the web page does (``gateway/static/app.js``).

Its modules: ``tuning`` (pace, patience, odds), ``calls`` (a request recorded, a step tried
again with its key: the retry rules are there), ``purchase`` (checkout and payment),
``customers``, ``visitors``, ``watchers``, and ``crowd`` (``Clients``: all of them, run).
"""

from loadtest.faults.clients.crowd import Clients, Say
from loadtest.faults.clients.tuning import Tuning

__all__ = ["Clients", "Say", "Tuning"]
