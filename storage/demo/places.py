"""Cities of the demo: real names, their IANA time zones and rough coordinates.

The first ten span five time zones, so even a small run shows local times that differ. Past
the list, more cities are made as suburbs of the listed ones (same time zone, nearby).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    country: str
    time_zone: str
    latitude: float
    longitude: float


_E, _C, _M, _P = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
_AZ = "America/Phoenix"

# (name, time zone, latitude, longitude); the order is the order cities are used in.
_US: tuple[tuple[str, str, float, float], ...] = (
    ("New York", _E, 40.71, -74.01),
    ("Los Angeles", _P, 34.05, -118.24),
    ("Chicago", _C, 41.88, -87.63),
    ("Houston", _C, 29.76, -95.37),
    ("Phoenix", _AZ, 33.45, -112.07),
    ("Philadelphia", _E, 39.95, -75.17),
    ("San Antonio", _C, 29.42, -98.49),
    ("San Diego", _P, 32.72, -117.16),
    ("Dallas", _C, 32.78, -96.80),
    ("Denver", _M, 39.74, -104.99),
    ("San Jose", _P, 37.34, -121.89),
    ("Austin", _C, 30.27, -97.74),
    ("Jacksonville", _E, 30.33, -81.66),
    ("Seattle", _P, 47.61, -122.33),
    ("Columbus", _E, 39.96, -83.00),
    ("Indianapolis", "America/Indiana/Indianapolis", 39.77, -86.16),
    ("Charlotte", _E, 35.23, -80.84),
    ("San Francisco", _P, 37.77, -122.42),
    ("Fort Worth", _C, 32.76, -97.33),
    ("Washington", _E, 38.91, -77.04),
    ("Boston", _E, 42.36, -71.06),
    ("Nashville", _C, 36.16, -86.78),
    ("Detroit", "America/Detroit", 42.33, -83.05),
    ("Portland", _P, 45.52, -122.68),
    ("Las Vegas", _P, 36.17, -115.14),
    ("Oklahoma City", _C, 35.47, -97.52),
    ("Memphis", _C, 35.15, -90.05),
    ("Louisville", "America/Kentucky/Louisville", 38.25, -85.76),
    ("Baltimore", _E, 39.29, -76.61),
    ("Milwaukee", _C, 43.04, -87.91),
    ("Albuquerque", _M, 35.08, -106.65),
    ("Tucson", _AZ, 32.22, -110.97),
    ("Fresno", _P, 36.74, -119.79),
    ("Sacramento", _P, 38.58, -121.49),
    ("Kansas City", _C, 39.10, -94.58),
    ("Mesa", _AZ, 33.42, -111.83),
    ("Atlanta", _E, 33.75, -84.39),
    ("Omaha", _C, 41.26, -95.93),
    ("Colorado Springs", _M, 38.83, -104.82),
    ("Raleigh", _E, 35.78, -78.64),
    ("Miami", _E, 25.76, -80.19),
    ("Long Beach", _P, 33.77, -118.19),
    ("Virginia Beach", _E, 36.85, -75.98),
    ("Oakland", _P, 37.80, -122.27),
    ("Minneapolis", _C, 44.98, -93.27),
    ("Tulsa", _C, 36.15, -95.99),
    ("Tampa", _E, 27.95, -82.46),
    ("Arlington", _C, 32.74, -97.11),
    ("New Orleans", _C, 29.95, -90.07),
    ("Wichita", _C, 37.69, -97.34),
    ("Cleveland", _E, 41.50, -81.69),
    ("Bakersfield", _P, 35.37, -119.02),
    ("Aurora", _M, 39.73, -104.83),
    ("Anaheim", _P, 33.84, -117.91),
    ("Honolulu", "Pacific/Honolulu", 21.31, -157.86),
    ("Santa Ana", _P, 33.75, -117.87),
    ("Riverside", _P, 33.95, -117.40),
    ("Corpus Christi", _C, 27.80, -97.40),
    ("Lexington", _E, 38.04, -84.50),
    ("Henderson", _P, 36.04, -114.98),
    ("Stockton", _P, 37.96, -121.29),
    ("Saint Paul", _C, 44.95, -93.09),
    ("Cincinnati", _E, 39.10, -84.51),
    ("St. Louis", _C, 38.63, -90.20),
    ("Pittsburgh", _E, 40.44, -80.00),
    ("Greensboro", _E, 36.07, -79.79),
    ("Anchorage", "America/Anchorage", 61.22, -149.90),
    ("Plano", _C, 33.02, -96.70),
    ("Lincoln", _C, 40.81, -96.70),
    ("Orlando", _E, 28.54, -81.38),
    ("Irvine", _P, 33.68, -117.83),
    ("Newark", _E, 40.74, -74.17),
    ("Durham", _E, 35.99, -78.90),
    ("Chula Vista", _P, 32.64, -117.08),
    ("Toledo", _E, 41.65, -83.54),
    ("Fort Wayne", "America/Indiana/Indianapolis", 41.08, -85.14),
    ("St. Petersburg", _E, 27.77, -82.64),
    ("Laredo", _C, 27.51, -99.51),
    ("Jersey City", _E, 40.73, -74.08),
    ("Chandler", _AZ, 33.31, -111.84),
    ("Madison", _C, 43.07, -89.40),
    ("Lubbock", _C, 33.58, -101.86),
    ("Scottsdale", _AZ, 33.49, -111.93),
    ("Reno", _P, 39.53, -119.81),
    ("Buffalo", _E, 42.89, -78.88),
    ("Gilbert", _AZ, 33.35, -111.79),
    ("Glendale", _AZ, 33.54, -112.19),
    ("North Las Vegas", _P, 36.20, -115.12),
    ("Winston-Salem", _E, 36.10, -80.24),
    ("Chesapeake", _E, 36.77, -76.29),
    ("Norfolk", _E, 36.85, -76.29),
    ("Fremont", _P, 37.55, -121.99),
    ("Garland", _C, 32.91, -96.64),
    ("Irving", _C, 32.81, -96.95),
    ("Hialeah", _E, 25.86, -80.28),
    ("Richmond", _E, 37.54, -77.44),
    ("Boise", "America/Boise", 43.62, -116.21),
    ("Spokane", _P, 47.66, -117.43),
    ("Baton Rouge", _C, 30.45, -91.19),
    ("Salt Lake City", _M, 40.76, -111.89),
    ("El Paso", _M, 31.76, -106.49),
    ("Des Moines", _C, 41.59, -93.62),
    ("Birmingham", _C, 33.52, -86.80),
    ("Rochester", _E, 43.16, -77.61),
    ("Providence", _E, 41.82, -71.41),
    ("Little Rock", _C, 34.75, -92.29),
    ("Tacoma", _P, 47.25, -122.44),
    ("Knoxville", _E, 35.96, -83.92),
    ("Grand Rapids", "America/Detroit", 42.96, -85.67),
    ("Hartford", _E, 41.76, -72.67),
    ("Savannah", _E, 32.08, -81.09),
    ("Charleston", _E, 32.78, -79.93),
    ("Billings", _M, 45.78, -108.50),
    ("Sioux Falls", _C, 43.55, -96.73),
    ("Fargo", _C, 46.88, -96.79),
)

_SUBURBS = (
    "Heights",
    "Park",
    "Springs",
    "Valley",
    "Hills",
    "Grove",
    "Harbor",
    "Falls",
    "Junction",
    "Meadows",
    "Ridge",
    "Crossing",
)


def places(count: int) -> list[Place]:
    """The first ``count`` cities: the listed ones, then suburbs of them, all names unique."""
    found = [Place(name, "US", tz, lat, lon) for name, tz, lat, lon in _US[:count]]
    round_ = 0
    while len(found) < count:
        suffix = _SUBURBS[round_ % len(_SUBURBS)]
        lap = round_ // len(_SUBURBS)
        for index, (name, tz, lat, lon) in enumerate(_US):
            if len(found) == count:
                break
            label = f"{name} {suffix}" if lap == 0 else f"{name} {suffix} {lap + 1}"
            shift = 0.05 + 0.01 * (index % 7)
            found.append(Place(label, "US", tz, round(lat + shift, 2), round(lon - shift, 2)))
        round_ += 1
    return found
