"""spark-submit entry point, the same as ``etl --config PATH run``."""

import sys

from etl.entry import run_step

if __name__ == "__main__":
    sys.exit(run_step("run"))
