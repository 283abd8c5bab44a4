"""``GET /logs`` on the shipper's HTTP listener: this host's lines, live, like logspout.

The followers hand every read's lines to the :class:`~shipper.tail.tap.Tap` on their way
to the queue (shipper/follow/handoff.py), before any collector sees them, so watching
works while the collectors or Elasticsearch are down. Each client has a bounded queue of
its own; a client that falls behind misses lines (and is told how many) rather than slow
the shipping. The modules: ``query.py`` (what a request asks for), ``tap.py`` (the
clients' queues), ``render.py`` (lines as text or NDJSON), ``endpoint.py`` (the HTTP
handler: token, limits, the stream).
"""
