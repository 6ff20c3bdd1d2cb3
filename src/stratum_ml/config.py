"""Settings from the environment (``STRATUM_*``).

Nothing happens at import time: call :func:`get_settings` where settings are
needed. The run configuration for training lives in ``training.config``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where stratum_ml keeps its state. Every field can be set as ``STRATUM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="STRATUM_", extra="ignore")

    home: Path = Field(
        default=Path(".stratum"),
        description="Folder for local state: MLflow store, operational store, keys, audit log.",
    )
    mlflow_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI; default: SQLite under `home`.",
    )
    model_name: str = Field(default="stratum-risk", description="Registered model name.")
    database_url: str | None = Field(
        default=None,
        description=(
            "The operational store (decisions, visit outcomes): a SQLAlchemy URL, e.g. "
            "postgresql+psycopg://user@host/db; default: SQLite under `home`."
        ),
    )

    public_url: str = Field(
        default="http://localhost:3000",
        description="Where people open the service; notifications link <public_url>/app/?run=RUN.",
    )
    smtp_host: str = Field(default="localhost", description="SMTP server for e-mail notifications.")
    smtp_port: int = Field(default=25, description="Port of the SMTP server.")
    smtp_from: str = Field(
        default="stratum@localhost", description="Sender address of e-mail notifications."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS before sending."
    )
    smtp_username: str | None = Field(default=None, description="SMTP login, if the server asks.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    notify_max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts before a notification is dead-lettered."
    )
    notify_backoff_s: float = Field(
        default=60.0,
        gt=0,
        description="Wait after the first failed delivery; doubled after each further failure.",
    )

    @property
    def tracking_uri(self) -> str:
        """The MLflow URI in force: ``STRATUM_MLFLOW_URI`` or ``sqlite:///<home>/mlflow.db``."""
        if self.mlflow_uri:
            return self.mlflow_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def store_url(self) -> str:
        """The operational store in force: ``STRATUM_DATABASE_URL`` or ``<home>/stratum.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'stratum.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Artifact folder of the embedded store."""
        return (self.home / "mlartifacts").resolve()


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    return Settings()


#: the umask of stratum's processes: what they create is their owner's only
PRIVATE_UMASK = 0o077


def restrict_umask() -> int:
    """Make files and folders this process creates from now on private (0600 / 0700).

    Called by the ``stratum`` command line and the service at start-up, so that
    the MLflow store, its artifacts, the operational store, the audit log and
    every file the commands write are readable by their owner only, whatever
    the library that writes them. Returns the previous umask.
    """
    previous = os.umask(PRIVATE_UMASK)
    return previous


def _tighten(path: Path, st: os.stat_result) -> None:
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def secure_home(home: Path, *, create: bool = True) -> None:
    """Make ``home`` mode 0700 and every file and folder in it its owner's only.

    Group and other permissions are taken off what this user owns (files 0600,
    folders 0700); symbolic links are not followed. A home made by an earlier
    version (0755, ``mlflow.db`` 0644) is tightened this way on the next start.

    Parameters
    ----------
    home
        The state folder (``STRATUM_HOME``).
    create
        Create it (mode 0700) when it is missing; otherwise a missing home is left so.
    """
    if create:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = os.lstat(home)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    _tighten(home, st)
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            path = Path(root, name)
            try:
                entry = os.lstat(path)
            except FileNotFoundError:  # removed meanwhile
                continue
            if not stat.S_ISLNK(entry.st_mode):
                _tighten(path, entry)
