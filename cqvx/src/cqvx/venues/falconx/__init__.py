"""FalconX (request-for-quote REST API) as a :class:`cqvx.client.VenueClient` with :class:`SupportsRfq`.

Read top to bottom like the request path: config/section -> endpoints -> models -> parse -> errors ->
client (the RFQ flow lives in :mod:`cqvx.venues.falconx.rfq`).  FalconX has no order book, no resting
orders and no public streams: those methods raise :class:`~cqvx.errors.UnsupportedOperation`.
"""

from cqvx.venues.falconx.client import FalconXClient
from cqvx.venues.falconx.config import FalconXConfig

__all__ = ["FalconXClient", "FalconXConfig"]
