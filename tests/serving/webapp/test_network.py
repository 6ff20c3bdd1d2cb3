"""The dossier in figures and words: the network of linked addresses, the owner's portfolio."""

from __future__ import annotations

import math

import pytest

from stratum_ml.serving.webapp import charts
from stratum_ml.serving.webapp.i18n import portfolio_words


def test_the_layout_puts_linked_nodes_evenly_on_a_circle_from_the_top_clockwise() -> None:
    assert charts.network_layout(4) == [(0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)]
    places = charts.network_layout(7)
    assert places == charts.network_layout(7)  # the same dossier draws the same picture
    assert all(math.hypot(x, y) == pytest.approx(1.0, abs=1e-5) for x, y in places)
    assert len(set(places)) == 7


def test_the_network_has_the_centre_each_linked_address_and_an_edge_per_link_kind() -> None:
    linked = [
        {"label": "Dorpsstraat 3, 1234AB", "href": "/app/dossier/2", "kind": "bewoner"},
        {"label": "Dorpsstraat 5, 1234AB", "href": "/app/dossier/3", "kind": "bewoner"},
        {"label": "Kerkweg 1, 1234AC", "href": "/app/dossier/4", "kind": "bewoner + eigenaar"},
    ]
    centre = {"label": "Dorpsstraat 1, 1234AB", "href": "/app/dossier/1"}
    spec = charts.network(centre, linked, "Soort koppeling")
    edges, nodes, *labels = spec["layer"]
    drawn = nodes["data"]["values"]
    assert [n["href"] for n in drawn] == [
        "/app/dossier/1",
        "/app/dossier/2",
        "/app/dossier/3",
        "/app/dossier/4",
    ]
    assert (drawn[0]["x"], drawn[0]["y"]) == (0.0, 0.0)
    assert nodes["encoding"]["href"] == {"field": "href"}
    assert [(e["x2"], e["y2"], e["kind"]) for e in edges["data"]["values"]] == [
        (n["x"], n["y"], n["kind"]) for n in drawn[1:]
    ]
    colour = edges["encoding"]["color"]
    assert colour["scale"]["domain"] == ["bewoner", "bewoner + eigenaar"]
    assert len(set(colour["scale"]["range"])) == 2
    assert edges["encoding"]["strokeDash"]["scale"]["domain"] == colour["scale"]["domain"]
    assert colour["legend"]["title"] == "Soort koppeling"
    # every node is labelled once, on the side away from the centre
    texts = [n["label"] for layer in labels for n in layer["data"]["values"]]
    assert sorted(texts) == sorted(n["label"] for n in drawn)


def test_a_portfolio_is_counted_in_the_singular_or_the_plural() -> None:
    assert portfolio_words("nl", 1) == "1 adres in bezit van deze eigenaar"
    assert portfolio_words("nl", 3) == "3 adressen in bezit van deze eigenaar"
    assert portfolio_words("en", 1) == "1 address owned by this owner"
    assert portfolio_words("en", 2) == "2 addresses owned by this owner"
