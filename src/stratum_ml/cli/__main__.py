"""``python -m stratum_ml.cli``: the ``stratum`` command."""

from stratum_ml.cli import main

main()
