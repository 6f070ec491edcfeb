"""The ``sys.dataset.*`` actions: read-only SQL (DuckDB) over the user's CSV, JSONL and Parquet files.

:mod:`.query` runs the query and holds the actions (``ACTIONS``, what the registry wires in);
:mod:`.formats` maps files to tables and back; :mod:`.prefetch` downloads the sources in ordered
parts while :mod:`.files` lets DuckDB read them as they arrive; :mod:`.memory` sizes DuckDB to the
worker; :mod:`.child` is the process DuckDB runs in. This package imports nothing itself, so that
process starts without the worker's storage layer.
"""
