"""Molam payments SDK with self-healing: signed patches, applied from a fixed table of operations."""

from molam.client import MolamClient, __version__
from molam.envelope import key_id
from molam.errors import ApiError, ConfigurationError, MolamConnectionError, MolamError, MolamTimeout
from molam.healing import AppliedPatch
from molam.state import Backoff, ClientState

__all__ = [
    "ApiError",
    "AppliedPatch",
    "Backoff",
    "ClientState",
    "ConfigurationError",
    "MolamClient",
    "MolamConnectionError",
    "MolamError",
    "MolamTimeout",
    "__version__",
    "key_id",
]
