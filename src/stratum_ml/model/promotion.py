"""Promotion records: one signed decision per promotion, applied idempotently, read back verified.

A promotion makes several registry writes (the decision tags on the version,
``previous_champion``, ``champion``, removing ``challenger``). A kill between them
used to leave a half state. Now a promotion is first *recorded*: one
:class:`PromotionRecord` (what the gate found, the fairness-risk acceptance if
any, who decided and when, and every tag and alias it implies), signed with
HMAC-SHA256 under the ``promotion`` key (:mod:`stratum_ml.signing`, kept outside
MLflow), written in one registry write as the registered model's tag
:data:`TAG_PENDING`. Then :func:`apply_record` makes the writes, each of which
sets a value (so running it twice changes nothing), writes the record on the
version as :data:`TAG_RECORD`, and last removes :data:`TAG_PENDING`.
:func:`complete_pending` finishes a recorded promotion that was interrupted; the
next ``stratum promote`` and every start of the service call it.

Readers resolve the champion through the records, never through the alias alone
(:func:`verified_champion`): the champion is the version of the newest record
whose signature verifies and whose version still carries the tags it recorded.
A pending record counts (its decision is made), so a reader never sees a half
state. An alias moved by hand (from the MLflow UI, say), a record or an accepted
fairness risk deleted or edited, or a record signed with another key, is not a
verified promotion: :class:`ChampionCheck` says what is wrong, and the service
keeps serving the last verified version.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from stratum_ml.model.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    aliases_of,
    registered_aliases,
    registered_model,
)
from stratum_ml.signing import load_signing_key, sign, signature_ok

__all__ = [
    "PROMOTION_PURPOSE",
    "TAG_PENDING",
    "TAG_RECORD",
    "ChampionCheck",
    "PromotionRecord",
    "apply_record",
    "complete_pending",
    "pending_record",
    "record_promotion",
    "verified_champion",
]

#: the signing key's purpose
PROMOTION_PURPOSE = "promotion"
#: registered model tag: a recorded promotion not yet completely applied
TAG_PENDING = "promotion_pending"
#: version tag: the promotion record of the version it made champion
TAG_RECORD = "promotion_record"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionRecord:
    """One promotion decision: what was checked, who decided, and what it changes.

    Attributes
    ----------
    record_id
        Unique id of the decision.
    model_name, version
        The registered model and the version made champion.
    previous_champion
        The champion before (gets the alias ``previous_champion``); None for the first.
    remove_challenger
        Whether the ``challenger`` alias pointed at ``version`` (it is then removed).
    fairness_passed
        The gate's fairness verdict.
    reasons
        The checks that passed, one sentence each.
    acceptance
        The fairness-risk acceptance tags when the gate failed and a person accepted
        the risk in writing (reason, by, at); empty otherwise.
    version_tags
        Every tag the decision sets on the version (decision, reasons, checked at, and
        the acceptance).
    decided_by, decided_at
        Who (the OS user) and when (UTC, ISO).
    signature
        HMAC-SHA256 of all the above.
    """

    record_id: str
    model_name: str
    version: str
    previous_champion: str | None
    remove_challenger: bool
    fairness_passed: bool
    reasons: tuple[str, ...]
    acceptance: dict[str, str]
    version_tags: dict[str, str]
    decided_by: str
    decided_at: str
    signature: str = field(default="", compare=False)

    @classmethod
    def decide(
        cls,
        *,
        model_name: str,
        version: str,
        previous_champion: str | None,
        remove_challenger: bool,
        fairness_passed: bool,
        reasons: list[str],
        acceptance: Mapping[str, str],
        version_tags: Mapping[str, str],
        decided_by: str,
        key: bytes | None = None,
    ) -> PromotionRecord:
        """A new, signed record (the ``promotion`` key is created when missing)."""
        unsigned = cls(
            record_id=uuid.uuid4().hex,
            model_name=model_name,
            version=str(version),
            previous_champion=None if previous_champion is None else str(previous_champion),
            remove_challenger=remove_challenger,
            fairness_passed=fairness_passed,
            reasons=tuple(reasons),
            acceptance=dict(acceptance),
            version_tags=dict(version_tags),
            decided_by=decided_by,
            decided_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        )
        key = key if key is not None else load_signing_key(PROMOTION_PURPOSE)
        return cls(**{**unsigned.__dict__, "signature": sign(key, unsigned.body())})

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        body = asdict(self)
        body.pop("signature")
        body["reasons"] = list(self.reasons)
        return body

    def to_json(self) -> str:
        """The record as JSON, with its signature."""
        return json.dumps(self.body() | {"signature": self.signature}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PromotionRecord:
        """Read :meth:`to_json`; ValueError when it is not a promotion record."""
        try:
            data = json.loads(text)
            return cls(
                record_id=str(data["record_id"]),
                model_name=str(data["model_name"]),
                version=str(data["version"]),
                previous_champion=data["previous_champion"],
                remove_challenger=bool(data["remove_challenger"]),
                fairness_passed=bool(data["fairness_passed"]),
                reasons=tuple(str(r) for r in data["reasons"]),
                acceptance={str(k): str(v) for k, v in data["acceptance"].items()},
                version_tags={str(k): str(v) for k, v in data["version_tags"].items()},
                decided_by=str(data["decided_by"]),
                decided_at=str(data["decided_at"]),
                signature=str(data["signature"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError("not a promotion record") from None

    def verifies(self, key: bytes) -> bool:
        """Whether the signature is this record's under ``key``."""
        return signature_ok(key, self.body(), self.signature)


def pending_record(
    client: MlflowClient, name: str, registered: RegisteredModel | None = None
) -> PromotionRecord | None:
    """The recorded promotion not yet completely applied, if any (unverified).

    ``registered``: the entry of ``name`` already read (:func:`registered_model`), to
    save a registry call; default: read it.
    """
    registered = registered if registered is not None else registered_model(client, name)
    if registered is None:
        return None
    text = (registered.tags or {}).get(TAG_PENDING)
    if text is None:
        return None
    try:
        return PromotionRecord.from_json(text)
    except ValueError:
        return None


def record_promotion(client: MlflowClient, record: PromotionRecord) -> None:
    """Record the decision: one registry write (:data:`TAG_PENDING`), before any other."""
    client.set_registered_model_tag(record.model_name, TAG_PENDING, record.to_json())


def apply_record(client: MlflowClient, record: PromotionRecord) -> None:
    """Make the registry what ``record`` says; every step sets a value, so it is idempotent.

    Order: the version's decision tags, ``previous_champion``, ``champion``, removing
    ``challenger`` (only while it still points at the version), the record on the
    version (:data:`TAG_RECORD`), and last removing :data:`TAG_PENDING` when it is
    this record.
    """
    name, version = record.model_name, record.version
    for key, value in record.version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    if record.previous_champion is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, record.previous_champion)
    client.set_registered_model_alias(name, CHAMPION, version)
    if (
        record.remove_challenger
        and (registered_aliases(client, name) or {}).get(CHALLENGER) == version
    ):
        client.delete_registered_model_alias(name, CHALLENGER)
    client.set_model_version_tag(name, version, TAG_RECORD, record.to_json())
    pending = pending_record(client, name)
    if pending is not None and pending.record_id == record.record_id:
        client.delete_registered_model_tag(name, TAG_PENDING)


def complete_pending(
    client: MlflowClient, name: str, key: bytes | None = None
) -> PromotionRecord | None:
    """Finish a recorded promotion that was interrupted; return it (None when there was none).

    A pending record whose signature does not verify is not applied (and is left for
    an admin to see: :func:`verified_champion` names it).
    """
    pending = pending_record(client, name)
    if pending is None:
        return None
    key = key if key is not None else load_signing_key(PROMOTION_PURPOSE)
    if not pending.verifies(key) or pending.model_name != name:
        log.warning("the pending promotion of %s does not verify; it is not applied", name)
        return None
    apply_record(client, pending)
    return pending


@dataclass(frozen=True)
class ChampionCheck:
    """The champion as the verified promotion records say, against the registry's alias.

    Attributes
    ----------
    version
        The version of the newest verified, complete record (or verified pending one);
        None when there is none.
    record
        That record.
    alias
        Where the ``champion`` alias points (None when nowhere).
    problems
        What is wrong, one sentence each; empty when the alias and the records agree.
    """

    version: str | None
    record: PromotionRecord | None
    alias: str | None
    problems: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when the records and the alias agree and nothing was tampered with."""
        return not self.problems and self.version is not None


def _record_problem(
    record: PromotionRecord, name: str, version: str, tags: Mapping[str, str], key: bytes
) -> str | None:
    if not record.verifies(key):
        return (
            f"the promotion record of version {version} does not verify with the promotion "
            "key: it was edited, or signed with another key"
        )
    if record.model_name != name or record.version != version:
        return f"the promotion record on version {version} is of another version (copied)"
    changed = sorted(k for k, v in record.version_tags.items() if tags.get(k) != v)
    if changed:
        return (
            f"version {version} no longer carries the tags its promotion recorded "
            f"({', '.join(changed)}): they were removed or changed in the registry"
        )
    return None


def verified_champion(client: MlflowClient, name: str, key: bytes | None = None) -> ChampionCheck:
    """Resolve the champion through the signed promotion records.

    Parameters
    ----------
    client
        An MLflow client on the registry.
    name
        The registered model.
    key
        The ``promotion`` key; default: read it (created when missing, in which case
        nothing verifies until promotions are signed with it).

    Returns
    -------
    ChampionCheck
    """
    key = key if key is not None else load_signing_key(PROMOTION_PURPOSE)
    registered = registered_model(client, name)  # one read for the alias and the pending
    if registered is None:
        return ChampionCheck(None, None, None)
    alias = aliases_of(registered).get(CHAMPION)
    problems: list[str] = []
    verified: list[PromotionRecord] = []
    doubtful: list[tuple[str | None, str]] = []  # (decided_at when trustworthy, problem)
    for mv in client.search_model_versions(f"name='{name}'"):
        tags = dict(mv.tags or {})
        text = tags.get(TAG_RECORD)
        if text is None:
            continue
        try:
            record = PromotionRecord.from_json(text)
        except ValueError:
            doubtful.append((None, f"the promotion record of version {mv.version} cannot be read"))
            continue
        problem = _record_problem(record, name, str(mv.version), tags, key)
        if problem is None:
            verified.append(record)
        else:
            doubtful.append((record.decided_at if record.verifies(key) else None, problem))
    pending = pending_record(client, name, registered)
    if pending is not None:
        if pending.verifies(key) and pending.model_name == name:
            verified.append(pending)
        else:
            doubtful.append((None, "the pending promotion record does not verify"))
    latest = max(verified, key=lambda r: r.decided_at, default=None)
    version = None if latest is None else latest.version
    # a signed record older than the champion's no longer matters (a later refusal may
    # have changed its version's tags); anything newer, or unsigned, does
    problems.extend(
        p for at, p in doubtful if at is None or latest is None or at > latest.decided_at
    )
    half_applied = pending is not None and latest is pending
    if pending is not None and half_applied and alias in {pending.previous_champion, version}:
        pass  # a promotion being applied: readers already follow its record
    elif alias is not None and alias != version:
        problems.append(
            f"the champion alias points at version {alias}, which has no verified promotion "
            "record (moved outside `stratum promote`?)"
            + ("" if version is None else f"; the last verified champion is version {version}")
        )
    elif alias is None and version is not None and not half_applied:
        problems.append(
            f"the champion alias was removed; the last verified champion is version {version}"
        )
    return ChampionCheck(version, latest, alias, tuple(problems))
