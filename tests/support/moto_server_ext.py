"""Starts the moto server with lakeops' extension layer (moto_ext/, next to this file).

Run with the Python of the venv that holds moto (tests/env/install.sh creates it):
    python tests/support/moto_server_ext.py --https-port 4566 --http-port 4567 --cert C --key K
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from moto_ext.server import main  # noqa: E402 - the path above makes it importable

if __name__ == "__main__":
    main()
