"""A pipeline's rows in the results PostgreSQL, comparable with another pipeline's."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import create_engine, text

TABLES = {"machine_activity": "start_time", "machine_cycle": "cycle_start"}
"""The results tables and the column that orders a machine's rows."""


def pipeline_results(url: str, schema: str, pipeline: str) -> dict[str, pd.DataFrame]:
    """Both results tables' rows of ``pipeline``, sorted, without what names the pipeline.

    The ``pipeline`` column goes, and the pipeline's name in ``model_version`` (the
    registered model is ``{pipeline}-{type}-activity``) becomes ``PIPELINE``, so that
    two pipelines over the same data compare equal when their results are.
    """
    engine = create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for table, key in TABLES.items():
                frame = pd.read_sql(
                    text(f"SELECT * FROM {schema}.{table} WHERE pipeline = :p"),
                    conn,
                    params={"p": pipeline},
                )
                frame["model_version"] = frame["model_version"].str.replace(pipeline, "PIPELINE")
                frame["machine_uuid"] = frame["machine_uuid"].astype(str)
                out[table] = frame.drop(columns=["pipeline"]).sort_values(
                    ["machine_uuid", key], ignore_index=True
                )
    finally:
        engine.dispose()
    return out
