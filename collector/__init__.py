"""logpipe's collector: takes the shippers' batches, parses and enriches their lines,
indexes them into Elasticsearch.

The garbage collector's thresholds are set here, before anything heavy is imported:
starting a program imports aiohttp, pydantic and prometheus-client, a few hundred
thousand objects, nearly none of them garbage, which the default thresholds had scanned
again and again (40-50 of the 550-600 CPU-ms a shipper's start took). Until the program
runs, no collection comes at all: a start makes 80,000 (shipper) to 130,000 (collector)
tracked objects, and each collection at 50,000 scanned them for a few hundred garbage
ones (12-20 CPU-ms each: one in a shipper's start, two in a collector's).
`collector.runtime.tune_gc()` then freezes what is alive, the start's garbage with it
(about 2,000 objects: 0.6 MB more resident memory in a shipper, 0.9 MB in a collector),
and sets the running thresholds; a one-shot command (setup, config, ...) keeps these.
"""

import gc

GC_THRESHOLDS = (50_000, 20, 100)  # once the program runs (collector.runtime.tune_gc)
GC_START_THRESHOLDS = (250_000, 20, 100)  # while it imports and reads its settings

gc.set_threshold(*GC_START_THRESHOLDS)
