"""The web app's words, in Dutch (the default) and English.

:data:`TEXTS` holds every fixed text of the pages by key; :func:`labels` the
words for the contract's category values (outcomes, violation types, decisions,
report categories, ...). A key missing in one language is a programming error
(a test compares the two).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal

from stratum_ml.model.violation_type import VIOLATION_TYPE_LABELS
from stratum_ml.store.switch import PauseState
from stratum_ml.store.tables import DECISION_REASONS as DECISION_REASONS  # the one list

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")

TEXTS: Mapping[Language, Mapping[str, str]] = {
    "nl": {
        "app_name": "Stratum: signalen woonfraude",
        "skip": "Naar de inhoud",
        "nav_list": "Werklijst",
        "nav_model": "Model",
        "nav_areas": "Gebieden",
        "casefile": "Casusdossier (PDF)",
        "casefile_intro": "Maak van dit dossier een casusdossier voor het RIEC: alleen "
        "pseudoniemen, de redenen en het bewijs op deze pagina. Vul het doel en de rechtsgrond "
        "in; de export wordt in het auditlog en bij het adres vastgelegd.",
        "casefile_purpose": "Doel",
        "casefile_legal_basis": "Rechtsgrond",
        "casefile_purpose_hint": "Bijvoorbeeld: voorbereiding casusoverleg RIEC over "
        "mogelijke uitbuiting (geen persoonsgegevens).",
        "casefile_basis_hint": "Bijvoorbeeld: art. 4 Convenant RIEC, art. 20 Wet BRP.",
        "casefile_submit": "Casusdossier maken (PDF)",
        "casefile_needs_purpose": "Vul het doel (minstens 10 tekens) en de rechtsgrond "
        "(minstens 5 tekens) in; zonder die twee wordt geen casusdossier gemaakt.",
        "casefile_too_long": "Het doel mag hoogstens {purpose} en de rechtsgrond hoogstens "
        "{basis} tekens lang zijn.",
        "casefile_title": "Casusdossier adres {address}",
        "casefile_made": "Gemaakt",
        "casefile_source": "Bron",
        "casefile_source_text": "dossier op peildatum {date}, run {run}, modelversie {version}",
        "casefile_pseudonyms": "Dit casusdossier bevat alleen pseudoniemen van personen, "
        "families en eigenaren; herleiden kan alleen via de bronhouder.",
        "casefile_exports": "Gemaakte casusdossiers",
        "casefile_export_line": "{when}: {who} ({role}); doel: {purpose}; rechtsgrond: "
        "{basis}; sha256 {sha}",
        "model_reasons": "Redenen van het model",
        "pp": "procentpunt",
        "docs_pack": "Documentatiepakket",
        "docs_pack_at": "Het documentatiepakket van deze versie (registertekst voor het "
        "Algoritmeregister, technisch dossier, gebruiksinstructies, monitoringplan, invoer "
        "voor IAMA en DPIA) staat in {uri}:",
        "docs_pack_none": "Voor versie {version} is nog geen documentatiepakket geschreven "
        "(`stratum docs --model champion --out publish/`).",
        "areas_title": "Gebieden",
        "areas_intro": "Adressen op de werklijst van run {run} ({date}) per buurt. Aantallen "
        "van 1 tot en met {m} worden niet getoond maar als \u201cminder dan {n}\u201d.",
        "fewer_than": "minder dan {n}",
        "listed_addresses": "Adressen op de lijst",
        "areas_missing": "Er is geen kaart: de bronnen hebben geen tabel areas met de grenzen "
        "van wijken en buurten (zie de README, \u201cStreet names and areas\u201d).",
        "areas_no_neighbourhoods": "Er is geen kaart: de tabel areas heeft geen buurten.",
        "areas_mixed_crs": "Er is geen kaart: de buurtgrenzen staan niet in \u00e9\u00e9n "
        "co\u00f6rdinatenstelsel (RD New of WGS84).",
        "areas_unmapped": "{n} adressen op de lijst liggen in een buurt zonder grens.",
        "map_caption": "Kaart van de adressen op de lijst per buurt; de tabel geeft dezelfde "
        "aantallen.",
        "map_table": "Per buurt (tabel)",
        "trends_title": "Per wijk over de runs",
        "trends_caption": "Adressen op de lijst per wijk per run; de tabel geeft dezelfde "
        "aantallen.",
        "distribution_title": "Verdeling van de kans over de runs",
        "distribution_caption": "Aantal woningen per kansklasse van {w} procentpunt per run "
        "(verticale as logaritmisch); de tabel geeft dezelfde aantallen.",
        "chance_from": "Kans vanaf (%)",
        "dwellings": "Woningen",
        "run_date": "Peildatum van de run",
        "unknown": "onbekend",
        "table": "Tabel",
        "nav_dossier": "Dossier openen",
        "logout": "Uitloggen",
        "signed_in_as": "Ingelogd als",
        "switch_language": "English",
        "login_title": "Inloggen",
        "login_intro": "Log in met uw API-sleutel. De sleutel blijft op de server; uw browser "
        "krijgt alleen een sessie die na {minutes} minuten zonder activiteit vervalt.",
        "login_key": "API-sleutel",
        "login_submit": "Inloggen",
        "login_failed": "Inloggen is mislukt: {why}",
        "logged_out": "U bent uitgelogd.",
        "session_expired": "Uw sessie is verlopen of beëindigd; log opnieuw in.",
        "forbidden_title": "Geen toegang",
        "forbidden": "Deze pagina is niet bedoeld voor uw rol ({role}).",
        "csrf_refused": "Het formulier is geweigerd: het beveiligingstoken ontbreekt of "
        "klopt niet. Laad de pagina opnieuw en probeer het nog eens.",
        "not_found": "Niet gevonden: {what}",
        "list_title": "Werklijst",
        "run": "Scoringsrun",
        "run_of": "run {run} van {date}, modelversie {version}",
        "population": "{n} woningen gescoord; de lijst toont de hoogste {k}.",
        "paused": "Het model is gepauzeerd: deze lijst is de terugvalrangschikking "
        "(meldingen van het afgelopen jaar), zonder kansen of redenen.",
        "paused_title": "Het model is gepauzeerd",
        "paused_list": "Deze lijst is de terugvalrangschikking van de huidige praktijk "
        "(het aantal meldingen van het afgelopen jaar), niet die van het model: zonder kansen, "
        "redenen of vermoedelijke overtreding. Filteren op wijk en buurt, sorteren, bladeren "
        "en exporteren kunnen wel.",
        "paused_decisions": "Besluiten en bezoekuitkomsten legt u gewoon vast, zoals in de "
        "API: een pauze stopt het advies van het model, niet het werk.",
        "paused_left_out": "Weggelaten filters (die hebben het model nodig): {names}.",
        "paused_rank": "Deze rang is die van de terugvalrangschikking (meldingen van het "
        "afgelopen jaar), niet die van het model; er is geen kans en geen verklaring.",
        "reports_past_year": "Meldingen (afgelopen jaar)",
        "actor_cli": "OS-gebruiker {name} (opdrachtregel)",
        "actor_api": "{key_name} ({role}, sleutel {name})",
        "filters": "Filters",
        "district": "Wijk",
        "neighbourhood": "Buurt",
        "violation_type": "Vermoedelijke overtreding",
        "min_chance": "Minimale kans (%)",
        "only_new": "Alleen nieuw sinds de vorige run",
        "sort": "Sorteren op",
        "sort_rank": "Rang",
        "sort_chance": "Kans (hoog eerst)",
        "sort_postcode": "Postcode",
        "sort_district": "Wijk",
        "page_size": "Per pagina",
        "apply": "Toepassen",
        "all": "Alle",
        "export_csv": "CSV van deze selectie",
        "rank": "Rang",
        "address": "Adres",
        "area": "Wijk / buurt",
        "chance": "Kans",
        "reasons": "Belangrijkste redenen",
        "state": "Status",
        "decide": "Besluit",
        "no_rows": "Geen adressen voldoen aan deze filters.",
        "rows_shown": "Adressen {first} tot en met {last} van {n}.",
        "previous": "Vorige",
        "next": "Volgende",
        "page": "Pagina {page} van {pages}",
        "left_off_visited": "{n} adres(sen) recent bezocht (binnen {days} dagen) en daarom "
        "niet op de lijst.",
        "no_streets": "Straatnamen ontbreken in de bronnen: adressen staan als postcode en "
        "huisnummer.",
        "no_area_names": "Namen van wijken en buurten ontbreken in de bronnen: de CBS-codes "
        "staan er.",
        "no_violation_model": (
            "Deze run kent geen vermoedelijk soort overtreding (het model heeft er geen, of "
            "de run is opgeslagen voordat het werd bewaard): de kolom toont —."
        ),
        "state_new": "nieuw",
        "state_rank_change": "rang gewijzigd (was {previous})",
        "state_unchanged": "ongewijzigd",
        "visited": "bezocht {date}: {outcome}",
        "decision_state": "besluit: {decision}",
        "decision_open": "open",
        "decision_reason": "Reden",
        "decision_note": "Toelichting (optioneel, geen persoonsgegevens)",
        "decision_submit": "Besluit vastleggen",
        "decision_for": "Besluit over {address}",
        "decision_stored": "Besluit vastgelegd.",
        "decision_refused": "Besluit geweigerd: {why}",
        "address_title": "Adres {address}",
        "explanation": "Uitleg van de kans",
        "waterfall_note": "Bijdrage van elk kenmerk aan de kans, in procentpunten, vanaf de "
        "gemiddelde kans ({base}) tot de kans van dit adres ({chance}).",
        "other_features": "overige kenmerken",
        "base_chance": "gemiddelde kans",
        "this_chance": "kans van dit adres",
        "contribution_pp": "Bijdrage (procentpunten)",
        "rank_history": "Rang in eerdere runs",
        "decision_history": "Besluiten",
        "no_decisions": "Nog geen besluiten over dit adres.",
        "decided_at": "Wanneer",
        "decided_by": "Door",
        "open_dossier_title": "Dossier openen",
        "open_dossier_intro": "Voer het adres-id (BAG verblijfsobject, 16 cijfers) in van het "
        "adres dat aan u is toegewezen. Het openen wordt vastgelegd in het auditlog.",
        "address_id": "Adres-id",
        "open": "Openen",
        "dossier_title": "Dossier {address}",
        "dossier_note": "Personen staan onder pseudoniem. Stand op {date}. Het openen van dit "
        "dossier is vastgelegd in het auditlog.",
        "registrations": "Inschrijvingen",
        "person": "Persoon (pseudoniem)",
        "family": "Familie (pseudoniem)",
        "birth_year": "Geboortejaar",
        "from": "Van",
        "until": "Tot",
        "still": "nog ingeschreven",
        "water": "Waterverbruik per jaar tegen verwacht",
        "water_note": "Verwacht: {per_person} m³ per ingeschreven persoon per jaar.",
        "water_actual": "gemeten",
        "water_expected": "verwacht",
        "year": "Jaar",
        "reports": "Meldingen",
        "visits": "Bezoeken en uitkomsten",
        "recorded_here": "vastgelegd in deze app of via de API",
        "businesses": "Bedrijven",
        "owners": "Eigenaar",
        "portfolio": "{n} adressen in bezit van deze eigenaar",
        "portfolio_one": "1 adres in bezit van deze eigenaar",
        "ongoing": "heden",
        "linked": "Gekoppelde adressen",
        "link_kind": "Soort koppeling",
        "network_alt": "Netwerk van dit adres (midden) en {n} gekoppelde adressen eromheen; "
        "kleur en streepjes van een lijn geven het soort koppeling. De lijst hieronder noemt "
        "elk adres met een link naar zijn dossier.",
        "network_capped": "Getekend zijn de eerste {drawn}.",
        "linked_more": "En nog {n} koppelingen, niet getoond.",
        "via": "via",
        "none": "Geen.",
        "outcome_form": "Uitkomst van een bezoek vastleggen",
        "visit_date": "Datum van het bezoek",
        "visit_reason": "Aanleiding",
        "outcome": "Uitkomst",
        "outcome_submit": "Uitkomst vastleggen",
        "outcome_stored": "Uitkomst vastgelegd; de volgende training leest hem als bezoek.",
        "outcome_refused": "Uitkomst geweigerd: {why}",
        "model_title": "Het model",
        "model_version": "Versie {version} ({alias}), getraind op {start} tot {end}",
        "pause_on": "Het model is gepauzeerd sinds {since} door {by}: {reason}",
        "pause_off": "Het model is actief (niet gepauzeerd).",
        "honest_metrics": "Eerlijke precisie (op aselecte bezoeken), met 95%-interval",
        "top_k": "Top k",
        "estimate": "Schatting",
        "interval": "Interval",
        "n_visits": "Aselecte bezoeken",
        "fairness": "Eerlijkheid per groep",
        "fairness_passed": "De eerlijkheidstoets is geslaagd.",
        "fairness_failed": "De eerlijkheidstoets is niet geslaagd.",
        "risk_accepted": "Risico aanvaard: {text}",
        "drift": "Drift van de huidige run",
        "drift_yes": "Drift gevonden.",
        "drift_no": "Geen drift gevonden.",
        "drift_unknown": "Drift niet bepaald.",
        "feature": "Kenmerk",
        "status": "Status",
        "model_card": "Modelkaart",
        "chart_alt": "Grafiek; dezelfde cijfers staan in de tabel eronder.",
        "lang_name": "Nederlands",
    },
    "en": {
        "app_name": "Stratum: housing fraud signals",
        "skip": "Skip to content",
        "nav_list": "Work list",
        "nav_model": "Model",
        "nav_areas": "Areas",
        "casefile": "Case file (PDF)",
        "casefile_intro": "Export this dossier as a case file for the RIEC: pseudonyms "
        "only, the reasons and the evidence on this page. Enter the purpose and the legal "
        "basis; the export is recorded in the audit log and on the address.",
        "casefile_purpose": "Purpose",
        "casefile_legal_basis": "Legal basis",
        "casefile_purpose_hint": "For example: preparing the RIEC case meeting on possible "
        "exploitation (no personal data).",
        "casefile_basis_hint": "For example: art. 4 RIEC covenant, art. 20 Wet BRP.",
        "casefile_submit": "Make the case file (PDF)",
        "casefile_needs_purpose": "Enter the purpose (at least 10 characters) and the legal "
        "basis (at least 5 characters); without both no case file is made.",
        "casefile_too_long": "The purpose may be at most {purpose} and the legal basis at "
        "most {basis} characters long.",
        "casefile_title": "Case file address {address}",
        "casefile_made": "Made",
        "casefile_source": "Source",
        "casefile_source_text": "dossier as of {date}, run {run}, model version {version}",
        "casefile_pseudonyms": "This case file holds pseudonyms of persons, families and "
        "owners only; only the source holder can trace them back.",
        "casefile_exports": "Case files made",
        "casefile_export_line": "{when}: {who} ({role}); purpose: {purpose}; legal basis: "
        "{basis}; sha256 {sha}",
        "model_reasons": "The model's reasons",
        "pp": "percentage points",
        "docs_pack": "Documentation pack",
        "docs_pack_at": "This version's documentation pack (the Algoritmeregister entry, "
        "technical file, instructions for use, monitoring plan, inputs for the IAMA and the "
        "DPIA) is at {uri}:",
        "docs_pack_none": "No documentation pack has been written for version {version} yet "
        "(`stratum docs --model champion --out publish/`).",
        "areas_title": "Areas",
        "areas_intro": "Addresses on the work list of run {run} ({date}) per neighbourhood. "
        "Counts from 1 to {m} are not shown but as \u201cfewer than {n}\u201d.",
        "fewer_than": "fewer than {n}",
        "listed_addresses": "Listed addresses",
        "areas_missing": "There is no map: the sources have no areas table with the "
        "boundaries of districts and neighbourhoods (see the README, \u201cStreet names and "
        "areas\u201d).",
        "areas_no_neighbourhoods": "There is no map: the areas table has no neighbourhoods.",
        "areas_mixed_crs": "There is no map: the neighbourhood boundaries are not in one "
        "coordinate system (RD New or WGS84).",
        "areas_unmapped": "{n} listed addresses lie in a neighbourhood without a boundary.",
        "map_caption": "Map of the listed addresses per neighbourhood; the table gives the "
        "same counts.",
        "map_table": "Per neighbourhood (table)",
        "trends_title": "Per district over runs",
        "trends_caption": "Listed addresses per district per run; the table gives the same counts.",
        "distribution_title": "Distribution of the chance over runs",
        "distribution_caption": "Dwellings per chance band of {w} percentage points per run "
        "(vertical axis logarithmic); the table gives the same counts.",
        "chance_from": "Chance from (%)",
        "dwellings": "Dwellings",
        "run_date": "Run date",
        "unknown": "unknown",
        "table": "Table",
        "nav_dossier": "Open a dossier",
        "logout": "Log out",
        "signed_in_as": "Signed in as",
        "switch_language": "Nederlands",
        "login_title": "Log in",
        "login_intro": "Log in with your API key. The key stays on the server; your browser only "
        "gets a session that ends after {minutes} minutes without activity.",
        "login_key": "API key",
        "login_submit": "Log in",
        "login_failed": "Login failed: {why}",
        "logged_out": "You are logged out.",
        "session_expired": "Your session expired or ended; please log in again.",
        "forbidden_title": "No access",
        "forbidden": "This page is not meant for your role ({role}).",
        "csrf_refused": "The form was refused: its security token is missing or wrong. "
        "Reload the page and try again.",
        "not_found": "Not found: {what}",
        "list_title": "Work list",
        "run": "Scoring run",
        "run_of": "run {run} of {date}, model version {version}",
        "population": "{n} dwellings scored; the list shows the top {k}.",
        "paused": "The model is paused: this list is the fallback ranking (reports in the past "
        "year), without chances or reasons.",
        "paused_title": "The model is paused",
        "paused_list": "This list is the fallback ranking of current practice (the number of "
        "reports in the past year), not the model's: no chances, reasons or likely violation "
        "type. Filtering by district and neighbourhood, sorting, paging and exporting still "
        "work.",
        "paused_decisions": "Decisions and visit outcomes are recorded as usual, as in the API: "
        "a pause stops the model's advice, not the work.",
        "paused_left_out": "Filters left out (they need the model): {names}.",
        "paused_rank": "This rank is the fallback ranking's (reports in the past year), not "
        "the model's; there is no chance and no explanation.",
        "reports_past_year": "Reports (past year)",
        "actor_cli": "OS user {name} (command line)",
        "actor_api": "{key_name} ({role}, key {name})",
        "filters": "Filters",
        "district": "District",
        "neighbourhood": "Neighbourhood",
        "violation_type": "Likely violation",
        "min_chance": "Minimum chance (%)",
        "only_new": "Only new since the previous run",
        "sort": "Sort by",
        "sort_rank": "Rank",
        "sort_chance": "Chance (high first)",
        "sort_postcode": "Postcode",
        "sort_district": "District",
        "page_size": "Per page",
        "apply": "Apply",
        "all": "All",
        "export_csv": "CSV of this selection",
        "rank": "Rank",
        "address": "Address",
        "area": "District / neighbourhood",
        "chance": "Chance",
        "reasons": "Main reasons",
        "state": "State",
        "decide": "Decision",
        "no_rows": "No address passes these filters.",
        "rows_shown": "Addresses {first} to {last} of {n}.",
        "previous": "Previous",
        "next": "Next",
        "page": "Page {page} of {pages}",
        "left_off_visited": "{n} address(es) visited recently (within {days} days), so not on "
        "the list.",
        "no_streets": "Street names are missing from the sources: addresses show as postcode "
        "and house number.",
        "no_area_names": "District and neighbourhood names are missing from the sources: the "
        "CBS codes are shown.",
        "no_violation_model": (
            "This run has no likely violation type (the model has none, or the run was "
            "stored before it was kept): the column shows —."
        ),
        "state_new": "new",
        "state_rank_change": "rank changed (was {previous})",
        "state_unchanged": "unchanged",
        "visited": "visited {date}: {outcome}",
        "decision_state": "decision: {decision}",
        "decision_open": "open",
        "decision_reason": "Reason",
        "decision_note": "Note (optional, no person data)",
        "decision_submit": "Record decision",
        "decision_for": "Decision on {address}",
        "decision_stored": "Decision recorded.",
        "decision_refused": "Decision refused: {why}",
        "address_title": "Address {address}",
        "explanation": "Why this chance",
        "waterfall_note": "Each feature's contribution to the chance, in percentage points, from "
        "the average chance ({base}) to this address's chance ({chance}).",
        "other_features": "other features",
        "base_chance": "average chance",
        "this_chance": "this address's chance",
        "contribution_pp": "Contribution (percentage points)",
        "rank_history": "Rank in past runs",
        "decision_history": "Decisions",
        "no_decisions": "No decisions on this address yet.",
        "decided_at": "When",
        "decided_by": "By",
        "open_dossier_title": "Open a dossier",
        "open_dossier_intro": "Enter the address id (BAG verblijfsobject, 16 digits) of the "
        "address assigned to you. Opening it is recorded in the audit log.",
        "address_id": "Address id",
        "open": "Open",
        "dossier_title": "Dossier {address}",
        "dossier_note": "People appear under pseudonyms. As known on {date}. Opening this dossier "
        "was recorded in the audit log.",
        "registrations": "Registrations",
        "person": "Person (pseudonym)",
        "family": "Family (pseudonym)",
        "birth_year": "Birth year",
        "from": "From",
        "until": "Until",
        "still": "still registered",
        "water": "Water use per year against expected",
        "water_note": "Expected: {per_person} m³ per registered person per year.",
        "water_actual": "metered",
        "water_expected": "expected",
        "year": "Year",
        "reports": "Reports",
        "visits": "Visits and outcomes",
        "recorded_here": "recorded in this app or through the API",
        "businesses": "Businesses",
        "owners": "Owner",
        "portfolio": "{n} addresses owned by this owner",
        "portfolio_one": "1 address owned by this owner",
        "ongoing": "now",
        "linked": "Linked addresses",
        "link_kind": "Kind of link",
        "network_alt": "Network of this address (centre) and {n} linked addresses around it; "
        "the colour and dashes of a line give the kind of link. The list below names every "
        "address with a link to its dossier.",
        "network_capped": "The first {drawn} are drawn.",
        "linked_more": "And {n} more links, not shown.",
        "via": "via",
        "none": "None.",
        "outcome_form": "Record a visit outcome",
        "visit_date": "Date of the visit",
        "visit_reason": "Reason for the visit",
        "outcome": "Outcome",
        "outcome_submit": "Record outcome",
        "outcome_stored": "Outcome recorded; the next training reads it as a visit.",
        "outcome_refused": "Outcome refused: {why}",
        "model_title": "The model",
        "model_version": "Version {version} ({alias}), trained on {start} to {end}",
        "pause_on": "The model is paused since {since} by {by}: {reason}",
        "pause_off": "The model is running (not paused).",
        "honest_metrics": "Honest precision (on random visits), with 95% interval",
        "top_k": "Top k",
        "estimate": "Estimate",
        "interval": "Interval",
        "n_visits": "Random visits",
        "fairness": "Fairness by group",
        "fairness_passed": "The fairness check passed.",
        "fairness_failed": "The fairness check did not pass.",
        "risk_accepted": "Risk accepted: {text}",
        "drift": "Drift of the current run",
        "drift_yes": "Drift found.",
        "drift_no": "No drift found.",
        "drift_unknown": "Drift not determined.",
        "feature": "Feature",
        "status": "Status",
        "model_card": "Model card",
        "chart_alt": "Chart; the same figures are in the table below it.",
        "lang_name": "English",
    },
}

_LABELS: Mapping[Language, Mapping[str, str]] = {
    "nl": {
        "violation": "overtreding",
        "no_violation": "geen overtreding",
        "inconclusive": "geen uitsluitsel",
        "address_fraud": "adresfraude",
        "illegal_subletting": "illegale onderhuur",
        "overcrowding": "overbewoning",
        "illegal_room_rental": "illegale kamerverhuur",
        "exploitation": "uitbuiting",
        "other": "anders",
        "pass_on_for_visit": "doorzetten voor bezoek",
        "decline": "niet bezoeken",
        "needs_more_information": "meer informatie nodig",
        "random_sample": "steekproef",
        "report": "melding",
        "risk_model": "risicomodel",
        "project": "project",
        "nuisance": "overlast",
        "pollution": "vervuiling",
        "subletting": "onderhuur",
        "resident": "bewoner",
        "police": "politie",
        "housing_association": "woningcorporatie",
        "municipality": "gemeente",
        "anonymous": "anoniem",
        "natural_person": "natuurlijk persoon",
        "company": "bedrijf",
        "owner": "eigenaar",
        "business": "bedrijf",
        "district": "wijk",
        "neighbourhood": "buurt",
        "analyst": "analist",
        "case_handler": "casusbehandelaar",
        "application": "applicatie",
        "admin": "beheerder",
    },
    "en": {
        "violation": "violation",
        "no_violation": "no violation",
        "inconclusive": "inconclusive",
        "address_fraud": "address fraud",
        "illegal_subletting": "illegal subletting",
        "overcrowding": "overcrowding",
        "illegal_room_rental": "illegal room rental",
        "exploitation": "exploitation",
        "other": "other",
        "pass_on_for_visit": "pass on for a visit",
        "decline": "do not visit",
        "needs_more_information": "needs more information",
        "random_sample": "random sample",
        "report": "report",
        "risk_model": "risk model",
        "project": "project",
        "nuisance": "nuisance",
        "pollution": "pollution",
        "subletting": "subletting",
        "resident": "resident",
        "police": "police",
        "housing_association": "housing association",
        "municipality": "municipality",
        "anonymous": "anonymous",
        "natural_person": "natural person",
        "company": "company",
        "owner": "owner",
        "business": "business",
        "district": "district",
        "neighbourhood": "neighbourhood",
        "analyst": "analyst",
        "case_handler": "case handler",
        "application": "application",
        "admin": "admin",
    },
}


def text(language: Language, key: str, **values: object) -> str:
    """The fixed text ``key`` in ``language``, with ``values`` filled in."""
    words = TEXTS[language][key]
    return words.format(**values) if values else words


def label(language: Language, value: object) -> str:
    """A category value in words; the value itself when it has no words."""
    if value is None:
        return ""
    words = _LABELS[language].get(str(value))
    if words is None:  # the likely violation type's groups
        words = VIOLATION_TYPE_LABELS[language].get(str(value), str(value))
    return words


def chance(language: Language, probability: float | None) -> str:
    """A probability as a percentage with one decimal, in the language's notation."""
    if probability is None:
        return ""
    words = f"{100 * probability:.1f} %"
    return words.replace(".", ",") if language == "nl" else words


def pause_words(language: Language, pause: PauseState) -> dict[str, str]:
    """``since``, ``by`` and ``reason`` of a pause, for the ``pause_on`` sentence.

    ``since`` to the minute in UTC; ``by`` the key's name and role (or the OS user at the
    command line) in the page's language.
    """
    actor = pause.by
    if actor.channel == "cli":
        by = text(language, "actor_cli", name=actor.name)
    else:
        by = text(
            language,
            "actor_api",
            key_name=actor.key_name or actor.name,
            role=label(language, actor.role),
            name=actor.name,
        )
    since = pause.since
    if since.tzinfo is not None:
        since = since.astimezone(dt.UTC)
    return {"since": since.strftime("%Y-%m-%d %H:%M UTC"), "by": by, "reason": pause.reason}


def portfolio_words(language: Language, n: int) -> str:
    """The size of an owner's portfolio in words, singular or plural."""
    return text(language, "portfolio_one") if n == 1 else text(language, "portfolio", n=n)
