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

from stratum_ml.features.asof import REF, Q, asof_join, per_query
from stratum_ml.features.common import count_per_query
from stratum_ml.features.registry import FeatureParams, feature, intermediate

#: edges of the link network turned into Python ints at a time (component sizes)
_EDGE_CHUNK = 1 << 16
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
    """(query, linked address) pairs through one kind of entity, as of each reference date."""
    _, table, entity, start = next(spec for spec in LINK_SOURCES if spec[0] == kind)
    frame = _link_table(table, frame, params)
    empty = pd.DataFrame({Q: pd.Series(dtype="int64"), "linked_id": pd.Series(dtype="str")})
    if frame is None:
        return empty
    own = asof_join(frame[["address_id", entity, start]], keys, date_col=start)
    entity_keys = own[[entity, Q, REF]].drop_duplicates()
    other = asof_join(frame[["address_id", entity, start]], entity_keys, date_col=start, on=entity)
    query_address = keys.set_index(Q)["address_id"]
    other = other.loc[other["address_id"].to_numpy() != query_address.reindex(other[Q]).to_numpy()]
    pairs = other[[Q, "address_id"]].drop_duplicates().rename(columns={"address_id": "linked_id"})
    return pairs.reset_index(drop=True) if len(pairs) else empty


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
def owner_links(keys: pd.DataFrame, ownership: pd.DataFrame, params: FeatureParams) -> pd.DataFrame:
    """(query, linked address) pairs through a shared private owner."""
    return _one_hop("owner", keys, ownership, params)


@intermediate
def business_links(
    keys: pd.DataFrame, businesses: pd.DataFrame, params: FeatureParams
) -> pd.DataFrame:
    """(query, linked address) pairs through a shared establishment."""
    return _one_hop("business", keys, businesses, params)


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
    keys: pd.DataFrame,
    registrations: pd.DataFrame,
    params: FeatureParams,
    ownership: pd.DataFrame | None = None,
    businesses: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Union of the links of every kind whose source table is present."""
    frames = _link_frames(registrations, ownership, businesses)
    parts = [
        _one_hop(kind, keys, frames[table], params)
        for kind, table, _, _ in LINK_SOURCES
        if frames[table] is not None
    ]
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
    for _, table, entity, start in LINK_SOURCES:
        frame = _link_table(table, frames[table], params)
        if frame is None or len(frame) == 0:
            continue
        edge = _chain_edges(frame[entity], frame["address_id"], frame[start])
        if edge is not None:
            edges.append(edge)
    if not edges:
        return pd.DataFrame({"a": [], "b": [], "date": pd.Series(dtype="datetime64[ns]")})
    out = pd.concat(edges, ignore_index=True)
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def _chain_edges(entity: pd.Series, address: pd.Series, start: pd.Series) -> pd.DataFrame | None:
    """The rows sorted by (entity, start, address), each linked to the next of its entity.

    The same order as a stable ``sort_values`` of the three columns (missing values
    last), done on integer codes: sorting millions of strings held them several
    times over. Edges between a dwelling and itself are left out.
    """
    entity_codes, entities = pd.factorize(entity, sort=True)
    entity_codes = np.where(entity_codes >= 0, entity_codes, len(entities))
    address_codes, addresses = pd.factorize(address, sort=True)
    address_order = np.where(address_codes >= 0, address_codes, len(addresses))
    days = start.to_numpy(dtype="datetime64[ns]")
    missing_day = np.isnat(days)
    order = np.lexsort((address_order, days.view("int64"), missing_day, entity_codes))
    del address_order
    sorted_entity = entity_codes[order]
    same = (sorted_entity[1:] == sorted_entity[:-1]) & (sorted_entity[1:] < len(entities))
    del sorted_entity, entity_codes
    a = address_codes[order]
    keep = same & (a[:-1] != a[1:]) & (a[:-1] >= 0) & (a[1:] >= 0)
    if not keep.any():
        return None
    where = np.flatnonzero(keep)
    return pd.DataFrame(
        {
            "a": pd.Series(addresses.take(a[where]), dtype="str"),
            "b": pd.Series(addresses.take(a[where + 1]), dtype="str"),
            "date": days[order][where + 1],
        }
    )


@feature
def network_component_size(
    dated_links: pd.DataFrame, keys: pd.DataFrame, addresses: pd.DataFrame
) -> pd.Series:
    """Dwellings in the address's connected component of the link network (count, >= 1)."""
    ids = pd.Index(addresses["address_id"])
    a_idx = ids.get_indexer(dated_links["a"])
    b_idx = ids.get_indexer(dated_links["b"])
    known = (a_idx >= 0) & (b_idx >= 0)
    a_all = a_idx[known]
    b_all = b_idx[known]
    del a_idx, b_idx
    edge_days = dated_links["date"].to_numpy()[known]
    parent = list(range(len(ids)))  # plain lists: much faster than numpy scalars in a loop
    size = [1] * len(ids)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    order = np.argsort(keys[REF].to_numpy(), kind="stable")
    query_nodes = ids.get_indexer(keys["address_id"])
    refs = keys[REF].to_numpy()
    out = np.full(len(keys), np.nan)
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
    return pd.Series(out, index=pd.RangeIndex(len(keys)))
