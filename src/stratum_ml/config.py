"""Settings from the environment (``STRATUM_*``).

Nothing happens at import time: call :func:`get_settings` where settings are
needed. The run configuration for training lives in ``training.config``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
