"""The shipper's exceptions, one tree::

    ShipperError
    ├── ConfigError          bad settings: names the key
    ├── DockerError          the Docker Engine API failed or answered unexpectedly
    │   ├── DockerUnavailable  socket unreachable, daemon restarting: reconnect with backoff
    │   └── ContainerGone      404/409 for a container that no longer exists
    ├── DemuxError           the log stream broke the frame protocol
    ├── TailRequestError     a GET /logs request asked for something it cannot have: 400
    ├── TaskFailed           a task of the shipper ended by an unexpected error: exit 1
    ├── CursorsNotSaved      the last save of the cursors at exit failed: exit 1
    └── DeliveryError        the collector did not take a batch
        ├── RetryableDelivery  down, overloaded, 5xx/429, timeouts: keep the batch, retry
        │   └── TooSlow          408, or a timeout mid-body: the body crossed the link too
        │                        slowly; its halves may not
        └── RejectedDelivery   401/403 and other answers a retry cannot fix by itself

Only the edge modules (docker_api.py for the Engine API, sink.py for the collector)
convert aiohttp's exceptions into these, with ``raise ... from exc``.
"""

from __future__ import annotations


class ShipperError(Exception):
    """Base of every error the shipper raises on purpose."""


class ConfigError(ShipperError):
    """The configuration is invalid; the message names the key."""


class DockerError(ShipperError):
    """The Docker Engine API failed."""


class DockerUnavailable(DockerError):
    """dockerd cannot be reached right now."""


class ContainerGone(DockerError):
    """The container no longer exists (or is being removed)."""


class Unanchored(ShipperError):
    """A response asked for from the end of a log began after the lines already read:
    what lay between may be missing from it (ask from the positions instead)."""


class Switched(ShipperError):
    """A follow stream was ended before it queued anything: inspecting the container
    said its log is read from its files instead (shipper/follow/files.py)."""


class DemuxError(ShipperError):
    """A log stream did not follow the frame protocol."""


class TailRequestError(ShipperError):
    """A ``GET /logs`` request's parameters are invalid; the message names the parameter."""


class TaskFailed(ShipperError):
    """A long-running task ended by an error nothing handles: the shipper exits (1)."""


class CursorsNotSaved(ShipperError):
    """The cursors could not be saved at exit (logged as one line): the shipper exits (1)."""


class DeliveryError(ShipperError):
    """A batch was not accepted by the collector."""

    # Whether the try may have indexed some of the batch: False only when the collector
    # said it wrote none of it (collector.wire.UNWRITTEN), or none of it was sent.
    may_have_written = True


class RetryableDelivery(DeliveryError):
    """The same batch may be accepted later."""

    def __init__(
        self, message: str, retry_after: float | None = None, back_off: bool = True
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.back_off = back_off  # False: sent again at once, the collector not backed off


class TooSlow(RetryableDelivery):
    """The batch's body reached the collector too slowly: it answered 408 (its
    LOGPIPE_BODY_TIMEOUT ran out), or the shipper's own request timeout ran out while the
    body was still being sent. Sent whole again it would fail the same way over a slow
    link; its halves may not."""

    def __init__(self, message: str, retry_after: float | None = None, answered: bool = True):
        super().__init__(message, retry_after)
        self.answered = answered  # the collector answered (408): it is up, the body was slow


class RejectedDelivery(DeliveryError):
    """The collector refused the batch for a reason a retry alone will not fix."""


class TooLarge(RejectedDelivery):
    """413: the batch's body is over the collector's limit; its halves may not be."""
