"""fleet-etl: activity and cycle analytics for surface-mining machines, on PySpark."""

__version__ = "0.1.0"
