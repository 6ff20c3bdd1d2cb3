"""The tables of the operational store (SQLAlchemy 2, typed).

Every table is append-only: rows are added, never updated or deleted; what
changes is recorded as a new row that refers to the old one (a decision
``supersedes`` an earlier one). The migrations in ``migrations/versions`` create
exactly these tables (a test compares the two).

``decisions``
    An analyst's decision about an address. The decisions on one address form
    one chain: the first has no ``supersedes``; every later one names the
    decision it replaces, which must be on the same address and still open (not
    superseded yet). The database enforces this (a composite foreign key, a
    unique ``supersedes`` and one chain start per address), so two workers
    cannot both add a competing decision. The *open* decision of an address is
    the last of its chain. ``run_id`` names the scoring run the decision was
    taken on (None for decisions stored before runs were served). ``reason`` is
    a code from :data:`DECISION_REASONS`, ``note`` the analyst's optional free
    text (required with ``other``; decisions stored before the fixed list have
    ``other`` with their free-text reason as the note).
``visit_outcomes``
    A visit outcome recorded through the service, in the columns of the data
    contract's ``inspections`` table plus who recorded it and when. The same
    visit (address, day, reason, outcome, violation type) is stored once.

    ``run_id`` names the scoring run whose visit plan the visit answers (None for a
    visit outside any plan: never used as a design visit).

Both carry an optional ``idempotency_key`` (unique): a retried request with the
same key finds the row it stored the first time.

Scoring runs (:mod:`stratum_ml.runs`), written once, in one transaction, never changed:

``scoring_runs``
    One run: its id (derived from the as-of date, the model version and the
    sources, so the same run is never stored twice), what it scored with, its
    timings, its drift result and the run it was compared with.
``run_items``
    Every scored dwelling of a run: rank, probability, the fallback rank
    (current practice), district and neighbourhood, and the likely violation type
    with its share (when the model has a violation type model).
``run_reasons``
    The reasons of the top K of a run, in English and Dutch.
``run_changes``
    The run against the previous run of the same model: addresses that entered
    or left the top K, or moved more than the run's ``changes_min_move`` places.

Visit plans (:mod:`stratum_ml.runs.plan`), drawn once per run, never changed:

``visit_plans``
    A run's plan: capacity, exploration share, the seed it was drawn with and its
    strata (rank bands, sizes, numbers drawn) as JSON.
``visit_plan_items``
    One pick of a plan: address, rank, stratum, ``pick`` (``top`` or
    ``exploration``) and its inclusion probability.
``plan_declines``
    An analyst declined a pick, with a reason from a fixed list and checked free
    text; a declined pick counts as non-response. One decline per pick.

The kill switch:

``pause_events``
    The model's kill switch (:mod:`stratum_ml.store.switch`): every pause and
    resume, with why, who and when. The events form one chain: each names the
    ``seq`` of the event it ``follows`` (0 for the first; unique), so two admins
    flipping the switch at once cannot both act on the same state. The switch's
    state is the latest event.

The audit log's anchor (:mod:`stratum_ml.serving.audit_anchor`):

``audit_checkpoints``
    Signed checkpoints of the audit log's head (its last ``seq`` and ``hash``),
    taken at every start and clean stop of the service, daily and with every run.
The web app (:mod:`stratum_ml.serving.webapp`), whose sessions also change after they
are written (a session is seen again, then ends):

``case_file_exports``
    A case file (PDF) exported from a dossier: address, who, purpose and legal
    basis as entered, run, model version and the PDF's SHA-256 (never changed).
``app_sessions``
    One browser session started with an API key at ``/app/login``: the SHA-256 of
    its cookie token (never the token), the key id, role and key name, its CSRF
    token and language, when it started, was last seen and ended. Kept here, not in
    memory, so that every service worker knows every session.
API keys (:mod:`stratum_ml.serving.key_lockout`):

``key_lockout_events``
    Wrong secrets sent with a known key id, a key's lock-out after too many of
    them, and an admin's unlock (``stratum keys unlock``). A key is locked when
    its latest ``locked`` / ``unlocked`` event is ``locked``.

Notifications (:mod:`stratum_ml.notify`), the one place where rows change after
they are written, because delivery is a state that moves on:

``notify_subscriptions``
    Who is told about runs: an e-mail address or a webhook URL (with its signing
    secret), the role (analyst or admin) and an optional filter. Removing one sets
    ``removed_at``; the row stays, so old messages keep their subscription.
``notify_outbox``
    The transactional outbox: one message per subscription, run and kind
    (``changes`` or ``drift``), written in the run's own transaction. Delivery
    moves its ``state`` from ``pending`` to ``delivered``, or to ``dead`` after the
    last allowed attempt; ``attempts``, ``next_attempt_at`` (exponential back-off)
    and ``last_error`` record how far it got.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: what an admin may do with the kill switch
SWITCH_ACTIONS = ("pause", "resume")
#: where the switch was flipped: the command line or the service's endpoint
SWITCH_CHANNELS = ("cli", "api")
#: what an analyst may decide about an address
DECISIONS = ("pass_on_for_visit", "decline", "needs_more_information")
#: why an analyst decides: code -> its words in Dutch and English, the one list the API,
#: the web app and the store use (``other`` needs a note)
DECISION_REASONS: Mapping[str, Mapping[str, str]] = {
    "signals_several_sources": {
        "nl": "signalen uit meerdere bronnen wijzen dezelfde kant op",
        "en": "signals from several sources point the same way",
    },
    "recent_reports": {
        "nl": "recente meldingen bevestigen het beeld",
        "en": "recent reports confirm the picture",
    },
    "explained_by_known_situation": {
        "nl": "de signalen zijn verklaard door een bekende situatie",
        "en": "the signals are explained by a known situation",
    },
    "already_in_handling": {
        "nl": "het adres is al in behandeling",
        "en": "the address is already being handled",
    },
    "too_little_information": {
        "nl": "te weinig informatie om te besluiten",
        "en": "too little information to decide",
    },
    "other": {"nl": "anders", "en": "other"},
}
#: the codes of :data:`DECISION_REASONS`, in order
DECISION_REASON_CODES = tuple(DECISION_REASONS)
#: how an address changed between two runs (``run_changes.change``)
CHANGES = ("entered", "left", "moved_up", "moved_down")
#: how a subscription is reached
CHANNELS = ("email", "webhook")
#: who a subscription is for (admins are also told about drifted runs)
SUBSCRIBER_ROLES = ("analyst", "admin")
#: what a message is about
MESSAGE_KINDS = ("changes", "drift")
#: where a message is in its delivery
MESSAGE_STATES = ("pending", "delivered", "dead")
#: the kinds of pick of a visit plan
PICKS = ("top", "exploration", "challenger")
#: why an analyst may decline a pick of a visit plan
DECLINE_REASONS = ("no_access", "safety", "open_case", "not_a_dwelling", "other")
#: longest idempotency key accepted
MAX_IDEMPOTENCY_KEY_LENGTH = 255

#: constraint names that are the same on every database (Alembic needs names)
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A point in time, stored in UTC and read back timezone-aware (UTC) on every database.

    SQLite has no time zones: it gets the naive UTC time. A naive datetime is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime cannot be stored: give it a time zone")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _sql_list(values: Iterable[str]) -> str:
    """``'a', 'b'``: the values as an SQL list, for a check constraint."""
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    """Base of the operational store's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DecisionRow(Base):
    """One analyst's decision about an address (a row of ``decisions``)."""

    __tablename__ = "decisions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    address_id: Mapped[str] = mapped_column(String(32), index=True)
    decision: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    decided_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(64))
    scoring_date: Mapped[dt.date] = mapped_column(Date)
    rank_at_decision: Mapped[int] = mapped_column(Integer)
    #: null for a decision taken while the model was paused (no model output shown)
    probability_at_decision: Mapped[float | None] = mapped_column(Double)
    supersedes: Mapped[str | None] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(
        String(MAX_IDEMPOTENCY_KEY_LENGTH), unique=True
    )
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)

    __table_args__ = (
        CheckConstraint(
            "decision IN ('pass_on_for_visit', 'decline', 'needs_more_information')",
            name="decision",
        ),
        CheckConstraint(f"reason IN ({_sql_list(DECISION_REASONS)})", name="reason"),
        CheckConstraint("reason <> 'other' OR note IS NOT NULL", name="other_has_note"),
        CheckConstraint("supersedes IS NULL OR supersedes <> decision_id", name="not_itself"),
        UniqueConstraint("decision_id", "address_id"),
        # a decision supersedes one on the same address
        ForeignKeyConstraint(
            ["supersedes", "address_id"], ["decisions.decision_id", "decisions.address_id"]
        ),
    )


class VisitOutcomeRow(Base):
    """One visit outcome recorded through the service (a row of ``visit_outcomes``)."""

    __tablename__ = "visit_outcomes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(String(64), unique=True)
    address_id: Mapped[str] = mapped_column(String(32), index=True)
    inspected_at: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(64))
    violation_type: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(
        String(MAX_IDEMPOTENCY_KEY_LENGTH), unique=True
    )
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)


class PauseEventRow(Base):
    """One pause or resume of the model (a row of ``pause_events``)."""

    __tablename__ = "pause_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    follows: Mapped[int] = mapped_column(Integer, unique=True)
    action: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    channel: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("action IN ('pause', 'resume')", name="action"),
        CheckConstraint("channel IN ('cli', 'api')", name="channel"),
        CheckConstraint("action = 'resume' OR reason IS NOT NULL", name="pause_has_reason"),
        CheckConstraint("follows >= 0", name="follows"),
    )


#: what a row of ``key_lockout_events`` records
KEY_LOCKOUT_EVENTS = ("wrong_secret", "locked", "unlocked")


class KeyLockoutEventRow(Base):
    """A wrong secret sent with a key id, the key's lock-out, or an admin's unlock."""

    __tablename__ = "key_lockout_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("event IN ('wrong_secret', 'locked', 'unlocked')", name="event"),
        Index("ix_key_lockout_events_key_id_seq", "key_id", "seq"),
    )


# one chain per address: only its first decision supersedes nothing
Index(
    "uq_decisions_chain_start",
    DecisionRow.address_id,
    unique=True,
    sqlite_where=DecisionRow.supersedes.is_(None),
    postgresql_where=DecisionRow.supersedes.is_(None),
)
# the same visit is stored once (a missing violation type counts as one value)
Index(
    "uq_visit_outcomes_visit",
    VisitOutcomeRow.address_id,
    VisitOutcomeRow.inspected_at,
    VisitOutcomeRow.reason,
    VisitOutcomeRow.outcome,
    func.coalesce(VisitOutcomeRow.violation_type, ""),
    unique=True,
)


class ScoringRunRow(Base):
    """One scoring run (a row of ``scoring_runs``)."""

    __tablename__ = "scoring_runs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), unique=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(64))
    sources_fingerprint: Mapped[str] = mapped_column(String(64))
    top_k: Mapped[int] = mapped_column(Integer)
    n_items: Mapped[int] = mapped_column(Integer)
    changes_min_move: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16))
    timings: Mapped[str] = mapped_column(Text)
    drift: Mapped[str | None] = mapped_column(Text)
    drifted: Mapped[bool | None] = mapped_column(Boolean)
    drift_note: Mapped[str | None] = mapped_column(Text)
    previous_run_id: Mapped[str | None] = mapped_column(String(32))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("top_k >= 1", name="top_k"),
        Index("ix_scoring_runs_model_name_as_of", "model_name", "as_of"),
    )


class RunItemRow(Base):
    """One scored dwelling of a run (a row of ``run_items``)."""

    __tablename__ = "run_items"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("scoring_runs.run_id"), primary_key=True
    )
    address_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Double)
    fallback_rank: Mapped[int] = mapped_column(Integer)
    district: Mapped[str | None] = mapped_column(String(64))
    neighbourhood: Mapped[str | None] = mapped_column(String(64))
    #: the model's most likely violation type and its share (0..1); NULL for a model
    #: without a violation type model and for runs stored before revision 0012
    violation_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    violation_type_share: Mapped[float | None] = mapped_column(Double, nullable=True)

    __table_args__ = (UniqueConstraint("run_id", "rank"),)


class RunShadowItemRow(Base):
    """The challenger's rank of one dwelling of a run, scored beside the champion (shadow)."""

    __tablename__ = "run_shadow_items"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("scoring_runs.run_id"), primary_key=True
    )
    address_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Double)

    __table_args__ = (UniqueConstraint("run_id", "rank"),)


class RunReasonRow(Base):
    """One reason of one top-K address of a run (a row of ``run_reasons``)."""

    __tablename__ = "run_reasons"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("scoring_runs.run_id"), primary_key=True
    )
    address_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature: Mapped[str] = mapped_column(String(100))
    theme: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    contribution: Mapped[float] = mapped_column(Double)
    direction: Mapped[str] = mapped_column(String(16))
    text_en: Mapped[str] = mapped_column(Text)
    text_nl: Mapped[str] = mapped_column(Text)


class RunChangeRow(Base):
    """One address that changed against the previous run (a row of ``run_changes``)."""

    __tablename__ = "run_changes"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("scoring_runs.run_id"), primary_key=True
    )
    address_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    previous_run_id: Mapped[str] = mapped_column(String(32))
    change: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int | None] = mapped_column(Integer)
    previous_rank: Mapped[int | None] = mapped_column(Integer)
    district: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("change IN ('entered', 'left', 'moved_up', 'moved_down')", name="change"),
    )


class SubscriptionRow(Base):
    """One subscription to the notifications (a row of ``notify_subscriptions``)."""

    __tablename__ = "notify_subscriptions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(2000))
    role: Mapped[str] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(64))
    neighbourhood: Mapped[str | None] = mapped_column(String(64))
    violation_type: Mapped[str | None] = mapped_column(String(64))
    secret: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    removed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    removed_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
        CheckConstraint("role IN ('analyst', 'admin')", name="role"),
        CheckConstraint("channel = 'email' OR secret IS NOT NULL", name="webhook_has_secret"),
    )


class OutboxRow(Base):
    """One message to one subscription, and its delivery (a row of ``notify_outbox``)."""

    __tablename__ = "notify_outbox"

    message_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("notify_subscriptions.subscription_id")
    )
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("scoring_runs.run_id"))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("kind IN ('changes', 'drift')", name="kind"),
        CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state"),
        CheckConstraint("attempts >= 0", name="attempts"),
        UniqueConstraint("subscription_id", "run_id", "kind"),
        Index("ix_notify_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )


class VisitPlanRow(Base):
    """The visit plan of one run (a row of ``visit_plans``)."""

    __tablename__ = "visit_plans"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("scoring_runs.run_id"), primary_key=True
    )
    capacity: Mapped[int] = mapped_column(Integer)
    exploration_share: Mapped[float] = mapped_column(Double)
    population_share: Mapped[float] = mapped_column(Double)
    n_top: Mapped[int] = mapped_column(Integer)
    n_exploration: Mapped[int] = mapped_column(Integer)
    challenger_share: Mapped[float] = mapped_column(Double, server_default="0")
    n_challenger: Mapped[int] = mapped_column(Integer, server_default="0")
    seed: Mapped[int] = mapped_column(Integer)
    strata: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint("exploration_share >= 0 AND exploration_share <= 1", name="share"),
        CheckConstraint("challenger_share >= 0 AND challenger_share <= 1", name="challenger_share"),
    )


class VisitPlanItemRow(Base):
    """One pick of a visit plan (a row of ``visit_plan_items``)."""

    __tablename__ = "visit_plan_items"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("visit_plans.run_id"), primary_key=True
    )
    address_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    stratum: Mapped[int] = mapped_column(Integer)
    pick: Mapped[str] = mapped_column(String(16))
    inclusion_probability: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        CheckConstraint("pick IN ('top', 'exploration', 'challenger')", name="pick"),
        CheckConstraint(
            "inclusion_probability > 0 AND inclusion_probability <= 1", name="probability"
        ),
    )


class PlanDeclineRow(Base):
    """An analyst declined a pick of a visit plan (a row of ``plan_declines``)."""

    __tablename__ = "plan_declines"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32))
    address_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    declined_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    declined_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(
            "reason IN ('no_access', 'safety', 'open_case', 'not_a_dwelling', 'other')",
            name="reason",
        ),
        CheckConstraint("reason <> 'other' OR note IS NOT NULL", name="other_has_note"),
        UniqueConstraint("run_id", "address_id"),
        ForeignKeyConstraint(
            ["run_id", "address_id"],
            ["visit_plan_items.run_id", "visit_plan_items.address_id"],
        ),
    )


class AuditCheckpointRow(Base):
    """A signed checkpoint of the audit log's head (a row of ``audit_checkpoints``).

    Written by :mod:`stratum_ml.serving.audit_anchor` at every start and clean stop of
    the service, with every scoring run and at least daily; ``log`` is the log's
    resolved path, ``head_seq`` and ``head_hash`` its last record when taken, and
    ``signature`` the HMAC of those with a key kept outside the log's folder.
    """

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    log: Mapped[str] = mapped_column(String(1000), index=True)
    head_seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("head_seq >= 0", name="head_seq"),)


class AppSessionRow(Base):
    """One web-app session (a row of ``app_sessions``); the token itself is never stored."""

    __tablename__ = "app_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32))
    key_name: Mapped[str] = mapped_column(String(200))
    csrf_token: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("language IN ('nl', 'en')", name="language"),
        Index("ix_app_sessions_key_id", "key_id"),
    )


class CaseFileExportRow(Base):
    """One case file (PDF) exported from a dossier (a row of ``case_file_exports``).

    Never changed: who exported it, for which purpose and on which legal basis (as the
    case handler entered them), from which run and model version, and the SHA-256 of
    the PDF's bytes (the PDF itself is not kept).
    """

    __tablename__ = "case_file_exports"

    export_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    address_id: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32))
    key_name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(1000))
    legal_basis: Mapped[str] = mapped_column(String(500))
    run_id: Mapped[str | None] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(64))
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_case_file_exports_address_id", "address_id"),)
