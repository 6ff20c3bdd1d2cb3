"""The web app in a real browser (Chromium) against a real ``bentoml serve``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from stratum_ml.serving.auth import Role
from stratum_ml.sources import load_sources
from tests.serving.conftest import Server

pytestmark = pytest.mark.slow

AXE_BLOCKING = ("serious", "critical")


def _login(browser: Browser, server: Server, role: Role) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server.url}/app/login")
    page.get_by_label("API-sleutel").fill(server.keys[role])
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_load_state("networkidle")
    return context, page


def _axe(page: Page, server: Server) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations on the page (axe-core, served locally)."""
    page.add_script_tag(url=f"{server.url}/app/static/vendor/axe.min.js")
    result = page.evaluate(
        "async () => { const r = await axe.run(document, "
        "{runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})); }"
    )
    return [v for v in result if v["impact"] in AXE_BLOCKING]


def _check_page(page: Page, server: Server, screenshots: Path, name: str) -> None:
    """Every chart drew an SVG with marks, axe finds nothing serious; save a screenshot."""
    for chart in page.locator("div.vega").all():
        expect(chart).to_have_attribute("data-rendered", "1", timeout=20_000)
        marks = chart.locator(
            "svg g[class*='mark-'] path, svg g[class*='mark-'] line, "
            "svg g[class*='mark-'] rect, svg g[class*='mark-'] circle"
        )
        assert marks.count() > 0, f"{name}: chart {chart.get_attribute('id')} has no marks"
    assert _axe(page, server) == [], f"{name}: accessibility violations"
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def _top_address(server: Server) -> str:
    answer = httpx.post(
        f"{server.url}/priority_list",
        json={"k": 1},
        headers={"Authorization": f"Bearer {server.keys[Role.ANALYST]}"},
        timeout=60,
    )
    answer.raise_for_status()
    return str(answer.json()["items"][0]["address_id"])


def _audit_records(server: Server) -> list[dict[str, Any]]:
    lines = server.audit_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    ("role", "heading"),
    [
        (Role.ANALYST, "Werklijst"),
        (Role.ADMIN, "Werklijst"),
        (Role.CASE_HANDLER, "Dossier openen"),
        (Role.APPLICATION, "Het model"),
    ],
)
def test_login_and_logout_per_role(
    browser: Browser, server: Server, screenshots: Path, role: Role, heading: str
) -> None:
    context, page = _login(browser, server, role)
    cookie = next(c for c in context.cookies() if c["name"] == "stratum_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    if role is Role.CASE_HANDLER:
        _check_page(page, server, screenshots, "dossier-open")
    page.get_by_role("button", name="Uitloggen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Inloggen")
    expect(page.get_by_text("U bent uitgelogd.")).to_be_visible()
    page.goto(f"{server.url}/app/model")  # the ended session opens nothing
    expect(page.get_by_role("heading", level=1)).to_have_text("Inloggen")
    context.close()


def test_a_wrong_key_is_refused_and_audited(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.url}/app/login")
    _check_page(page, server, screenshots, "login")
    page.get_by_label("API-sleutel").fill(server.revoked_key)
    page.get_by_role("button", name="Inloggen").click()
    expect(page.get_by_role("alert")).to_contain_text("revoked")
    assert page.get_by_label("API-sleutel").input_value() == ""  # the key is not echoed
    last = _audit_records(server)[-1]
    assert (last["endpoint"], last["status"]) == ("app/login", 401)
    context.close()


def test_work_list_shows_the_top_address_and_filters_change_rows(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    top = _top_address(server)
    addresses = load_sources(server.sources).addresses.set_index("address_id")
    context, page = _login(browser, server, Role.ANALYST)
    first = page.locator("table.worklist tbody tr").first
    assert first.get_attribute("data-address-id") == top
    expect(first).to_contain_text(str(addresses.loc[top, "postcode"]))
    if "street_name" in addresses.columns:
        expect(first).to_contain_text(str(addresses.loc[top, "street_name"]))
    else:
        expect(page.get_by_text("Straatnamen ontbreken in de bronnen")).to_be_visible()
    _check_page(page, server, screenshots, "work-list")

    rows = page.locator("table.worklist tbody tr")
    before = [r.get_attribute("data-address-id") for r in rows.all()]
    top_area = first.get_attribute("data-neighbourhood")
    options = page.locator("#f-neighbourhood option").all()
    area = next(v for v in (o.get_attribute("value") for o in options) if v and v != top_area)
    page.select_option("#f-neighbourhood", area)
    expect(rows.first).to_have_attribute("data-neighbourhood", area)
    after = [r.get_attribute("data-address-id") for r in rows.all()]
    assert after and after != before
    assert {r.get_attribute("data-neighbourhood") for r in rows.all()} == {area}
    page.select_option("#f-neighbourhood", "")
    page.fill("#f-min", "100")
    page.locator("#f-min").dispatch_event("change")
    expect(page.get_by_text("Geen adressen voldoen aan deze filters.")).to_be_visible()
    context.close()


def test_a_decision_in_the_browser_shows_in_the_list_and_the_audit_log(
    browser: Browser, server: Server
) -> None:
    context, page = _login(browser, server, Role.ANALYST)
    row = page.locator("table.worklist tbody tr").nth(20)
    address = row.get_attribute("data-address-id")
    row.locator("summary").click()
    row.get_by_label("meer informatie nodig").check()
    row.get_by_label("Reden").select_option("too_little_information")
    row.get_by_label("Toelichting (optioneel, geen persoonsgegevens)").fill("browser test")
    row.get_by_role("button", name="Besluit vastleggen").click()
    expect(page.get_by_text("Besluit vastgelegd.")).to_be_visible()
    expect(page.locator(f"#a{address}")).to_contain_text("besluit: meer informatie nodig")
    records = [r for r in _audit_records(server) if r["endpoint"] == "app/decision"]
    assert records and records[-1]["address_ids"] == [address]
    assert records[-1]["status"] == 303 and records[-1]["detail"] == ""
    decided = httpx.post(
        f"{server.url}/decisions",
        json={"address_id": address},
        headers={"Authorization": f"Bearer {server.keys[Role.ANALYST]}"},
        timeout=60,
    ).json()
    assert decided["decisions"][-1]["decision"] == "needs_more_information"
    last = decided["decisions"][-1]
    assert (last["reason"], last["note"]) == ("too_little_information", "browser test")
    context.close()


def test_address_and_model_pages_draw_their_charts(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    top = _top_address(server)
    context, page = _login(browser, server, Role.ANALYST)
    page.goto(f"{server.url}/app/address/{top}")
    assert page.locator("#chart-waterfall").count() == 1
    assert page.locator("#chart-history").count() == 1
    _check_page(page, server, screenshots, "address")
    page.goto(f"{server.url}/app/model")
    assert page.locator("#chart-fairness").count() == 1
    _check_page(page, server, screenshots, "model")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The model")
    page.get_by_role("button", name="Nederlands").click()
    context.close()


def test_an_analyst_gets_403_on_a_dossier(browser: Browser, server: Server) -> None:
    top = _top_address(server)
    context, page = _login(browser, server, Role.ANALYST)
    answer = page.goto(f"{server.url}/app/dossier/{top}")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("alert")).to_have_text(
        "Deze pagina is niet bedoeld voor uw rol (analist)."
    )
    last = _audit_records(server)[-1]
    assert (last["endpoint"], last["status"], last["address_ids"]) == ("app/dossier", 403, [top])
    context.close()


def test_a_case_handler_opens_a_dossier_and_records_a_visit_outcome(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    tables = load_sources(server.sources)
    # an address off the work list, with water use: the visit changes no other test's list
    listed = httpx.post(
        f"{server.url}/priority_list",
        json={"k": 500},
        headers={"Authorization": f"Bearer {server.keys[Role.ANALYST]}"},
        timeout=60,
    ).json()
    on_list = {i["address_id"] for i in listed["items"]}
    assert tables.water_usage is not None
    with_water = set(tables.water_usage["address_id"].astype(str))
    address = next(
        a for a in tables.addresses["address_id"] if a not in on_list and a in with_water
    )
    context, page = _login(browser, server, Role.CASE_HANDLER)
    page.get_by_label("Adres-id").fill(address)
    page.get_by_role("button", name="Openen").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dossier")
    last = _audit_records(server)[-1]
    assert (last["endpoint"], last["status"], last["address_ids"]) == (
        "app/dossier",
        200,
        [address],
    )
    _check_page(page, server, screenshots, "dossier")
    visit_day = server.as_of - dt.timedelta(days=30)
    page.get_by_label("Datum van het bezoek").fill(visit_day.isoformat())
    page.get_by_label("Uitkomst", exact=True).select_option("violation")
    page.get_by_label("Vermoedelijke overtreding").select_option("overcrowding")
    page.get_by_role("button", name="Uitkomst vastleggen").click()
    expect(page.get_by_text("Uitkomst vastgelegd")).to_be_visible()
    expect(page.locator("#visits")).to_contain_text(f"{visit_day}: overtreding (overbewoning)")
    context.close()


def test_a_post_without_the_csrf_token_is_refused(browser: Browser, server: Server) -> None:
    top = _top_address(server)
    context, page = _login(browser, server, Role.ANALYST)
    answer = context.request.post(
        f"{server.url}/app/decision",
        form={"address_id": top, "decision": "decline", "reason": "too_little_information"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "beveiligingstoken" in answer.text()
    wrong = context.request.post(
        f"{server.url}/app/logout", form={"csrf": "not-the-token"}, max_redirects=0
    )
    assert wrong.status == 403
    page.goto(f"{server.url}/app/")  # still logged in
    expect(page.get_by_role("heading", level=1)).to_have_text("Werklijst")
    context.close()


def test_the_areas_page_maps_every_neighbourhood_and_draws_its_charts(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    tables = load_sources(server.sources)
    assert tables.areas is not None
    neighbourhoods = int((tables.areas["level"] == "neighbourhood").sum())
    context, page = _login(browser, server, Role.ANALYST)
    page.get_by_role("link", name="Gebieden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gebieden")
    chart = page.locator("#chart-map")
    expect(chart).to_have_attribute("data-rendered", "1", timeout=20_000)
    assert chart.locator("svg g.mark-shape path").count() == neighbourhoods
    assert page.locator("#map-table tbody tr").count() == neighbourhoods
    shown = [(c.text_content() or "").strip() for c in page.locator("#map-table td.num").all()]
    assert all(s == "minder dan 5" or s == "0" or int(s) >= 5 for s in shown)
    assert page.locator("#chart-trends").count() == 1
    assert page.locator("#chart-distribution").count() == 1
    _check_page(page, server, screenshots, "areas")
    last = [r for r in _audit_records(server) if r["endpoint"] == "app/areas"][-1]
    assert last["status"] == 200 and last["address_ids"] == []
    context.close()
    context, page = _login(browser, server, Role.CASE_HANDLER)
    answer = page.goto(f"{server.url}/app/areas")
    assert answer is not None and answer.status == 403
    context.close()


def test_a_case_handler_exports_a_case_file_only_with_purpose_and_legal_basis(
    browser: Browser, server: Server
) -> None:
    top = _top_address(server)
    context, page = _login(browser, server, Role.CASE_HANDLER)
    page.goto(f"{server.url}/app/dossier/{top}")
    expect(page.locator("#model-reasons li").first).to_be_visible()
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = context.request.post(
        f"{server.url}/app/dossier/{top}/casefile",
        form={"csrf": token or "", "purpose": "", "legal_basis": "art. 4 Convenant RIEC"},
        max_redirects=0,
    )
    assert refused.status == 422
    assert "zonder die twee wordt geen casusdossier gemaakt" in refused.text()
    page.get_by_label("Doel").fill("voorbereiding casusoverleg RIEC")
    page.get_by_label("Rechtsgrond").fill("art. 4 Convenant RIEC")
    with page.expect_download() as download:
        page.get_by_role("button", name="Casusdossier maken (PDF)").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    words = pdf.decode("latin-1")
    assert "voorbereiding casusoverleg RIEC" in words and "Convenant RIEC" in words
    tables = load_sources(server.sources)
    stays = tables.registrations.loc[tables.registrations["address_id"] == top]
    for person in stays["person_id"].astype(str).head(3):
        assert person in words  # the pseudonyms the page shows
    records = [r for r in _audit_records(server) if r["endpoint"] == "app/casefile"]
    assert [r["status"] for r in records[-2:]] == [422, 200]
    assert records[-1]["address_ids"] == [top] and "exported" in records[-1]["detail"]
    page.goto(f"{server.url}/app/dossier/{top}")
    expect(page.locator("#casefile-exports")).to_contain_text("voorbereiding casusoverleg RIEC")
    context.close()
    context, page = _login(browser, server, Role.ANALYST)
    page.goto(f"{server.url}/app/address/{top}")
    expect(page.locator("#casefile-exports")).to_contain_text("art. 4 Convenant RIEC")
    context.close()


def test_the_model_page_links_the_documentation_pack_once_written(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from stratum_ml.config import Settings
    from stratum_ml.docs import write_pack

    context, page = _login(browser, server, Role.ANALYST)
    page.goto(f"{server.url}/app/model")
    if page.locator("#no-docs").count():
        expect(page.locator("#no-docs")).to_contain_text("nog geen documentatiepakket")
    settings = Settings(home=server.home, mlflow_uri=None)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    pack = write_pack(
        "champion",
        tmp_path / "pack",
        model_name=settings.model_name,
        settings=settings,
        client=client,
    )
    page.goto(f"{server.url}/app/model")
    expect(page.locator("#docs-files")).to_be_visible()
    assert pack.uri is not None and pack.uri in page.locator("#h-docs + p").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="documentation.pdf").click()
    got = Path(download.value.path()).read_bytes()
    assert got == (tmp_path / "pack" / "documentation.pdf").read_bytes()
    context.close()


def _switch(server: Server, action: str, reason: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.url}/pause",
        json={"action": action, "reason": reason},
        headers={"Authorization": f"Bearer {server.keys[Role.ADMIN]}"},
        timeout=60,
    )
    answer.raise_for_status()
    return dict(answer.json())


def test_while_paused_the_work_list_is_the_fallback_and_says_who_paused_it_and_why(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    modelled = httpx.post(
        f"{server.url}/priority_list",
        json={"k": 500},
        headers={"Authorization": f"Bearer {server.keys[Role.ANALYST]}"},
        timeout=60,
    ).json()
    on_model_list = {i["address_id"] for i in modelled["items"]}
    reason = "bias check of the model under way"
    _switch(server, "pause", reason)
    try:
        fallback = httpx.post(
            f"{server.url}/priority_list",
            json={"k": 25},
            headers={"Authorization": f"Bearer {server.keys[Role.ANALYST]}"},
            timeout=60,
        ).json()
        assert fallback["ranking"] == "fallback"
        context, page = _login(browser, server, Role.ANALYST)
        banner = page.locator("#paused")
        expect(banner.get_by_role("heading", level=2)).to_have_text("Het model is gepauzeerd")
        expect(banner).to_contain_text(reason)
        expect(banner).to_contain_text("door test admin (beheerder, sleutel ")
        expect(banner).to_contain_text("terugvalrangschikking")
        rows = page.locator("table.worklist tbody tr")
        shown = [r.get_attribute("data-address-id") for r in rows.all()]
        assert shown == [i["address_id"] for i in fallback["items"]]  # the API's list
        headers = page.locator("table.worklist thead th").all_text_contents()
        assert "Meldingen (afgelopen jaar)" in headers and "Kans" not in headers
        assert rows.first.locator("td.num").nth(1).inner_text().strip().isdigit()
        expect(page.locator("#f-min")).to_be_disabled()
        expect(page.locator("#f-new")).to_be_disabled()
        _check_page(page, server, screenshots, "work-list-paused")

        # filters that need the model are left out and named, as the API does
        page.goto(f"{server.url}/app/?min_chance=50&only_new=1")
        assert page.locator("table.worklist tbody tr").count() == len(shown)
        expect(page.locator("#paused-left-out")).to_contain_text("Minimale kans (%)")

        # decisions go on, as the API takes them: a pause stops the advice, not the work
        row = next(r for r in rows.all() if r.get_attribute("data-address-id") not in on_model_list)
        address = row.get_attribute("data-address-id")
        row.locator("summary").click()
        row.get_by_label("doorzetten voor bezoek").check()
        row.get_by_label("Reden").select_option("too_little_information")
        row.get_by_role("button", name="Besluit vastleggen").click()
        expect(page.get_by_text("Besluit vastgelegd.")).to_be_visible()
        expect(page.locator(f"#a{address}")).to_contain_text("besluit: doorzetten voor bezoek")
        expect(page.locator("#paused")).to_be_visible()
        stored = httpx.post(
            f"{server.url}/decisions",
            json={"address_id": address},
            headers={"Authorization": f"Bearer {server.keys[Role.ANALYST]}"},
            timeout=60,
        ).json()["decisions"][-1]
        assert stored["probability_at_decision"] is None  # stored without the model's output

        page.goto(f"{server.url}/app/address/{shown[0]}")
        expect(page.locator("#paused")).to_contain_text(reason)
        expect(page.locator("#paused")).to_contain_text("terugvalrangschikking")
        assert _axe(page, server) == []

        page.goto(f"{server.url}/app/model")
        expect(page.locator("#pause-state")).to_contain_text(reason)
        expect(page.locator("#pause-state")).to_contain_text("test admin (beheerder")
        context.close()
    finally:
        _switch(server, "resume", "end of the browser test")
    context, page = _login(browser, server, Role.ANALYST)
    assert page.locator("#paused").count() == 0
    expect(page.locator("#f-min")).to_be_enabled()
    context.close()


def _linked_address(server: Server) -> tuple[str, dict[str, Any]]:
    """An address whose dossier links several other addresses (as the API answers it)."""
    tables = load_sources(server.sources)
    stays = tables.registrations
    movers = stays.groupby("person_id")["address_id"].nunique()
    people = movers[movers > 1].index[:40]
    candidates = stays.loc[stays["person_id"].isin(people), "address_id"].drop_duplicates()
    for address in candidates.astype(str):
        answer = httpx.post(
            f"{server.url}/dossier",
            json={"address_id": address},
            headers={"Authorization": f"Bearer {server.keys[Role.CASE_HANDLER]}"},
            timeout=60,
        ).json()
        if len({link["address_id"] for link in answer["linked_addresses"]}) >= 2:
            return address, answer
    raise AssertionError("no address with two linked addresses in the test town")


def test_the_dossier_draws_linked_addresses_as_a_network_of_links_to_their_dossiers(
    browser: Browser, server: Server, screenshots: Path
) -> None:
    address, dossier = _linked_address(server)
    linked = {link["address_id"] for link in dossier["linked_addresses"]}
    context, page = _login(browser, server, Role.CASE_HANDLER)
    page.goto(f"{server.url}/app/dossier/{address}")
    chart = page.locator("#chart-network")
    expect(chart).to_have_attribute("data-rendered", "1", timeout=20_000)
    nodes = chart.locator("svg g.mark-symbol.role-mark path")
    assert nodes.count() == 1 + min(len(linked), 24)  # the address and each linked one
    edges = chart.locator("svg g.mark-rule.role-mark line")
    assert edges.count() == nodes.count() - 1  # one edge per linked address
    # the text alternative: every linked address in a list of links, keyboard usable
    links = page.locator("#linked-list a")
    assert {(a.get_attribute("href") or "").rsplit("/", 1)[-1] for a in links.all()} == linked
    links.first.focus()
    expect(links.first).to_be_focused()
    _check_page(page, server, screenshots, "dossier-network")
    # a node is a link to that address's dossier
    nodes.nth(1).click()
    page.wait_for_url(f"{server.url}/app/dossier/*")
    assert page.url.rsplit("/", 1)[-1] in linked
    context.close()
