"""How a message leaves: e-mail over SMTP, or a webhook with an HMAC-SHA256-signed body.

A webhook is a ``POST`` of JSON: the message's payload plus ``message_id`` and
``sent_at`` (the time of this attempt, UTC, ISO 8601). The header
``X-Stratum-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body bytes
with the subscription's secret; the same ``sent_at`` is repeated in the header
``X-Stratum-Timestamp``. Because the timestamp is inside the signed body, a
receiver that checks the signature (:func:`verify_signature`) and refuses a
``sent_at`` older than a few minutes cannot be fed a recorded request again;
``message_id`` lets it drop a redelivery it has already handled.

Any 2xx answer counts as delivered; redirects are not followed (a redirect could
lead the signed body to a host the subscription did not name).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

#: the header carrying the body's signature
SIGNATURE_HEADER = "X-Stratum-Signature"
#: the header repeating the signed ``sent_at``
TIMESTAMP_HEADER = "X-Stratum-Timestamp"
#: seconds a webhook or SMTP server may take to answer
TIMEOUT_S = 10.0


class DeliveryFailed(Exception):
    """One delivery attempt failed; the message says why (no secret, no body)."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where e-mail goes (``STRATUM_SMTP_*``).

    Attributes
    ----------
    host, port : str, int
    sender : str
        The From address.
    starttls : bool
        Upgrade the connection with STARTTLS before logging in and sending.
    username, password : str or None
        Log in when both are given.
    """

    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for a body: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    *,
    now: dt.datetime | None = None,
    tolerance: dt.timedelta = dt.timedelta(minutes=5),
) -> dict[str, Any]:
    """Check a webhook request as a receiver should, and return its JSON.

    Parameters
    ----------
    secret : str
        The subscription's secret, shown when it was created.
    body : bytes
        The request body, exactly as received.
    signature : str or None
        The ``X-Stratum-Signature`` header.
    now : datetime.datetime, optional
        The receiver's clock (default: now, UTC).
    tolerance : datetime.timedelta, default 5 minutes
        How far ``sent_at`` may lie from ``now``.

    Returns
    -------
    dict
        The verified JSON body.

    Raises
    ------
    ValueError
        When the signature is missing or wrong, or ``sent_at`` is missing or too
        far from ``now`` (a replay).
    """
    if signature is None or not hmac.compare_digest(sign(secret, body), signature):
        raise ValueError("the signature is missing or does not match the body")
    data: dict[str, Any] = json.loads(body)
    try:
        sent_at = dt.datetime.fromisoformat(data["sent_at"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the body has no valid sent_at") from None
    if abs((now or dt.datetime.now(dt.UTC)) - sent_at) > tolerance:
        raise ValueError(f"sent_at {sent_at.isoformat()} is too far from now: a replay?")
    return data


def webhook_body(payload: dict[str, Any], message_id: int, sent_at: dt.datetime) -> bytes:
    """The exact bytes a webhook attempt sends (JSON, sorted keys)."""
    body = {**payload, "message_id": message_id, "sent_at": sent_at.isoformat()}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send_webhook(
    url: str, secret: str, payload: dict[str, Any], message_id: int, sent_at: dt.datetime
) -> None:
    """POST one signed message to a webhook.

    Raises
    ------
    DeliveryFailed
        When the receiver cannot be reached or does not answer 2xx.
    """
    body = webhook_body(payload, message_id, sent_at)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "stratum-ml notifications",
            SIGNATURE_HEADER: sign(secret, body),
            TIMESTAMP_HEADER: sent_at.isoformat(),
        },
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"the webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeliveryFailed(f"the webhook cannot be reached: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"the webhook answered HTTP {status}")


def send_email(config: SmtpConfig, to: str, subject: str, body: str) -> None:
    """Send one plain-text e-mail.

    Raises
    ------
    DeliveryFailed
        When the SMTP server cannot be reached or refuses the message.
    """
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_S) as smtp:
            if config.starttls:
                smtp.starttls()
            if config.username and config.password:
                smtp.login(config.username, config.password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(
            f"the SMTP server {config.host}:{config.port} did not take it: {exc}"
        ) from None
