"""The executors' Python daemon: where it puts archives on the import path."""

from __future__ import annotations

from etl.spark_daemon import archives_last, forget_package


def test_archives_go_behind_the_installed_packages_in_their_order() -> None:
    path = [
        "/spark/python/lib/pyspark.zip",
        "/spark/python/lib/py4j-0.10.9.9-src.zip",
        "/spark/jars/spark-core_2.13-4.2.0.jar",
        "/work",
        "/venv/lib/python3.11/site-packages",
    ]
    assert archives_last(path) == [
        "/work",
        "/venv/lib/python3.11/site-packages",
        "/spark/python/lib/pyspark.zip",
        "/spark/python/lib/py4j-0.10.9.9-src.zip",
        "/spark/jars/spark-core_2.13-4.2.0.jar",
    ]
    assert archives_last(["/a", "/b"]) == ["/a", "/b"]


def test_the_workers_import_our_package_afresh() -> None:
    modules: dict[str, object] = {
        "etl": 1,
        "etl.preprocess": 2,
        "etl.preprocess.files": 3,
        "etlx": 4,
        "pandas": 5,
    }
    forget_package(modules)
    assert modules == {"etlx": 4, "pandas": 5}
