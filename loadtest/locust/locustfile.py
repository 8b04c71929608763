"""The locust entry point: every journey's user class, and the recorder.

    SEATSERVER_LOCUST_PLAN=plan.json locust -f loadtest/locust/locustfile.py \\
        --host http://127.0.0.1:8080 BookingFunnel

``python -m loadtest`` writes the plan and runs this file headless, one scenario at a time; run
by hand it also serves locust's web page. The plan's ``weights`` and ``fixed`` set the user
classes' ``weight`` and ``fixed_count`` (e.g. three ``SeatChanger`` whatever the watchers).
"""

from __future__ import annotations

from loadtest.locust import recorder  # noqa: F401  (its listeners record every request)
from loadtest.locust.browse import BrowseAndSearch, HealthCheck
from loadtest.locust.customer import PLAN
from loadtest.locust.flash import FlashSaleCustomer
from loadtest.locust.funnel import BookingFunnel
from loadtest.locust.mixed import MixedDay
from loadtest.locust.watchers import SeatChanger, SeatMapWatcher

USER_CLASSES = {
    cls.__name__: cls
    for cls in (
        HealthCheck,
        BrowseAndSearch,
        SeatMapWatcher,
        SeatChanger,
        BookingFunnel,
        FlashSaleCustomer,
        MixedDay,
    )
}

for _name, _weight in PLAN.get("weights", {}).items():
    USER_CLASSES[_name].weight = int(_weight)
for _name, _count in PLAN.get("fixed", {}).items():
    USER_CLASSES[_name].fixed_count = int(_count)

__all__ = list(USER_CLASSES)
