"""logpipe's shipper: follows every container's logs on a Docker host and ships them to
the collectors. Importing the collector package first sets the garbage collector's
thresholds for the whole start (see collector/__init__.py)."""

import collector  # noqa: F401
