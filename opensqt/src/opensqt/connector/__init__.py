"""The exchange connector: the VenueGateway gRPC service over cqvx venues, and RemoteVenue, its client.

In production the credentials live only in the connector process; the engine and the live server use
:class:`RemoteVenue`, which is a cqvx ``VenueClient`` like any other.  See docs/connector.md.
"""

from opensqt.connector.auth import BearerTokenInterceptor, ConnectorConfigError, check_bind, is_loopback
from opensqt.connector.fanout import Gap, StreamHub, SubscriberOverflow, TopicKey
from opensqt.connector.remote import DialPolicy, GapInfo, RemoteStream, RemoteVenue, StreamPolicy
from opensqt.connector.remote_section import LazyRemoteVenue, RemoteSection
from opensqt.connector.server import SERVICE_NAME, ConnectorConfig, ConnectorServer, ConnectorStartupError
from opensqt.connector.settings import ConnectorSettings, load_connector_settings

__all__ = [
    "SERVICE_NAME",
    "BearerTokenInterceptor",
    "ConnectorConfig",
    "ConnectorConfigError",
    "ConnectorServer",
    "ConnectorSettings",
    "ConnectorStartupError",
    "DialPolicy",
    "Gap",
    "GapInfo",
    "LazyRemoteVenue",
    "RemoteSection",
    "RemoteStream",
    "RemoteVenue",
    "StreamHub",
    "StreamPolicy",
    "SubscriberOverflow",
    "TopicKey",
    "check_bind",
    "is_loopback",
    "load_connector_settings",
]
