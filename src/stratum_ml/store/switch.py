"""The kill switch: an admin pauses the model, and every list becomes the fallback ranking.

The switch is the ``pause_events`` table (:mod:`stratum_ml.store.tables`):
append-only, one row per pause or resume with the reason, who and when. Its
state is the latest event, read per request with one primary-key query, so a
pause from the command line takes effect in a running service from its next
request on, without a restart.

Flipping the switch to where it already is changes nothing: pausing a paused
model or resuming a running one stores no event and says so
(:attr:`SwitchChange.changed` is False), so a retried command or request is
harmless. To change the reason of a pause, resume and pause again.

A pause needs a reason of at least :data:`MIN_REASON_LENGTH` characters,
address-level only: text that looks like person data is refused
(:func:`stratum_ml.store.free_text.reason_problems`). A resume may carry one.

While paused, the service and ``stratum run`` answer with the fallback ranking
(current practice: the number of reports in the past year), never with the
model's probabilities.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratum_ml.store.free_text import reason_problems
from stratum_ml.store.store import Store
from stratum_ml.store.tables import PauseEventRow

__all__ = [
    "MAX_REASON_LENGTH",
    "MIN_REASON_LENGTH",
    "Actor",
    "PauseState",
    "SwitchChange",
    "SwitchError",
    "check_reason",
    "current_pause",
    "pause",
    "resume",
]

#: shortest reason a pause is accepted with
MIN_REASON_LENGTH = 10
#: longest reason accepted
MAX_REASON_LENGTH = 500


class SwitchError(ValueError):
    """A pause or resume that breaks a rule (the reason); nothing was stored."""


@dataclass(frozen=True)
class Actor:
    """Who flips the switch: an OS user at the command line, or an API key at the service.

    Parameters
    ----------
    channel
        ``"cli"`` or ``"api"``.
    name
        The OS user name (command line) or the key id (service; never the key).
    role, key_name
        The key's role and name (service only).
    """

    channel: Literal["cli", "api"]
    name: str
    role: str | None = None
    key_name: str | None = None

    def describe(self) -> str:
        """Who, in words, e.g. ``OS user alice (command line)``.

        Examples
        --------
        >>> Actor("api", "0123456789abcdef", "admin", "ops - j.jansen").describe()
        "key 0123456789abcdef (admin, 'ops - j.jansen')"
        """
        if self.channel == "cli":
            return f"OS user {self.name} (command line)"
        return f"key {self.name} ({self.role}, {self.key_name!r})"


@dataclass(frozen=True)
class PauseState:
    """The model is paused: since when, by whom and why (the latest event, a pause)."""

    since: dt.datetime
    by: Actor
    reason: str
    event: int

    def sentence(self) -> str:
        """The pause in one sentence, for answers and messages."""
        return (
            f"The model is paused since {self.since.isoformat(timespec='seconds')} "
            f"by {self.by.describe()}: {self.reason}"
        )


@dataclass(frozen=True)
class SwitchChange:
    """What :func:`pause` or :func:`resume` did.

    ``changed`` is False when the switch already was where it was asked to go
    (nothing stored); ``state`` is the pause in force afterwards (None: the model
    runs); ``message`` says it in words; ``event`` names the stored event
    (:func:`event_name`; None when nothing was stored).
    """

    changed: bool
    state: PauseState | None
    message: str
    event: str | None = None


def event_name(row: PauseEventRow) -> str:
    """How an event is named in the audit log: ``<seq>-<at>-<digest>``.

    ``at`` is ``YYYYMMDDTHHMMSS`` (UTC) and the digest the first 12 hex digits of the
    SHA-256 of the action, reason and actor: a ``seq`` alone can be handed out again
    after a rollback.
    """
    content = "\x1f".join([row.action, row.reason or "", row.channel, row.actor])
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:12]
    return f"{row.seq}-{row.at.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{digest}"


def _latest(session: Session) -> PauseEventRow | None:
    return session.scalar(select(PauseEventRow).order_by(PauseEventRow.seq.desc()).limit(1))


def _state(row: PauseEventRow | None) -> PauseState | None:
    if row is None or row.action != "pause":
        return None
    actor = Actor("cli" if row.channel == "cli" else "api", row.actor, row.role, row.key_name)
    return PauseState(since=row.at, by=actor, reason=row.reason or "", event=row.seq)


def current_pause(store: Store) -> PauseState | None:
    """The pause in force, or None when the model runs (one primary-key query, or none
    when nothing was committed to the store since the last: :meth:`Store.memo`).

    Parameters
    ----------
    store
        The operational store.

    Returns
    -------
    PauseState or None
    """

    def read() -> PauseState | None:
        with store.reading() as session:
            return _state(_latest(session))

    return store.memo(("current_pause",), read)


def check_reason(reason: str | None, *, required: bool) -> str | None:
    """The reason stripped, or a :class:`SwitchError` saying what is wrong with it.

    Parameters
    ----------
    reason
        The reason given, or None.
    required
        True for a pause (a reason is required), False for a resume.

    Examples
    --------
    >>> check_reason("  the model ranks one district only ", required=True)
    'the model ranks one district only'
    """
    if reason is None:
        if required:
            raise SwitchError(f"a pause needs a reason of at least {MIN_REASON_LENGTH} characters")
        return None
    text = reason.strip()
    problems = []
    if len(text) < MIN_REASON_LENGTH or len(text) > MAX_REASON_LENGTH:
        problems.append(f"must hold {MIN_REASON_LENGTH} to {MAX_REASON_LENGTH} characters")
    problems.extend(reason_problems(text))
    if problems:
        raise SwitchError("reason: " + "; ".join(problems) + ". Nothing was stored.")
    return text


#: called inside the transaction that stores an event, before it commits (e.g. to audit it);
#: an exception rolls the event back
OnChange = Callable[[SwitchChange], None]


def _flip(
    store: Store,
    action: Literal["pause", "resume"],
    reason: str | None,
    by: Actor,
    on_change: OnChange | None,
) -> SwitchChange:
    for attempt in range(2):
        try:
            with store.transaction() as session:
                latest = _latest(session)
                before = _state(latest)
                if action == "pause" and before is not None:
                    return SwitchChange(
                        False, before, f"{before.sentence()}. It stays paused; nothing changed."
                    )
                if action == "resume" and before is None:
                    return SwitchChange(False, None, "The model is not paused; nothing changed.")
                row = PauseEventRow(
                    follows=0 if latest is None else latest.seq,
                    action=action,
                    reason=reason,
                    at=dt.datetime.now(dt.UTC).replace(microsecond=0),
                    channel=by.channel,
                    actor=by.name,
                    role=by.role,
                    key_name=by.key_name,
                )
                session.add(row)
                session.flush()
                after = _state(row)
                if after is not None:
                    message = f"{after.sentence()}. Every list is now the fallback ranking."
                else:
                    message = f"The model was resumed by {by.describe()}"
                    if before is not None:
                        message += (
                            f"; it had been paused since "
                            f"{before.since.isoformat(timespec='seconds')} by "
                            f"{before.by.describe()}: {before.reason}"
                        )
                    message += ". Lists are the model's again."
                change = SwitchChange(True, after, message, event=event_name(row))
                if on_change is not None:
                    on_change(change)
                return change
        except IntegrityError:
            # another admin flipped the switch between our read and our write: read again
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def pause(
    store: Store, reason: str, by: Actor, *, on_change: OnChange | None = None
) -> SwitchChange:
    """Pause the model: from now on every list is the fallback ranking.

    Parameters
    ----------
    store
        The operational store.
    reason
        Why, :data:`MIN_REASON_LENGTH` to :data:`MAX_REASON_LENGTH` characters, no
        person data.
    by
        Who pauses.
    on_change
        Called with the change inside the transaction that stores it (to write the
        audit record); if it raises, nothing is stored. Not called when nothing changes.

    Returns
    -------
    SwitchChange
        ``changed`` False when the model was paused already (its pause is kept).

    Raises
    ------
    SwitchError
        For a missing, too short or too long reason, or one that looks like person data.
    """
    checked = check_reason(reason, required=True)
    return _flip(store, "pause", checked, by, on_change)


def resume(
    store: Store, by: Actor, reason: str | None = None, *, on_change: OnChange | None = None
) -> SwitchChange:
    """End the pause: lists are the model's again.

    Parameters
    ----------
    store
        The operational store.
    by
        Who resumes.
    reason
        Optional; checked like a pause's reason when given.
    on_change
        As for :func:`pause`.

    Returns
    -------
    SwitchChange
        ``changed`` False when the model was not paused.

    Raises
    ------
    SwitchError
        For a reason that breaks the rules of :func:`pause`.
    """
    checked = check_reason(reason, required=False)
    return _flip(store, "resume", checked, by, on_change)
