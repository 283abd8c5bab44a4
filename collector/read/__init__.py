"""The read API: searching and following what the collectors indexed (docs/read-api.md).

Pure stages (``filters``, ``query``, ``cursor``, ``access``, ``events``) beside the ones
that talk to Elasticsearch (``search``, ``poller``, ``hub``, ``closed``) and the HTTP
edge (``http``).
"""
