"""The documentation pack of a model version: write it, log it, check it, find it.

A pack is a folder:

===============================  ====================================================
file                             what
===============================  ====================================================
``algoritmeregister.json``       the register entry (publication standard 1.0.0)
``register_todo.json``           required fields still missing, optional ones the
                                 municipality should fill
``technical_file.md``            AI Act Annex IV, with the provider's part marked
``instructions_for_use.md``      AI Act Art. 13, for analysts and case handlers
``monitoring_plan.md``           AI Act Art. 72
``assessment_inputs.md``         facts for the IAMA and the DPIA
``documentation.pdf``            the four Markdown documents as one PDF
``manifest.json``                the version, the standard's source, every file's
                                 sha256 and the pack's hash over them
===============================  ====================================================

:func:`write_pack` logs the folder to the version's MLflow run under ``docs/`` and
tags the version with the pack's hash (:data:`TAG_DOCS_PACK_SHA256`) and location
(:data:`TAG_DOCS_PACK_URI`); ``stratum promote`` copies the hash into the promotion
decision, so that what was published is what was promoted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from stratum_ml.config import Settings
from stratum_ml.docs.assessments import assessment_inputs_markdown
from stratum_ml.docs.facts import VersionFacts, gather_facts
from stratum_ml.docs.organisation import Organisation
from stratum_ml.docs.pdf import markdown_to_pdf
from stratum_ml.docs.register import register_entry
from stratum_ml.docs.standard import STANDARD_VERSION, check_entry, spec_source
from stratum_ml.docs.technical import (
    instructions_markdown,
    monitoring_plan_markdown,
    technical_file_markdown,
)
from stratum_ml.io import sha256_file
from stratum_ml.monitoring.drift import DriftThresholds

__all__ = [
    "DOCS_ARTIFACT",
    "MANIFEST",
    "REGISTER_FILE",
    "TAG_DOCS_PACK_SHA256",
    "TAG_DOCS_PACK_URI",
    "Pack",
    "check_pack",
    "pack_hash",
    "pack_location",
    "render_pack",
    "write_pack",
]

#: where in the version's run the pack is logged
DOCS_ARTIFACT = "docs"
#: the version tag holding the hash of the latest pack written for it
TAG_DOCS_PACK_SHA256 = "docs_pack_sha256"
#: the version tag holding where that pack is (``runs:/<run_id>/docs``)
TAG_DOCS_PACK_URI = "docs_pack_uri"
MANIFEST = "manifest.json"
REGISTER_FILE = "algoritmeregister.json"
TODO_FILE = "register_todo.json"
PDF_FILE = "documentation.pdf"
_MARKDOWN = (
    ("technical_file.md", "Technical file"),
    ("instructions_for_use.md", "Instructions for use"),
    ("monitoring_plan.md", "Post-market monitoring plan"),
    ("assessment_inputs.md", "Assessment inputs"),
)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def pack_hash(files: dict[str, str]) -> str:
    """The pack's hash: sha256 of the sorted ``file -> sha256`` mapping as compact JSON."""
    canonical = json.dumps(dict(sorted(files.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Pack:
    """A written pack.

    Attributes
    ----------
    folder : Path
    sha256 : str
        The pack's hash (:func:`pack_hash`).
    missing : list of str
        Required register fields still missing.
    uri : str or None
        Where it was logged in MLflow (``runs:/<run_id>/docs``); None if not logged.
    """

    folder: Path
    sha256: str
    missing: list[str]
    uri: str | None


def render_pack(
    facts: VersionFacts, organisation: Organisation, thresholds: DriftThresholds
) -> dict[str, bytes]:
    """Every file of the pack but the manifest, by name, from the version's facts."""
    register = register_entry(facts, organisation)
    documents = [
        technical_file_markdown(facts),
        instructions_markdown(facts),
        monitoring_plan_markdown(facts, thresholds),
        assessment_inputs_markdown(facts),
    ]
    created = facts.run_started
    if created is None:
        raise ValueError(f"run {facts.run_id} has no start time to date the documents by")
    out = {
        REGISTER_FILE: _json(register.entry).encode("utf-8"),
        TODO_FILE: _json(
            {
                "missing_required": register.missing,
                "to_be_filled_by_municipality": register.to_review,
            }
        ).encode("utf-8"),
    }
    for (name, _), text in zip(_MARKDOWN, documents, strict=True):
        out[name] = text.encode("utf-8")
    out[PDF_FILE] = markdown_to_pdf(
        [(title, text) for (_, title), text in zip(_MARKDOWN, documents, strict=True)],
        created=created,
    )
    return out


def _prepare_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ValueError(f"{out}: not empty and not a documentation pack; choose another folder")


def write_pack(
    model: str,
    out: str | Path,
    *,
    model_name: str,
    settings: Settings,
    client: MlflowClient,
    organisation: Organisation | None = None,
    thresholds: DriftThresholds | None = None,
    log: bool = True,
) -> Pack:
    """Write the documentation pack of a version to ``out``; log it to the version's run.

    The folder is built beside ``out`` and moved into place at the end, so a failure
    leaves no half-written pack; an existing pack in ``out`` is replaced.

    Parameters
    ----------
    model : str
        Version number or alias.
    out : str or Path
        The pack's folder (new, empty, or holding an earlier pack).
    model_name : str
    settings : Settings
    client : MlflowClient
    organisation : Organisation, optional
        The municipality's part of the register entry.
    thresholds : DriftThresholds, optional
        The drift thresholds in force (default: the documented defaults).
    log : bool, default True
        Log the pack to the run and tag the version with its hash and location.

    Raises
    ------
    LookupError
        If the model, version or alias does not exist.
    ValueError
        If ``out`` is unusable or the run lacks what the documentation needs.
    """
    out = Path(out)
    _prepare_target(out)
    facts = gather_facts(model, model_name=model_name, settings=settings, client=client)
    files = render_pack(facts, organisation or Organisation(), thresholds or DriftThresholds())
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stratum-docs-", dir=out.parent) as tmp:
        staging = Path(tmp) / "pack"
        staging.mkdir()
        for name, data in files.items():
            (staging / name).write_bytes(data)
        hashes = {name: sha256_file(staging / name) for name in sorted(files)}
        digest = pack_hash(hashes)
        manifest = {
            "model_name": facts.name,
            "version": facts.version,
            "run_id": facts.run_id,
            "standard": {"name": "Algoritmeregister", "version": STANDARD_VERSION} | spec_source(),
            "files": hashes,
            "pack_sha256": digest,
        }
        (staging / MANIFEST).write_text(_json(manifest), "utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    uri = None
    if log:
        client.log_artifacts(facts.run_id, str(out), DOCS_ARTIFACT)
        uri = f"runs:/{facts.run_id}/{DOCS_ARTIFACT}"
        client.set_model_version_tag(facts.name, facts.version, TAG_DOCS_PACK_SHA256, digest)
        client.set_model_version_tag(facts.name, facts.version, TAG_DOCS_PACK_URI, uri)
    todo = json.loads(files[TODO_FILE])
    return Pack(folder=out, sha256=digest, missing=list(todo["missing_required"]), uri=uri)


def check_pack(folder: str | Path) -> list[str]:
    """Every problem of a pack; empty if it is complete, unchanged and publishable.

    Checked: the manifest is there and every file it lists has the recorded sha256
    (no file changed, none missing, none extra), the pack hash matches, and the
    register entry conforms to publication standard 1.0.0
    (:func:`~stratum_ml.docs.standard.check_entry`).

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of str
        One sentence per problem, naming the file or field.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    try:
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{MANIFEST}: missing or unreadable ({exc.__class__.__name__})"]
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        return [f"{MANIFEST}: lists no files"]
    problems = []
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST}
    problems += [f"{name}: not listed in the manifest" for name in sorted(present - set(files))]
    for name, digest in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: listed in the manifest but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: changed since the pack was written (sha256 differs)")
    if manifest.get("pack_sha256") != pack_hash(files):
        problems.append(f"{MANIFEST}: pack_sha256 does not match the files it lists")
    try:
        entry = json.loads((folder / REGISTER_FILE).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [*problems, f"{REGISTER_FILE}: missing or not JSON ({exc.__class__.__name__})"]
    problems += [f"{REGISTER_FILE}: {p}" for p in check_entry(entry)]
    return problems


def pack_location(model_name: str, version: str, client: MlflowClient) -> str | None:
    """Where the latest documentation pack of a version is logged, for the model page.

    Returns
    -------
    str or None
        ``runs:/<run_id>/docs`` (MLflow artifact URI), or None if no pack was written.
    """
    tags = client.get_model_version(model_name, version).tags or {}
    uri = tags.get(TAG_DOCS_PACK_URI)
    return str(uri) if uri else None
