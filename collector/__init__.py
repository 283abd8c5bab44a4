"""logpipe's collector: takes the shippers' batches, parses and enriches their lines,
indexes them into Elasticsearch.

The garbage collector's thresholds are set here, before anything heavy is imported:
starting a program imports aiohttp, pydantic and prometheus-client, a few hundred
thousand objects, none of them garbage, which the default thresholds had scanned
again and again (40-50 of the 550-600 CPU-ms a shipper's start took).
`collector.runtime.tune_gc()` freezes what is alive once the program runs.
"""

import gc

GC_THRESHOLDS = (50_000, 20, 100)

gc.set_threshold(*GC_THRESHOLDS)
