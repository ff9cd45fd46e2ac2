"""Catalog releases in the store: every published version of every issuer's catalog.

An issuer is this node or one of its ancestors (the city's catalog and, say, its county's
own items). Releases are never changed or deleted: a case names the release it was
accepted under, and ``item_data`` reads an item as it was there. The catalog in force
(``load_catalog``) is the newest release of each issuer on the node's path, the nearest
issuer's item winning where that issuer has authority over it (``federation.authority``); ``Store.catalog`` caches it. Functions take the caller's session
and never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from govnet.federation.authority import may_define
from govnet.federation.tree import ancestors
from govnet.node.domain.catalog import Catalog, ServiceItem
from govnet.node.store.models import CatalogRelease, CatalogReleaseItem
from govnet.node.store.unit import Conflict, Unit, query, utc_text


@dataclass(frozen=True)
class PublishedCatalog:
    """The catalog in force at a node: the newest release of each issuer on its path
    (the city's catalog and, say, its county's own items); the nearest issuer wins."""

    releases: dict[str, int]  # issuer -> version in force here
    items: dict[str, ServiceItem]
    sources: dict[str, tuple[str, int]]  # item code -> (issuer, version) it comes from
    issuer: str = ""  # the top-most issuer (normally the city)

    @property
    def version(self) -> int:
        """The version of the top-most issuer's release (0: no catalog yet)."""
        return self.releases.get(self.issuer, 0)


def catalog_path(node_id: str) -> list[str]:
    """The issuers whose catalogs apply at ``node_id``: itself, then its ancestors."""
    return [node_id, *ancestors(node_id)]


def load_catalog(s: Unit, node_id: str) -> PublishedCatalog:
    """The catalog in force at ``node_id``, read from its releases."""
    path = catalog_path(node_id)
    releases: dict[str, int] = {}
    for issuer, version in s.exec(
        select(CatalogRelease.issuer, func.max(CatalogRelease.version))
        .where(col(CatalogRelease.issuer).in_(path)).group_by(CatalogRelease.issuer)
    ).all():
        releases[issuer] = version
    items: dict[str, ServiceItem] = {}
    sources: dict[str, tuple[str, int]] = {}
    for issuer in reversed(path):  # farthest first, so the nearest issuer's item wins
        if issuer not in releases:
            continue
        version = releases[issuer]
        for r in s.exec(select(CatalogReleaseItem).where(CatalogReleaseItem.issuer == issuer,
                                                        CatalogReleaseItem.version == version)).all():
            item = ServiceItem.from_dict(json.loads(r.data))
            held = items.get(r.code)
            if not may_define(issuer, item.authority_level) or (
                    held is not None and not may_define(issuer, held.authority_level)):
                continue  # beyond the issuer's authority (federation.authority): a farther issuer's item stays
            items[r.code] = item
            sources[r.code] = (issuer, version)
    top = next((i for i in reversed(path) if i in releases), "")
    return PublishedCatalog(releases, items, sources, top)


def add_release(s: Unit, node_id: str, catalog: Catalog, now: datetime, version: int | None = None,
                expected_version: int = 0) -> int:
    """Store ``catalog`` as a release seen at ``node_id``: as ``version`` (a release received
    from the parent) or as its issuer's next one; returns the version. Earlier releases are
    kept: cases name theirs."""
    path = catalog_path(node_id)
    if catalog.issuer not in path:
        raise Conflict(f"catalog issuer {catalog.issuer} is neither this node ({node_id}) nor one of "
                       f"its ancestors ({', '.join(path[1:]) or 'none'}); publish it where it belongs")
    current = s.exec(select(func.max(CatalogRelease.version)).where(CatalogRelease.issuer == catalog.issuer)).one() or 0
    if expected_version and expected_version != current:
        raise Conflict(f"catalog of {catalog.issuer} is at version {current}, not {expected_version}: "
                       "reload it and publish again")
    if version is None:
        version = current + 1
    elif version <= current:
        raise Conflict(f"catalog version {version} of {catalog.issuer} is not newer than {current}")
    s.add(CatalogRelease(issuer=catalog.issuer, version=version, published_at=utc_text(now),
                         item_count=len(catalog.items)))
    s.flush()
    for item in catalog.items:
        s.add(CatalogReleaseItem(issuer=catalog.issuer, version=version, code=item.code,
                                 department=item.department, authority_level=item.authority_level.value,
                                 item_type=item.item_type.value,
                                 data=json.dumps(item.to_dict(), ensure_ascii=False)))
    return version


def item_data(s: Unit, issuer: str, version: int, code: str) -> dict[str, Any] | None:
    """An item as it was in a given release (the one a case was accepted under), as stored."""
    found = query(s, "SELECT data FROM catalog_release_item WHERE issuer = ? AND version = ? AND code = ?",
                  (issuer, version, code))
    data: dict[str, Any] | None = json.loads(found[0][0]) if found else None
    return data
