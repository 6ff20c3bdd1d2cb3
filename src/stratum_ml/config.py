"""Settings from the environment (``STRATUM_*``).

Nothing happens at import time: call :func:`get_settings` where settings are
needed. The run configuration for training lives in ``training.config``.
"""

from __future__ import annotations

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
