"""The scoring service and its security foundations.

``service``     the thin ``@bentoml.service`` (``RiskService``); each API calls ``endpoints``.
``gate``        three ASGI middlewares run before BentoML: audit (one record per call, allowed
                or not, durable before the answer), API key and role (401, 403), body limits
                and validation (4xx, no tracebacks).
``endpoints``   score, priority list, summary, explain, dossier, decision(s), feedback, model —
                plain functions.
``api_models``  pydantic request and response models (the OpenAPI schema).
``app_state``   start-up: settings, champion from the registry, sources, scorer, keys, log.
``dossier``     a case handler's view of one address as of the scoring date (pseudonyms only).
``outcomes``    visit outcomes recorded through the service (operational store), for training.
``summary``     the top k per area, with small counts withheld (no household singled out).
``decisions``   analysts' decisions about listed addresses, and why (operational store).
``launch``      ``stratum serve``: checks, then ``bentoml serve`` on 127.0.0.1.
``auth``        roles, API keys and the endpoint permission table.
``audit``       the hash-chained, append-only audit log (AI Act art. 12).

This package imports nothing on purpose: importing it must not start BentoML
or load a model.
"""
