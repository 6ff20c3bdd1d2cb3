"""The scoring service and its security foundations.

``auth``       roles, API keys and the endpoint permission table.
``audit``      the hash-chained, append-only audit log (AI Act art. 12).
``cli_admin``  the ``stratum keys`` and ``stratum audit`` commands.

This package imports nothing on purpose: importing it must not start BentoML
or load a model.
"""
