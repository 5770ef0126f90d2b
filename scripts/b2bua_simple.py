#!/usr/bin/env python3
"""Run b2bua_simple from a checkout; the logic lives in sippy.b2bua_simple so it is importable."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from sippy.b2bua_simple import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
