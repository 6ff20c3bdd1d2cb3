"""The Algoritmeregister entry of a model version (publication standard 1.0.0, in Dutch).

:func:`register_entry` fills what the software knows from the version's own run
and the registry, merges what the municipality wrote in its organisation file,
and lists every required field that is still missing: it never invents one.
Each sentence that states a fact about the version (weighting, the fairness gate,
a recorded acceptance, the precision estimate) is built from the run's config and
report; a test changes the run and sees the sentence follow.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stratum_ml.docs.facts import Precision, RunRecord, VersionFacts, names
from stratum_ml.docs.organisation import Organisation
from stratum_ml.docs.standard import LANGUAGE, STANDARD_VERSION, field_specs

__all__ = [
    "CATEGORIES",
    "SOURCE_LINKS",
    "RegisterEntry",
    "precision_sentence_nl",
    "register_entry",
    "source_tables",
]

#: the register's themes this algorithm belongs to
CATEGORIES = ("Wonen", "Openbare orde en veiligheid")
#: public descriptions of the base registers the sources come from
SOURCE_LINKS = {
    "addresses": (
        "Basisregistratie Adressen en Gebouwen (BAG)",
        "https://www.stelselcatalogus.nl/registraties/BAG",
    ),
    "registrations": ("Basisregistratie Personen (BRP)", "https://www.rvig.nl/brp"),
    "businesses": (
        "Handelsregister (KVK)",
        "https://www.vngrealisatie.nl/producten/handelsregister-hr",
    ),
    "ownership": (
        "Basisregistratie Kadaster (BRK)",
        "https://www.geobasisregistraties.nl/basisregistraties/kadaster",
    ),
}
#: per source table: what it holds, in Dutch at B1 level, naming the kind of personal data
_SOURCE_TEXT = {
    "addresses": "Gegevens over de woning uit de Basisregistratie Adressen en Gebouwen (BAG): "
    "oppervlakte, gebruiksdoel en buurt.",
    "registrations": "Inschrijvingen uit de Basisregistratie Personen (BRP): hoeveel mensen op "
    "een adres staan ingeschreven, sinds wanneer, en hoeveel verschillende families. Personen "
    "staan er alleen in onder een schuilnaam (pseudoniem), nooit met naam of BSN.",
    "water_usage": "Het waterverbruik per adres, van het drinkwaterbedrijf.",
    "energy_usage": "Het verbruik van stroom en gas per adres, van de netbeheerder.",
    "businesses": "Bedrijven die op een adres gevestigd zijn, uit het Handelsregister van de "
    "KVK (bijvoorbeeld uitzendbureaus).",
    "ownership": "Wie eigenaar is van de woning (soort eigenaar en hoeveel woningen die eigenaar "
    "heeft), uit de Basisregistratie Kadaster. Eigenaren staan er alleen in onder een "
    "schuilnaam.",
    "reports": "Meldingen over een adres die de gemeente kreeg.",
    "inspections": "Eerdere huisbezoeken en wat daarbij gevonden is. Hiervan leert het model.",
}
_TABLE_ORDER = tuple(_SOURCE_TEXT)
_P = "<p>{}</p>"


def _p(*sentences: str) -> str:
    return _P.format(html.escape(" ".join(s for s in sentences if s), quote=False))


def _ul(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i, quote=False)}</li>" for i in items) + "</ul>"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def _fit(text: str, limit: int) -> str:
    """Cut a long quoted text (a recorded reason) to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def source_tables(run: RunRecord) -> list[str]:
    """The source tables the model's features read, plus the visits it learned from."""
    used: set[str] = {"inspections"}
    catalogue = run.catalogue
    if not catalogue.empty and {"name", "sources"} <= set(catalogue.columns):
        rows = catalogue.loc[catalogue["name"].isin(run.features), "sources"]
        for cell in rows.dropna():
            used |= {s.strip() for s in str(cell).split(",") if s.strip()}
    return [t for t in _TABLE_ORDER if t in used]


def precision_sentence_nl(p: Precision | None, k: int) -> str:
    """The honest precision at ``k`` in Dutch, with a number only where the estimate is one.

    A widened region, a missing estimate or a report that marks it not estimable is
    said in words; the widened region's number is never presented as the top ``k``'s.
    """
    if p is not None and p.is_precision_at_k:
        interval = f"{p.confidence:.0%}-interval" if p.confidence else "interval"
        return (
            f"Bij de {k} adressen met de hoogste score vindt naar schatting {_pct(p.estimate)} "
            f"van de huisbezoeken een overtreding ({interval} {_pct(p.ci_low)} tot "
            f"{_pct(p.ci_high)}; geschat op {p.n} aselecte huisbezoeken)."
        )
    return (
        f"Hoe vaak een huisbezoek bij de {k} adressen met de hoogste score een overtreding "
        "vindt, is voor deze versie niet te schatten: er waren te weinig aselecte huisbezoeken "
        "bij die adressen."
    )


def weighting_sentence_nl(config: dict[str, Any]) -> str:
    """What the run did about selective labels, from its ``weighting`` setting."""
    if config.get("weighting") == "ipw":
        return (
            "Bij het trainen telt elk bezoek mee met een gewicht: het omgekeerde van de kans dat "
            f"het adres bezocht werd (afgekapt op {config.get('ipw_clip', '?')} maal het "
            "gemiddelde), als correctie voor selectieve labels."
        )
    return (
        "Er is geen weging toegepast voor selectieve labels (instelling weighting: "
        f"{config.get('weighting', 'onbekend')}): alle bezochte adressen tellen even zwaar mee. "
        "Daarom wordt de prestatie alleen op aselecte huisbezoeken geschat."
    )


def _fairness_gate(config: dict[str, Any]) -> dict[str, Any]:
    gate = config.get("fairness")
    return gate if isinstance(gate, dict) else {}


def gate_sentence_nl(facts: VersionFacts) -> str:
    """The fairness gate's rule and this version's verdict."""
    gate = _fairness_gate(facts.run.config)
    metrics = names(gate.get("metrics"), "?")
    rule = (
        f"De toets op gelijke behandeling vergelijkt groepen bewoners ({metrics}); de "
        f"verhouding tussen groepen moet tussen {gate.get('min_ratio', '?')} en "
        f"{gate.get('max_ratio', '?')} liggen."
    )
    passed = facts.run.fairness_passed
    if passed is None:
        return rule + " Voor deze versie is geen uitslag van de toets vastgelegd."
    if passed:
        return rule + " Deze versie slaagde voor de toets."
    reasons = "; ".join(facts.run.fairness_reasons) or "geen reden vastgelegd"
    return (
        rule + f" Deze versie slaagde NIET voor de toets (technische reden: {_fit(reasons, 600)})."
    )


def acceptance_sentence_nl(facts: VersionFacts) -> str:
    """A recorded acceptance of the failed gate, or that promotion requires a passed gate."""
    acceptance = facts.acceptance
    if acceptance is not None:
        return (
            f"Deze versie is toch in gebruik genomen: op {acceptance.at[:10]} heeft een "
            "medewerker het risico schriftelijk aanvaard, met als reden: "
            f"\u201c{_fit(acceptance.reason, 500)}\u201d."
        )
    if facts.run.fairness_passed is False:
        return (
            "Een versie die niet slaagt, wordt alleen in gebruik genomen als een medewerker "
            "het risico schriftelijk aanvaardt; voor deze versie is dat niet gebeurd."
        )
    return (
        "Een versie die niet slaagt, wordt alleen in gebruik genomen als een medewerker het "
        "risico schriftelijk aanvaardt; die aanvaarding wordt bij de versie vastgelegd."
    )


def frontier_sentence_nl(facts: VersionFacts) -> str:
    """That the version is a point of the fairness frontier, and why it was chosen ("" if not)."""
    f = facts.frontier
    if f is None:
        return ""
    reason = (
        f" Een medewerker koos dit punt op {f.at[:10]}, met als reden: "
        f"\u201c{_fit(f.reason, 500)}\u201d."
        if f.reason
        else " Bij deze versie is geen keuze vastgelegd."
    )
    return (
        f"Deze versie is punt {f.point} van de eerlijkheidsafweging (fairness frontier): een "
        "model getraind met de eis dat huishoudens zonder overtreding in de groepen even vaak "
        "geselecteerd worden (false-positive-rate parity), waarbij het beschermde kenmerk alleen "
        "bij het trainen gebruikt is, nooit bij het scoren." + reason
    )


def _methods(facts: VersionFacts) -> str:
    config, run = facts.run.config, facts.run
    lgbm = config.get("lightgbm", {}) if isinstance(config.get("lightgbm"), dict) else {}
    split = config.get("split", {}) if isinstance(config.get("split"), dict) else {}
    best = run.report.get("best_iteration")
    trees = (
        f"{best} beslisbomen (vroeg stoppen)" if isinstance(best, int) else "een reeks beslisbomen"
    )
    mitigation = config.get("mitigation", "none")
    k = run.headline_k
    return "".join(
        [
            _p(
                "Zelflerend algoritme: gradient boosting (LightGBM, binaire classificatie) met "
                f"{trees}, maximaal {lgbm.get('num_leaves', '?')} bladeren per boom en "
                f"leersnelheid {lgbm.get('learning_rate', '?')}.",
                f"Invoer: {len(run.features)} goedgekeurde kenmerken per adres (kenmerkenset "
                f"{run.feature_set or '?'}), berekend zoals bekend op de peildatum.",
                "Uitvoer: per adres een kans dat een huisbezoek een overtreding vindt, de "
                "volgorde, en de kenmerken die de score het meest bepaalden (TreeSHAP).",
                "Het model leert niet bij tijdens gebruik: een nieuwe versie ontstaat alleen "
                "door opnieuw trainen en wordt pas gebruikt na een vastgelegde beslissing.",
            ),
            _p(
                "Training op de oudste huisbezoeken; vroeg stoppen en kalibratie "
                f"({config.get('calibration', '?')}) op de volgende "
                f"{_pct(split.get('tune_fraction'))}; evaluatie alleen op de laatste "
                f"{_pct(split.get('holdout_fraction'))}.",
                weighting_sentence_nl(config),
                "Maatregel tegen ongelijke behandeling toegepast op het model: "
                + ("geen." if mitigation == "none" else f"{mitigation}."),
                frontier_sentence_nl(facts),
                precision_sentence_nl(run.precision(k), k),
            ),
            _final_fit_nl(facts),
        ]
    )


def _final_fit_nl(facts: VersionFacts) -> str:
    """The register's sentence on the final fit (the run's ``final_fit_until`` tag), if any."""
    until = facts.run_tags.get("final_fit_until")
    if not until:
        return ""
    return _p(
        "Het geregistreerde model is niet het geëvalueerde model: na de evaluatie is hetzelfde "
        "recept opnieuw getraind op alle huisbezoeken met een uitkomst tot en met "
        f"{until}, ook de via de dienst vastgelegde, zodat de nieuwste uitkomsten meetellen. "
        "De genoemde prestaties zijn die van het model van de tijdsplitsing, dat de "
        "evaluatiebezoeken nooit gezien heeft.",
    )


def _human_intervention() -> str:
    return _p(
        "De score is een reden om te kijken, nooit een besluit. Een analist bekijkt de "
        "lijst (zonder persoonsgegevens) en legt per adres een beslissing vast: doorzetten "
        "voor een bezoek, afwijzen, of meer informatie nodig; met wie, wanneer en waarom.",
        "Een handhaver bereidt het bezoek voor en legt de uitkomst vast; die uitkomst "
        "berust op wat ter plaatse gevonden wordt, niet op de score.",
    ) + _p(
        "Een beheerder kan het model direct stilzetten (noodstop); de dienst geeft dan "
        "de werklijst volgens de oude werkwijze (meldingen van het afgelopen jaar). "
        "Elke vraag aan het systeem wordt vastgelegd in "
        "een beveiligd logboek. Een nieuwe versie wordt alleen in gebruik genomen na "
        "controles en een vastgelegde beslissing van een mens."
    )


def _risks(facts: VersionFacts) -> str:
    k = facts.run.headline_k
    p = facts.run.precision(k)
    lines = [
        "Selectieve labels: alleen bezochte adressen hebben een uitkomst. De prestatie wordt "
        "daarom geschat op aselecte huisbezoeken; een deel van de bezoeken blijft aselect.",
        "Ongelijke behandeling: beschermde kenmerken (herkomst, geslacht) zijn nooit invoer, "
        "maar andere kenmerken kunnen ermee samenhangen. " + gate_sentence_nl(facts),
        acceptance_sentence_nl(facts),
        "Veroudering: bij elke scoringsronde wordt gemeten of de adressen afwijken van de "
        "trainingsdata (drift); bij een alarm wordt het model opnieuw getraind en beoordeeld.",
        "Fouten in registers: een verkeerde registratie kan een score verhogen of verlagen; "
        "de score is daarom nooit bewijs.",
    ]
    if p is not None and not p.is_precision_at_k:
        lines.append(
            f"Onzekere prestatie: voor de top {k} is de precisie niet te schatten; de lijst "
            "wordt met extra voorzichtigheid gebruikt."
        )
    return _ul(lines)


def _source_data(run: RunRecord) -> str:
    tables = source_tables(run)
    texts = [_SOURCE_TEXT[t] for t in tables]
    texts.append(  # every training audits fairness on the protected attributes
        "Alleen voor de toets op gelijke behandeling, en nooit als invoer van het model: "
        "per adres of er bewoners wonen die buiten Europa of buiten Nederland geboren zijn, "
        "en of er een vrouw woont. Deze gegevens staan in een aparte tabel die alleen voor "
        "deze toets gebruikt wordt."
    )
    return _ul(texts)


@dataclass(frozen=True)
class RegisterEntry:
    """A register entry and what it still lacks.

    Attributes
    ----------
    entry : dict
        Exactly publication-standard 1.0.0 fields; a field nobody filled is absent.
    missing : list of str
        Required fields still missing (to be filled by the municipality, never invented).
    to_review : list of str
        Optional fields only the municipality can fill, still empty.
    """

    entry: dict[str, Any]
    missing: list[str]
    to_review: list[str]


def register_entry(facts: VersionFacts, organisation: Organisation | None = None) -> RegisterEntry:
    """The register entry of a version: what the run says, merged with the municipality's part.

    Parameters
    ----------
    facts : VersionFacts
        The version, its run and its promotion history.
    organisation : Organisation, optional
        The municipality's part; absent fields are listed, not invented.

    Returns
    -------
    RegisterEntry
    """
    run = facts.run
    entry: dict[str, Any] = {
        "name": "Risicogestuurde prioritering van huisbezoeken",
        "description_short": (
            "Een zelflerend model zet adressen in volgorde van de kans dat een huisbezoek een "
            "overtreding vindt, zoals adresfraude, illegale kamerverhuur, overbewoning of "
            "uitbuiting. Medewerkers kiezen zelf welke adressen zij bezoeken; het model "
            "neemt geen besluiten."
        ),
        "category": list(CATEGORIES),
        "status": facts.status,
        "goal": _p(
            "Doel: de beperkte tijd voor huisbezoeken besteden aan de adressen waar de kans "
            "op een overtreding het grootst is. Zo worden meer misstanden gevonden, zoals "
            "overbewoning en uitbuiting, en worden minder bewoners zonder reden bezocht.",
            "Impact: een hoge score kan ertoe leiden dat een adres bezocht wordt. Uit de score "
            "zelf volgt geen besluit; een eventuele maatregel berust op wat bij het bezoek is "
            "vastgesteld.",
        ),
        "human_intervention": _human_intervention(),
        "risks": _risks(facts),
        "source_data": _source_data(run),
        "source_data_grouping": [
            {"title": title, "link": link}
            for table, (title, link) in SOURCE_LINKS.items()
            if table in source_tables(run)
        ],
        "methods_and_models": _methods(facts),
        "lang": LANGUAGE,
        "standard_version": STANDARD_VERSION,
        "source_id": facts.source_id,
        "tags": ", ".join(
            [
                "huisbezoek",
                "adreskwaliteit",
                "overbewoning",
                "kamerverhuur",
                "handhaving",
                "risicoprofiel",
                "gemeente",
                facts.name,
            ]
        ),
    }
    if facts.promoted_at is not None:
        entry["begin_date"] = facts.promoted_at.strftime("%Y-%m")
    if facts.status == "Buiten gebruik" and facts.replaced_at is not None:
        entry["end_date"] = facts.replaced_at.strftime("%Y-%m")
    if organisation is not None:
        entry.update(organisation.register_fields())
    specs = field_specs()
    entry = {name: entry[name] for name in specs if name in entry}  # the standard's order
    missing = [n for n, s in specs.items() if s.required and n not in entry]
    municipal: tuple[str, ...] = (
        "proportionality",
        "lawful_basis",
        "lawful_basis_grouping",
        "contact_email",
        "impacttoetsen_grouping",
        "website",
        "provider",
        "process_index_url",
        "publiccode",  # the package declares no public repository to link
    )
    to_review = [n for n in municipal if n not in entry and n not in missing]
    return RegisterEntry(entry=entry, missing=missing, to_review=to_review)


def catalogue_rows(run: RunRecord) -> pd.DataFrame:
    """The catalogue rows of the model's features (empty if the run logged no catalogue)."""
    if run.catalogue.empty or "name" not in run.catalogue.columns:
        return pd.DataFrame()
    return run.catalogue.loc[run.catalogue["name"].isin(run.features)]
