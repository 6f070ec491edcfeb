"""The ``sys.dataset.*`` actions: read-only SQL (DuckDB) over the user's CSV, JSONL and Parquet files.

:mod:`.query` runs the query and holds the actions; :mod:`.formats` maps files to tables and back;
:mod:`.prefetch` downloads the sources in ordered parts while :mod:`.files` lets DuckDB read them as
they arrive; :mod:`.memory` sizes DuckDB to the worker. ``ACTIONS`` is what the registry wires in.
"""

from __future__ import annotations

from feaas.actions.base import Action
from src.actions.dataset.query import DatasetConvert, DatasetQuery

ACTIONS: list[Action] = [DatasetQuery(), DatasetConvert()]

__all__ = ["ACTIONS"]
