"""``python -m stratum_ml.cli``: the ``stratum`` command."""

from stratum_ml.cli import main

if __name__ == "__main__":  # not again in a spawned worker process
    main()
