"""Network features: dwellings linked through shared residents, owners and businesses.

Two dwellings are *linked* as of a reference date when, before that date,

* a person had been registered at both (shared former or current resident),
* one private owner (natural person or company) had owned both — housing
  associations and the municipality are left out, since they own whole
  neighbourhoods and would link everything, or
* one establishment (business id) had been registered at both.

Links only ever appear over time (a shared past never goes away), so the
network as of a date is the network of links dated before it. That makes the
component sizes for many reference dates one pass of a union-find over links
sorted by date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from stratum_ml.features.asof import REF, Q, match_codes, per_query, positions_in
from stratum_ml.features.common import count_per_query, first_of_pairs
from stratum_ml.features.registry import FeatureParams, feature, intermediate

#: edges of the link network turned into Python ints at a time (component sizes)
_EDGE_CHUNK = 1 << 16
#: up to this many distinct reference dates, component sizes come from one
#: connected-components pass (scipy) per date; beyond it, from one union-find sweep
_MAX_SWEEPS = 32
#: (link kind, source table, entity column, start column)
LINK_SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("resident", "registrations", "person_id", "registered_from"),
    ("owner", "ownership", "owner_id", "owned_from"),
    ("business", "businesses", "business_id", "registered_from"),
)


def _link_table(
    table: str, frame: pd.DataFrame | None, params: FeatureParams
) -> pd.DataFrame | None:
    """``frame`` (source table ``table``) as far as it links dwellings, or ``None`` if absent."""
    if frame is not None and table == "ownership":
        frame = frame.loc[~frame["owner_type"].isin(params.unlinked_owner_types)]
    return frame


def _one_hop(
    kind: str, keys: pd.DataFrame, frame: pd.DataFrame | None, params: FeatureParams
) -> pd.DataFrame:
    """(query, linked address) pairs through one kind of entity, as of each reference date.

    A pair (query, B) is kept when an entity had a row at the query's address and a
    row at another address B, both begun before the reference date. The pairs come
    once each, in the order of the rows that first link them; the work is done on
    integer codes of the entities and addresses (:func:`~.asof.match_rows`).
    """
    _, table, entity, start = next(spec for spec in LINK_SOURCES if spec[0] == kind)
    frame = _link_table(table, frame, params)
    empty = pd.DataFrame({Q: pd.Series(dtype="int64"), "linked_id": pd.Series(dtype="str")})
    if frame is None or len(frame) == 0 or len(keys) == 0:
        return empty
    starts = frame[start].to_numpy()
    refs = keys[REF].to_numpy()
    queries = keys[Q].to_numpy()
    address_codes, addresses = pd.factorize(frame["address_id"], use_na_sentinel=False)
    asked, asked_uniques = pd.factorize(keys["address_id"], use_na_sentinel=False)
    own_address = positions_in(asked_uniques, addresses)[asked]
    # the query's own rows: which entities it had before its reference date
    rows, matched = match_codes(
        address_codes, own_address, len(addresses), where=starts < refs.max()
    )
    known = starts[rows] < refs[matched]
    rows, matched = rows[known], matched[known]
    entity_codes, entities = pd.factorize(frame[entity], use_na_sentinel=False)
    firsts = first_of_pairs(entity_codes[rows], matched)
    seen_entity, seen_by = entity_codes[rows][firsts], matched[firsts]
    # every row of those entities begun before the query's reference date
    other, by = match_codes(entity_codes, seen_entity, len(entities))
    by = seen_by[by]
    known = starts[other] < refs[by]
    other, by = other[known], by[known]
    linked = address_codes[other]
    elsewhere = linked != own_address[by]
    linked, by = linked[elsewhere], by[elsewhere]
    firsts = first_of_pairs(by, linked)
    if len(firsts) == 0:
        return empty
    return pd.DataFrame(
        {
            Q: queries[by[firsts]],
            "linked_id": pd.Series(addresses.take(linked[firsts]), dtype="str"),
        }
    )


def _link_frames(
    registrations: pd.DataFrame, ownership: pd.DataFrame | None, businesses: pd.DataFrame | None
) -> dict[str, pd.DataFrame | None]:
    """The source table of every link kind, by table name (``None`` when absent)."""
    return {"registrations": registrations, "ownership": ownership, "businesses": businesses}


@intermediate
def resident_links(
    keys: pd.DataFrame, registrations: pd.DataFrame, params: FeatureParams
) -> pd.DataFrame:
    """(query, linked address) pairs through a shared former or current resident."""
    return _one_hop("resident", keys, registrations, params)


@intermediate
def owner_links_if_any(
    keys: pd.DataFrame, params: FeatureParams, ownership: pd.DataFrame | None = None
) -> pd.DataFrame:
    """(query, linked address) pairs through a shared private owner; none without the table."""
    return _one_hop("owner", keys, ownership, params)


@intermediate
def business_links_if_any(
    keys: pd.DataFrame, params: FeatureParams, businesses: pd.DataFrame | None = None
) -> pd.DataFrame:
    """(query, linked address) pairs through a shared establishment; none without the table."""
    return _one_hop("business", keys, businesses, params)


@intermediate
def owner_links(owner_links_if_any: pd.DataFrame, ownership: pd.DataFrame) -> pd.DataFrame:
    """(query, linked address) pairs through a shared private owner.

    The pairs are :func:`owner_links_if_any`'s; naming ``ownership`` makes the table a
    requirement, so a feature counting these links is absent (not zero) without it.
    """
    del ownership
    return owner_links_if_any


@intermediate
def business_links(business_links_if_any: pd.DataFrame, businesses: pd.DataFrame) -> pd.DataFrame:
    """(query, linked address) pairs through a shared establishment (needs ``businesses``)."""
    del businesses
    return business_links_if_any


@feature
def linked_by_residents(resident_links: pd.DataFrame, n_queries: int) -> pd.Series:
    """Other dwellings that share a former or current resident (count)."""
    return count_per_query(resident_links, n_queries, "linked_id")


@feature
def linked_by_owner(owner_links: pd.DataFrame, n_queries: int) -> pd.Series:
    """Other dwellings that share a private owner, now or before (count)."""
    return count_per_query(owner_links, n_queries, "linked_id")


@feature
def linked_by_business(business_links: pd.DataFrame, n_queries: int) -> pd.Series:
    """Other dwellings where the same establishment was registered (count)."""
    return count_per_query(business_links, n_queries, "linked_id")


@intermediate
def all_links(
    resident_links: pd.DataFrame,
    owner_links_if_any: pd.DataFrame,
    business_links_if_any: pd.DataFrame,
) -> pd.DataFrame:
    """Union of the links of every kind whose source table is present."""
    parts = [resident_links, owner_links_if_any, business_links_if_any]
    return pd.concat(parts, ignore_index=True).drop_duplicates()


@intermediate
def first_violation(inspections: pd.DataFrame) -> pd.Series:
    """Date of the first visit that found a violation, by address."""
    found = inspections.loc[inspections["outcome"] == "violation"]
    return found.groupby("address_id")["inspected_at"].min()


@intermediate
def linked_violation_flags(
    all_links: pd.DataFrame, first_violation: pd.Series, keys: pd.DataFrame
) -> pd.DataFrame:
    """For each (query, linked address): was a violation found there before the reference date."""
    first = first_violation.reindex(all_links["linked_id"]).to_numpy()
    ref = keys[REF].to_numpy()[all_links[Q].to_numpy()]
    return all_links.assign(violation_before=pd.notna(first) & (first < ref))


@feature
def linked_violations(linked_violation_flags: pd.DataFrame, n_queries: int) -> pd.Series:
    """Linked dwellings where a visit found a violation before the reference date (count)."""
    flags = linked_violation_flags.loc[linked_violation_flags["violation_before"]]
    return count_per_query(flags, n_queries, "linked_id")


@feature
def linked_violation_share(linked_violation_flags: pd.DataFrame, n_queries: int) -> pd.Series:
    """Share of linked dwellings with a violation found before the reference date (0-1)."""
    share = linked_violation_flags.groupby(Q)["violation_before"].mean().astype("float64")
    return per_query(share, n_queries)


@intermediate
def dated_links(
    registrations: pd.DataFrame,
    params: FeatureParams,
    ownership: pd.DataFrame | None = None,
    businesses: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Links as an edge list (a, b, date): each entity chains its dwellings in time order.

    A chain suffices for connectivity: the dwellings of an entity known before a
    date are a prefix of its chain, and so are the chain's edges dated before it.
    """
    frames = _link_frames(registrations, ownership, businesses)
    edges = []
    for _, table, _, _ in LINK_SOURCES:
        edge = link_edges(table, frames[table], params)
        if edge is not None:
            edges.append(edge)
    if not edges:
        return pd.DataFrame({"a": [], "b": [], "date": pd.Series(dtype="datetime64[ns]")})
    out = pd.concat(edges, ignore_index=True)
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def link_edges(
    table: str, frame: pd.DataFrame | None, params: FeatureParams
) -> pd.DataFrame | None:
    """The edges (a, b, date) of one link table's entities (``None``: no edge).

    The table is one of :data:`LINK_SOURCES`; its entity and address columns may be
    strings, or integer codes (then the edges hold the codes): the town-wide facts of a
    split folder build the network one table at a time on codes.
    """
    _, _, entity, start = next(spec for spec in LINK_SOURCES if spec[1] == table)
    frame = _link_table(table, frame, params)
    if frame is None or len(frame) == 0:
        return None
    return _chain_edges(frame[entity], frame["address_id"], frame[start])


def _sort_codes(values: pd.Series) -> tuple[np.ndarray, int, pd.Index | None]:
    """Integer keys in the order of ``values``, their number, and the value of each key.

    A missing value gets the key after every value. A column of integers (codes) is its
    own key (it cannot be missing) and comes back with ``None`` for the values.
    """
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        keys = values.to_numpy()
        return keys, int(keys.max(initial=-1)) + 1, None
    codes, uniques = pd.factorize(values, sort=True)
    return np.where(codes >= 0, codes, len(uniques)), len(uniques), pd.Index(uniques)


def _chain_edges(entity: pd.Series, address: pd.Series, start: pd.Series) -> pd.DataFrame | None:
    """The rows sorted by (entity, start, address), each linked to the next of its entity.

    The same order as a stable ``sort_values`` of the three columns (missing values
    last), done on integer codes: sorting millions of strings held them several
    times over. Edges between a dwelling and itself are left out. Integer columns
    (codes) are their own keys, and the edges hold them.
    """
    entity_keys, n_entities, entities = _sort_codes(entity)
    address_keys, n_addresses, addresses = _sort_codes(address)
    days = start.to_numpy(dtype="datetime64[ns]")
    missing_day = np.isnat(days)
    keys = [address_keys, days.view("int64"), missing_day, entity_keys]
    order = np.lexsort(keys if missing_day.any() else keys[:2] + keys[3:])
    del keys
    sorted_entity = entity_keys[order]
    same = sorted_entity[1:] == sorted_entity[:-1]
    if entities is not None:
        same &= sorted_entity[1:] < n_entities
    del sorted_entity, entity_keys
    a = address_keys[order]
    keep = same & (a[:-1] != a[1:])
    if addresses is not None:
        keep &= (a[:-1] < n_addresses) & (a[1:] < n_addresses)
    if not keep.any():
        return None
    where = np.flatnonzero(keep)
    date = days[order[where + 1]]
    if addresses is None:
        return pd.DataFrame({"a": a[where], "b": a[where + 1], "date": date})
    return pd.DataFrame(
        {
            "a": pd.Series(addresses.take(a[where]), dtype="str"),
            "b": pd.Series(addresses.take(a[where + 1]), dtype="str"),
            "date": date,
        }
    )


@feature
def network_component_size(
    dated_links: pd.DataFrame, keys: pd.DataFrame, addresses: pd.DataFrame
) -> pd.Series:
    """Dwellings in the address's connected component of the link network (count, >= 1)."""
    ids = pd.Index(addresses["address_id"])
    a_all = _positions_in(ids, dated_links["a"])
    b_all = _positions_in(ids, dated_links["b"])
    known = (a_all >= 0) & (b_all >= 0)
    edge_days = dated_links["date"].to_numpy()[known]
    a_all, b_all = a_all[known], b_all[known]
    query_nodes = _positions_in(ids, keys["address_id"])
    out = component_sizes(len(ids), a_all, b_all, edge_days, query_nodes, keys[REF].to_numpy())
    return pd.Series(out, index=pd.RangeIndex(len(keys)))


def component_sizes(
    n_nodes: int,
    a: np.ndarray,
    b: np.ndarray,
    edge_days: np.ndarray,
    query_nodes: np.ndarray,
    refs: np.ndarray,
) -> np.ndarray:
    """The size of each query node's component in the network of edges dated before its date.

    Parameters
    ----------
    n_nodes
        Nodes ``0 .. n_nodes - 1``.
    a, b, edge_days
        The edges, in any order; an edge with a missing date never counts.
    query_nodes, refs
        Each query's node (-1: none, the size is NaN) and reference date.

    Returns
    -------
    numpy.ndarray
        float64, one size per query (1 for a node without a known edge).
    """
    if len(np.unique(refs)) <= _MAX_SWEEPS:
        return _sizes_by_sweeps(n_nodes, a, b, edge_days, query_nodes, refs)
    order = np.argsort(edge_days, kind="stable")  # missing dates last
    return _sizes_by_union_find(n_nodes, a[order], b[order], edge_days[order], query_nodes, refs)


def _positions_in(ids: pd.Index, values: pd.Series) -> np.ndarray:
    """The position of each value in ``ids`` (-1: not there); each distinct value looked up once."""
    codes, uniques = pd.factorize(values)
    found = positions_in(pd.Index(uniques), ids)
    return np.where(codes >= 0, found[np.maximum(codes, 0)], -1) if len(codes) else codes


def _sizes_by_sweeps(
    n_nodes: int,
    a: np.ndarray,
    b: np.ndarray,
    edge_days: np.ndarray,
    query_nodes: np.ndarray,
    refs: np.ndarray,
) -> np.ndarray:
    """Component sizes with one connected-components pass per distinct reference date.

    The edges may come in any order: those dated before a date are picked by a mask.
    """
    out = np.full(len(refs), np.nan)
    for ref in np.unique(refs):
        known = edge_days < ref  # a missing date is never before
        graph = coo_matrix(
            (np.ones(int(known.sum()), dtype=np.int8), (a[known], b[known])),
            shape=(n_nodes, n_nodes),
        )
        del known
        _, labels = connected_components(graph.tocsr(), directed=False)
        del graph
        sizes = np.bincount(labels, minlength=1)
        these = (refs == ref) & (query_nodes >= 0)
        out[these] = sizes[labels[query_nodes[these]]]
    return out


def _sizes_by_union_find(
    n_nodes: int,
    a_all: np.ndarray,
    b_all: np.ndarray,
    edge_days: np.ndarray,
    query_nodes: np.ndarray,
    refs: np.ndarray,
) -> np.ndarray:
    """Component sizes for many reference dates: one sweep of a union-find over the edges."""
    parent = list(range(n_nodes))  # plain lists: much faster than numpy scalars in a loop
    size = [1] * n_nodes

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    order = np.argsort(refs, kind="stable")
    out = np.full(len(refs), np.nan)
    e = 0
    n_edges = len(edge_days)
    # the edges as Python ints a chunk at a time: all of them as lists cost ~70 bytes an edge
    a: list[int] = []
    b: list[int] = []
    base = 0
    for qi in order:
        while e < n_edges and edge_days[e] < refs[qi]:
            if e - base >= len(a):
                base = e
                a = a_all[e : e + _EDGE_CHUNK].tolist()
                b = b_all[e : e + _EDGE_CHUNK].tolist()
            ra, rb = find(a[e - base]), find(b[e - base])
            if ra != rb:
                if size[ra] < size[rb]:
                    ra, rb = rb, ra
                parent[rb] = ra
                size[ra] += size[rb]
            e += 1
        node = int(query_nodes[qi])
        if node >= 0:
            out[qi] = size[find(node)]
    return out
