"""The documentation pack of a model version: register entry, technical file, assessments.

=====================  ==============================================================
module                 what
=====================  ==============================================================
:mod:`.standard`       Algoritmeregister publication standard 1.0.0: field list, check
:mod:`.facts`          what may be said about a version: read from its run and registry
:mod:`.organisation`   what only the municipality knows (``examples/organisation.yaml``)
:mod:`.register`       the register entry (Dutch), merged with the municipality's part
:mod:`.technical`      AI Act Annex IV file, instructions for use, monitoring plan
:mod:`.assessments`    facts for the IAMA and the DPIA
:mod:`.pdf`            the Markdown documents as one PDF (fpdf2)
:mod:`.pack`           write, log, check and locate a pack
=====================  ==============================================================

The service may read this package (``pack_location``); it imports nothing from
``training``.
"""

from stratum_ml.docs.pack import Pack, check_pack, pack_location, write_pack
from stratum_ml.docs.standard import check_entry, field_specs

__all__ = ["Pack", "check_entry", "check_pack", "field_specs", "pack_location", "write_pack"]
