"""Wayfinding's use cases: venues (import, export, publish), the map, routes, search, POI management,
device and business overlays, the operations view.

Storage (keys in ``functions/wayfinding/template.yaml``, one table, ``WAYFINDING_TABLE``):

| pk | sk | what |
|---|---|---|
| ``HOSP#<hospital>`` | ``VENUE#<venue>`` | the hospital's campuses (院区), for the campus switch |
| ``VENUE#<venue>`` | ``META`` | hospital, name, versions, published version, ``poi_rev`` (bumped by every POI change) |
| ``VENUE#<venue>`` | ``VERSION#<n>`` | one imported archive: counts, status draft/published |
| ``VENUE#<venue>`` | ``POI#<feature id>`` | a POI: derived fields; managed ones (enabled, tags, aliases, category) |
| ``VENUE#<venue>`` | ``OVERLAY#<target>#<kind>`` | the last reading a partner sent for a room or device |

Objects (``WAYFINDING_BUCKET``): ``venues/<venue>/v<n>/archive.json`` (the validated features as
imported), ``archive.zip`` (the export), and at publish ``graph.json`` (routing) and ``map.json``
(drawing). The route and search functions keep the published graph and the POI list in memory, keyed by
version and ``poi_rev``, so a route costs one GetItem and the search in process.

No patient data is stored here: venues, POIs and overlays are the hospital's public building data.
Management actions are audited all the same (who disabled which POI).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import time
from collections.abc import Callable
from typing import Any

from bianjie.kit.actor import Actor
from bianjie.kit.documents.port import MAX_TRANSACT_OPERATIONS, Cond, ConditionFailed, KeyCond, Put
from bianjie.kit.errors import AppError, Conflict, Forbidden, NotFound
from bianjie.wayfinding import api, imdf
from bianjie.wayfinding.graphbuild import Projection, build_graph
from bianjie.wayfinding.itinerary import Itinerary
from bianjie.wayfinding.routing import Endpoint, Graph, NoRoute, require_endpoint
from bianjie.wayfinding.search import CATEGORIES, default_category, search, search_keys

MANAGED = ("enabled", "tags", "aliases", "category")
EXPORT_SECONDS = 600


def _venue_pk(venue_id: str) -> str:
    return f"VENUE#{venue_id}"


class Unprocessable(AppError):
    """Well-formed input a rule refuses (a point that is not one, an unknown category): 422."""

    status, code = 422, "UNPROCESSABLE"


class WayfindingService:
    def __init__(
        self,
        documents: Any,
        table: str,
        objects: Any,
        bucket: str,
        audit: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.table = documents, table
        self.objects, self.bucket = objects, bucket
        self.audit = audit
        self.clock = clock
        self._graphs: dict[tuple[str, int], Graph] = {}
        self._maps: dict[tuple[str, int], dict[str, Any]] = {}
        self._pois: dict[tuple[str, int], list[dict[str, Any]]] = {}

    # -- venues ------------------------------------------------------------------------------------

    def meta(self, venue_id: str) -> dict[str, Any]:
        item = self.db.get(self.table, {"pk": _venue_pk(venue_id), "sk": "META"})
        if item is None:
            raise NotFound(f"院区（场馆）{venue_id} 不存在", code="VENUE_NOT_FOUND")
        return dict(item)

    def _own(self, actor: Actor, venue_id: str) -> dict[str, Any]:
        meta = self.meta(venue_id)
        if meta["hospital"] != actor.org:
            raise Forbidden("该院区属于其他医院，无权管理", code="VENUE_OF_OTHER_HOSPITAL")
        return meta

    def import_archive(self, actor: Actor, body: api.ImportRequest) -> api.ImportAnswer:
        try:
            raw = base64.b64decode(body.archive_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Unprocessable("archive_base64 不是有效的 base64 编码", code="ARCHIVE_NOT_BASE64") from None
        archive = imdf.read_archive(imdf.unzip(raw))
        venue = archive.venue()
        venue_id = venue["id"]
        if not _safe_id(venue_id):
            raise imdf.ArchiveRefused(
                "场馆 id 只能包含字母、数字和 . _ : -",
                details=[{"file": "venue.geojson", "feature_id": venue_id, "problem": "id characters"}],
            )
        meta = self.db.get(self.table, {"pk": _venue_pk(venue_id), "sk": "META"})
        if meta is not None and meta["hospital"] != actor.org:
            raise Forbidden("该院区属于其他医院，无权导入", code="VENUE_OF_OTHER_HOSPITAL")
        version = (meta["versions"] if meta else 0) + 1
        prefix = f"venues/{venue_id}/v{version}"
        self.objects.put(
            self.bucket,
            f"{prefix}/archive.json",
            json.dumps(archive.to_json(), ensure_ascii=False).encode(),
            content_type="application/json",
        )
        self.objects.put(
            self.bucket, f"{prefix}/archive.zip", imdf.write_archive(archive), content_type="application/zip"
        )
        now = self.clock()
        name = imdf.label(venue["properties"].get("name"), venue_id)
        new_meta = {
            **(
                meta
                or {
                    "pk": _venue_pk(venue_id),
                    "sk": "META",
                    "hospital": actor.org,
                    "published_version": None,
                    "poi_rev": 0,
                }
            ),
            "name": name,
            "versions": version,
            "updated_at": now,
        }
        condition = Cond.absent() if meta is None else Cond.eq("versions", meta["versions"])
        counts = archive.counts()
        try:
            self.db.transact(
                [
                    Put(self.table, new_meta, condition),
                    Put(
                        self.table,
                        {
                            "pk": _venue_pk(venue_id),
                            "sk": f"VERSION#{version:06d}",
                            "version": version,
                            "status": "draft",
                            "counts": counts,
                            "imported_at": now,
                            "imported_by": actor.audit_name,
                        },
                        Cond.absent(),
                    ),
                    Put(
                        self.table,
                        {"pk": f"HOSP#{actor.org}", "sk": f"VENUE#{venue_id}", "venue_id": venue_id, "name": name},
                    ),
                ]
            )
        except Exception as exc:  # TransactionCanceled: another import of this venue won the race
            if type(exc).__name__ != "TransactionCanceled":
                raise
            raise Conflict("同一院区正在导入另一版本，请稍后重试", code="IMPORT_CONTENDED") from None
        self.audit.record(
            actor=actor, action="wayfinding.venue.import", resource=f"wayfinding.venue:{venue_id}/v{version}"
        )
        return api.ImportAnswer(venue_id=venue_id, version=version, status="draft", counts=counts)

    def _version(self, venue_id: str, version: int) -> dict[str, Any]:
        item = self.db.get(self.table, {"pk": _venue_pk(venue_id), "sk": f"VERSION#{version:06d}"})
        if item is None:
            raise NotFound(f"院区 {venue_id} 没有第 {version} 版", code="VERSION_NOT_FOUND")
        return dict(item)

    def export_archive(self, actor: Actor, venue_id: str, version: int) -> api.ExportAnswer:
        self._own(actor, venue_id)
        self._version(venue_id, version)
        url = self.objects.presigned_get(self.bucket, f"venues/{venue_id}/v{version}/archive.zip", EXPORT_SECONDS)
        self.audit.record(
            actor=actor, action="wayfinding.venue.export", resource=f"wayfinding.venue:{venue_id}/v{version}"
        )
        return api.ExportAnswer(venue_id=venue_id, version=version, url=url, expires_in=EXPORT_SECONDS)

    def publish(self, actor: Actor, venue_id: str, version: int) -> api.PublishAnswer:
        meta = self._own(actor, venue_id)
        record = self._version(venue_id, version)
        prefix = f"venues/{venue_id}/v{version}"
        archive = imdf.Archive.from_json(json.loads(self.objects.get(self.bucket, f"{prefix}/archive.json")))
        started = time.perf_counter()
        graph = build_graph(archive)
        build_ms = (time.perf_counter() - started) * 1000
        self.objects.put(
            self.bucket,
            f"{prefix}/graph.json",
            json.dumps(graph, ensure_ascii=False, separators=(",", ":")).encode(),
            content_type="application/json",
        )
        self.objects.put(
            self.bucket,
            f"{prefix}/map.json",
            json.dumps(map_of(archive, graph), ensure_ascii=False, separators=(",", ":")).encode(),
            content_type="application/json",
        )
        pois = derive_pois(archive, graph)
        existing = {p["sk"][4:]: p for p in self._query(venue_id, "POI#")}
        now = self.clock()
        writes: list[dict[str, Any]] = []
        for poi in pois:
            old = existing.pop(poi["id"], None)
            managed = {k: old[k] for k in MANAGED if old and k in old}
            item = {
                **poi,
                **managed,
                "present": True,
                "pk": _venue_pk(venue_id),
                "sk": f"POI#{poi['id']}",
                "version": version,
            }
            item["keys"] = search_keys(item["name"], item.get("aliases", []))
            writes.append(item)
        # gone from this version: kept (with its managed fields) but absent
        writes.extend({**old, "present": False, "version": version} for old in existing.values())
        # 25 writes a call (a transaction per batch: fewer round trips than one put per POI, same items)
        for i in range(0, len(writes), MAX_TRANSACT_OPERATIONS):
            self.db.transact([Put(self.table, item) for item in writes[i : i + MAX_TRANSACT_OPERATIONS]])
        try:
            self.db.put(
                self.table,
                {
                    **meta,
                    "published_version": version,
                    "poi_rev": int(meta.get("poi_rev", 0)) + 1,
                    "center": graph["origin"],
                    "published_at": now,
                },
                condition=Cond.eq("versions", meta["versions"]),
            )
        except ConditionFailed:
            raise Conflict("发布期间有新版本导入，请重新发布", code="PUBLISH_CONTENDED") from None
        self.db.put(self.table, {**record, "status": "published", "published_at": now})
        self.audit.record(
            actor=actor, action="wayfinding.venue.publish", resource=f"wayfinding.venue:{venue_id}/v{version}"
        )
        return api.PublishAnswer(
            venue_id=venue_id,
            version=version,
            status="published",
            nodes=len(graph["nodes"]),
            edges=len(graph["edges"]),
            pois=len(pois),
            graph_build_ms=round(build_ms, 1),
        )

    def venues(self, hospital: str) -> api.VenuesAnswer:
        out = []
        for item in self.db.query(self.table, KeyCond.of("pk", f"HOSP#{hospital}"), limit=100).items:
            meta = self.db.get(self.table, {"pk": _venue_pk(item["venue_id"]), "sk": "META"})
            if meta:
                out.append(
                    api.VenueSummary(
                        venue_id=item["venue_id"],
                        hospital=hospital,
                        name=meta["name"],
                        published_version=meta.get("published_version"),
                        versions=meta["versions"],
                        center=meta.get("center"),
                    )
                )
        return api.VenuesAnswer(venues=out)

    def _published(self, venue_id: str) -> tuple[dict[str, Any], int]:
        meta = self.meta(venue_id)
        version = meta.get("published_version")
        if not version:
            raise Conflict(f"院区 {venue_id} 尚未发布地图", code="VENUE_NOT_PUBLISHED")
        return meta, int(version)

    def graph(self, venue_id: str, version: int) -> Graph:
        key = (venue_id, version)
        if key not in self._graphs:
            data = json.loads(self.objects.get(self.bucket, f"venues/{venue_id}/v{version}/graph.json"))
            self._graphs = {k: v for k, v in self._graphs.items() if k[0] != venue_id}
            self._graphs[key] = Graph(data)
        return self._graphs[key]

    def map(self, venue_id: str) -> api.MapAnswer:
        _, version = self._published(venue_id)
        key = (venue_id, version)
        if key not in self._maps:
            self._maps = {k: v for k, v in self._maps.items() if k[0] != venue_id}
            self._maps[key] = json.loads(self.objects.get(self.bucket, f"venues/{venue_id}/v{version}/map.json"))
        return api.MapAnswer(venue_id=venue_id, version=version, map=self._maps[key])

    # -- POIs --------------------------------------------------------------------------------------

    def _query(self, venue_id: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.db.query(
                self.table, KeyCond.of("pk", _venue_pk(venue_id)).begins_with("sk", prefix), limit=500, cursor=cursor
            )
            items.extend(page.items)
            cursor = page.cursor
            if cursor is None:
                return items

    def pois(self, venue_id: str, meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        meta = meta or self.meta(venue_id)
        key = (venue_id, int(meta.get("poi_rev", 0)))
        if key not in self._pois:
            self._pois = {k: v for k, v in self._pois.items() if k[0] != venue_id}
            self._pois[key] = [p for p in self._query(venue_id, "POI#") if p.get("present", True)]
        return self._pois[key]

    def search(self, query: api.SearchQuery) -> api.SearchAnswer:
        meta, _ = self._published(query.venue)
        hits = search(self.pois(query.venue, meta), query.q, query.category, query.limit)
        return api.SearchAnswer(venue_id=query.venue, hits=[api.SearchHit(score=s, poi=poi_model(p)) for s, p in hits])

    def list_pois(self, actor: Actor, venue_id: str) -> api.PoiList:
        meta = self._own(actor, venue_id)
        return api.PoiList(venue_id=venue_id, pois=[poi_model(p) for p in self.pois(venue_id, meta)])

    def _bump(self, meta: dict[str, Any]) -> None:
        self.db.put(
            self.table,
            {**meta, "poi_rev": int(meta.get("poi_rev", 0)) + 1},
            condition=Cond.eq("poi_rev", meta.get("poi_rev", 0)),
        )

    def _write_pois(
        self, actor: Actor, meta: dict[str, Any], items: list[dict[str, Any]], action: str, resource: str
    ) -> None:
        for item in items:
            item["keys"] = search_keys(item["name"], item.get("aliases", []))
            self.db.put(self.table, item)
        for _ in range(5):
            try:
                self._bump(meta)
                break
            except ConditionFailed:
                meta = self.meta(meta["pk"][6:])
        self.audit.record(actor=actor, action=action, resource=resource)

    def update_poi(self, actor: Actor, venue_id: str, poi_id: str, patch: api.PoiPatch) -> api.Poi:
        meta = self._own(actor, venue_id)
        item = self.db.get(self.table, {"pk": _venue_pk(venue_id), "sk": f"POI#{poi_id}"})
        if item is None or not item.get("present", True):
            raise NotFound(f"地点 {poi_id} 不存在", code="POI_NOT_FOUND")
        item = dict(item)
        for field, value in patch.model_dump(exclude_none=True).items():
            item[field] = list(dict.fromkeys(value)) if isinstance(value, list) else value
        if patch.category:
            item["group"] = CATEGORIES[patch.category][1]
        self._write_pois(actor, meta, [item], "wayfinding.poi.update", f"wayfinding.poi:{venue_id}/{poi_id}")
        return poi_model(item)

    def rename_tag(self, actor: Actor, venue_id: str, body: api.TagRename) -> api.TagRenameAnswer:
        meta = self._own(actor, venue_id)
        changed = []
        for poi in self._query(venue_id, "POI#"):
            if body.old in poi.get("tags", []):
                tags = [body.new if t == body.old else t for t in poi["tags"]]
                changed.append({**poi, "tags": list(dict.fromkeys(tags))})
        if not changed:
            raise NotFound(f"没有地点使用标签“{body.old}”", code="TAG_NOT_FOUND")
        self._write_pois(actor, meta, changed, "wayfinding.tag.rename", f"wayfinding.tag:{venue_id}/{body.old}")
        return api.TagRenameAnswer(renamed=len(changed))

    def export_pois_csv(self, actor: Actor, venue_id: str) -> str:
        meta = self._own(actor, venue_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "kind", "name", "category", "enabled", "tags", "aliases", "level_id", "lon", "lat"])
        for p in sorted(self.pois(venue_id, meta), key=lambda p: p["id"]):
            at = p.get("at") or [None, None]
            writer.writerow(
                [
                    p["id"],
                    p["kind"],
                    p["name"],
                    p["category"],
                    "1" if p.get("enabled", True) else "0",
                    "|".join(p.get("tags", [])),
                    "|".join(p.get("aliases", [])),
                    p.get("level_id") or "",
                    at[0],
                    at[1],
                ]
            )
        self.audit.record(actor=actor, action="wayfinding.poi.export", resource=f"wayfinding.venue:{venue_id}")
        return out.getvalue()

    def export_pois_geojson(self, actor: Actor, venue_id: str) -> dict[str, Any]:
        meta = self._own(actor, venue_id)
        features = []
        for p in sorted(self.pois(venue_id, meta), key=lambda p: p["id"]):
            features.append(
                {
                    "type": "Feature",
                    "id": p["id"],
                    "geometry": {"type": "Point", "coordinates": p["at"]} if p.get("at") else None,
                    "properties": {
                        k: p.get(k)
                        for k in ("kind", "name", "category", "enabled", "tags", "aliases", "level_id", "building_id")
                    },
                }
            )
        self.audit.record(actor=actor, action="wayfinding.poi.export", resource=f"wayfinding.venue:{venue_id}")
        return {"type": "FeatureCollection", "features": features}

    def import_pois(self, actor: Actor, venue_id: str, body: api.PoiImport) -> api.PoiImportAnswer:
        """Managed fields (enabled, tags, aliases, category) by POI id, from a CSV or GeoJSON export;
        every row is checked before anything is written."""
        meta = self._own(actor, venue_id)
        known = {p["id"]: p for p in self._query(venue_id, "POI#")}
        rows: list[tuple[str, dict[str, Any]]] = []
        problems: list[dict[str, str]] = []
        try:
            if body.format == "csv":
                for n, row in enumerate(csv.DictReader(io.StringIO(body.content)), start=2):
                    fields = {
                        "enabled": {"1": True, "0": False, "true": True, "false": False}.get(
                            (row.get("enabled") or "1").strip().lower()
                        ),
                        "tags": [t for t in (row.get("tags") or "").split("|") if t],
                        "aliases": [a for a in (row.get("aliases") or "").split("|") if a],
                        "category": (row.get("category") or "").strip() or None,
                    }
                    rows.append((str(row.get("id") or f"<row {n}>"), fields))
            else:
                data = json.loads(body.content)
                for f in data.get("features", []):
                    p = f.get("properties") or {}
                    rows.append(
                        (
                            str(f.get("id")),
                            {
                                "enabled": p.get("enabled", True),
                                "tags": p.get("tags") or [],
                                "aliases": p.get("aliases") or [],
                                "category": p.get("category"),
                            },
                        )
                    )
        except (ValueError, AttributeError, TypeError, csv.Error):
            raise Unprocessable(
                "文件内容无法解析：请使用本系统导出的 CSV 或 GeoJSON", code="POI_FILE_INVALID"
            ) from None
        changed = []
        for poi_id, fields in rows:
            if poi_id not in known:
                problems.append({"id": poi_id, "problem": "不是本院区的地点"})
                continue
            try:
                patch = api.PoiPatch.model_validate({k: v for k, v in fields.items() if v is not None})
            except ValueError as exc:
                problems.append({"id": poi_id, "problem": str(exc).splitlines()[0]})
                continue
            if fields["enabled"] is None:
                problems.append({"id": poi_id, "problem": "enabled 须为 1 或 0"})
                continue
            item = {**known[poi_id], **patch.model_dump(exclude_none=True)}
            if patch.category:
                item["group"] = CATEGORIES[patch.category][1]
            changed.append(item)
        if problems:
            raise AppError(
                f"{len(problems)} 行有问题，未导入任何内容",
                code="POI_IMPORT_INVALID",
                status=422,
                details=problems[:200],
            )
        if changed:
            self._write_pois(actor, meta, changed, "wayfinding.poi.import", f"wayfinding.venue:{venue_id}")
        return api.PoiImportAnswer(updated=len(changed))

    # -- routes ------------------------------------------------------------------------------------

    def _endpoint(self, graph: Graph, pois: dict[str, dict[str, Any]], raw: str, which: str) -> Endpoint:
        if raw.startswith("point:"):
            try:
                _, level_id, coords = raw.split(":", 2)
                lon_s, lat_s = coords.split(",")
                ep = graph.endpoint_at(level_id, float(lon_s), float(lat_s))
            except ValueError:
                raise Unprocessable(
                    f"{which}的坐标格式应为 point:<楼层id>:<经度>,<纬度>", code="ENDPOINT_MALFORMED"
                ) from None
            if ep is None:
                raise NotFound(f"{which}不在任何可通行的房间或区域内", code="UNKNOWN_ENDPOINT")
            return ep
        poi = pois.get(raw)
        if poi is not None and not poi.get("enabled", True):
            raise AppError(f"“{poi['name']}”已停用，不能作为导航地点", code="POI_DISABLED", status=422)
        name = poi["name"] if poi else ""
        ep = require_endpoint(graph.endpoint_of_feature(raw, name), which, raw)
        if not ep.name:
            ep = Endpoint(
                ep.x,
                ep.y,
                ep.level,
                ep.unit,
                graph.units[ep.unit]["name"] if ep.unit >= 0 else "目的地",
                ep.node,
                ep.feature_id,
            )
        return ep

    def route(self, query: api.RouteQuery) -> api.RouteAnswer:
        meta, version = self._published(query.venue)
        graph = self.graph(query.venue, version)
        pois = {p["id"]: p for p in self.pois(query.venue, meta)}
        source = self._endpoint(graph, pois, query.from_, "起点")
        if query.to.startswith("nearest:"):
            category = query.to.split(":", 1)[1]
            if category not in CATEGORIES:
                raise Unprocessable(f"未知的地点类别 {category}", code="CATEGORY_UNKNOWN")
            candidates = [p for p in pois.values() if p["category"] == category and p.get("enabled", True)]
            targets = [t for t in (graph.endpoint_of_feature(p["id"], p["name"]) for p in candidates) if t is not None]
            if not targets:
                raise NotFound(f"本院区没有可用的{CATEGORIES[category][0]}", code="NO_SUCH_PLACE")
        else:
            targets = [self._endpoint(graph, pois, query.to, "终点")]
        found = graph.shortest(source, targets, query.profile)
        if found is None:
            if query.profile == "accessible":
                raise NoRoute("没有无障碍（无台阶）路线可到达该地点，请联系服务台协助", code="NO_STEP_FREE_ROUTE")
            raise NoRoute("两地之间没有可通行的路线", code="NO_ROUTE")
        ti, edges = found
        target = targets[ti]
        answer = Itinerary(graph, query.profile, source, target, edges).answer()
        return api.RouteAnswer(
            venue_id=query.venue,
            version=version,
            origin=_place(graph, source),
            destination=_place(graph, target),
            **answer,
        )

    # -- overlays and operations -------------------------------------------------------------------

    def record_overlay(self, partner: Actor, body: api.OverlayPost) -> api.OverlayAnswer:
        meta = self.meta(body.venue_id)
        if meta["hospital"] != partner.org:
            raise Forbidden("只有院区所属医院的系统可以上报", code="VENUE_OF_OTHER_HOSPITAL")
        if body.value is None and body.status is None:
            raise Unprocessable("value 或 status 至少提供一个", code="OVERLAY_EMPTY")
        key = {"pk": _venue_pk(body.venue_id), "sk": f"OVERLAY#{body.target_id}#{body.kind}"}
        observed = body.observed_at.timestamp()
        old = self.db.get(self.table, key)
        if old is not None and old["observed_at"] >= observed:
            return api.OverlayAnswer(venue_id=body.venue_id, target_id=body.target_id, kind=body.kind, accepted=False)
        item = {
            **key,
            "target_id": body.target_id,
            "kind": body.kind,
            "value": body.value,
            "status": body.status,
            "observed_at": observed,
            "source": partner.id,
        }
        try:
            self.db.put(
                self.table, item, condition=Cond.absent() if old is None else Cond.eq("observed_at", old["observed_at"])
            )
        except ConditionFailed:
            return api.OverlayAnswer(venue_id=body.venue_id, target_id=body.target_id, kind=body.kind, accepted=False)
        return api.OverlayAnswer(venue_id=body.venue_id, target_id=body.target_id, kind=body.kind, accepted=True)

    def operations(self, actor: Actor, venue_id: str, query: api.OperationsQuery) -> api.OperationsAnswer:
        meta = self._own(actor, venue_id)
        _, version = self._published(venue_id)
        graph = self.graph(venue_id, version)
        pois = self.pois(venue_id, meta)
        overlays = self._query(venue_id, "OVERLAY#")
        by_target: dict[str, list[dict[str, Any]]] = {}
        for o in overlays:
            by_target.setdefault(o["target_id"], []).append(
                {k: o[k] for k in ("kind", "value", "status", "observed_at", "source")}
            )
        pois_by_unit: dict[str, list[dict[str, Any]]] = {}
        names = {p["id"]: p["name"] for p in pois}
        for p in pois:
            if p.get("unit_id"):
                pois_by_unit.setdefault(p["unit_id"], []).append(p)
        buildings: dict[str | None, api.OperationsBuilding] = {}
        alerts = []
        for li, level in enumerate(graph.levels):
            if query.building and level["building_id"] != query.building:
                continue
            if query.level and level["id"] != query.level:
                continue
            rooms = []
            for unit in graph.units:
                if unit["level"] != li:
                    continue
                unit_pois = pois_by_unit.get(unit["id"], [])
                readings = list(by_target.get(unit["id"], []))
                for p in unit_pois:
                    readings.extend({**r, "target_id": p["id"]} for r in by_target.get(p["id"], []))
                if not unit_pois and not readings:
                    continue
                rooms.append(
                    api.OperationsRoom(
                        unit_id=unit["id"], name=unit["name"], pois=[poi_model(p) for p in unit_pois], overlays=readings
                    )
                )
                for r in readings:
                    if r.get("status") in ("broken", "offline", "maintenance"):
                        target = names.get(str(r.get("target_id")), unit["name"])
                        alerts.append({"unit_id": unit["id"], **r, "name": target})
            building = buildings.setdefault(
                level["building_id"],
                api.OperationsBuilding(
                    building_id=level["building_id"], name=level["building_name"] or "室外", levels=[]
                ),
            )
            building.levels.append(
                api.OperationsLevel(level_id=level["id"], name=level["name"], ordinal=level["ordinal"], rooms=rooms)
            )
        self.audit.record(actor=actor, action="wayfinding.operations.read", resource=f"wayfinding.venue:{venue_id}")
        return api.OperationsAnswer(
            venue_id=venue_id,
            version=version,
            buildings=list(buildings.values()),
            alerts=alerts,
            counts={
                "pois": len(pois),
                "disabled": sum(not p.get("enabled", True) for p in pois),
                "overlays": len(overlays),
            },
        )


def _safe_id(value: str) -> bool:
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", value))


def _place(graph: Graph, ep: Endpoint) -> api.Place:
    lon, lat = graph.proj.lonlat(ep.x, ep.y)
    return api.Place(
        id=ep.feature_id, name=ep.name, level_id=graph.levels[ep.level]["id"], at=[round(lon, 7), round(lat, 7)]
    )


def poi_model(p: dict[str, Any]) -> api.Poi:
    category = p.get("category", "other")
    label, group = CATEGORIES.get(category, CATEGORIES["other"])
    return api.Poi(
        id=p["id"],
        kind=p["kind"],
        name=p["name"],
        category=category,
        category_name=label,
        group=group,
        level_id=p.get("level_id"),
        building_id=p.get("building_id"),
        at=p.get("at"),
        enabled=p.get("enabled", True),
        tags=p.get("tags", []),
        aliases=p.get("aliases", []),
    )


def derive_pois(archive: imdf.Archive, graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The POIs of an archive: occupants (departments, windows), amenities (toilets, kiosks, water ...),
    kiosks and named principal entrances, each with its level, building, unit and position."""
    proj = Projection(*graph["origin"])
    levels = {lv["id"]: lv for lv in graph["levels"]}
    level_ids = [lv["id"] for lv in graph["levels"]]
    units = graph["units"]
    out = []

    def add(fid: str, kind: str, name: str, imdf_category: str, ep: list[Any] | None = None) -> None:
        ep = ep or graph["endpoints"].get(fid)
        if ep is None:
            return
        level_id = level_ids[ep[2]]
        lon, lat = proj.lonlat(ep[0], ep[1])
        category = default_category(kind, imdf_category, name)
        out.append(
            {
                "id": fid,
                "kind": kind,
                "name": name,
                "imdf_category": imdf_category,
                "category": category,
                "group": CATEGORIES[category][1],
                "level_id": level_id,
                "building_id": levels[level_id]["building_id"],
                "unit_id": units[ep[3]]["id"],
                "at": [round(lon, 7), round(lat, 7)],
                "enabled": True,
                "tags": [],
                "aliases": [],
            }
        )

    for o in archive.features("occupant"):
        add(o["id"], "occupant", imdf.label(o["properties"].get("name"), "科室"), o["properties"].get("category") or "")
    for a in archive.features("amenity"):
        add(
            a["id"],
            "amenity",
            imdf.label(a["properties"].get("name"), a["properties"].get("category") or "设施"),
            a["properties"].get("category") or "",
        )
    for k in archive.features("kiosk"):
        add(k["id"], "kiosk", imdf.label(k["properties"].get("name"), "导航机"), "kiosk")
    for o in graph["openings"]:
        if o["name"]:
            node = graph["nodes"][o["node"]]
            unit = next((ui for ui, ns in enumerate(graph["unit_nodes"]) if o["node"] in ns), 0)
            add(o["id"], "opening", o["name"], "entrance", [node[0], node[1], int(node[2]), unit])
    return out


def map_of(archive: imdf.Archive, graph: dict[str, Any]) -> dict[str, Any]:
    """What the page draws: per level its outline and units (longitude/latitude rings, category, name),
    openings, and the buildings; POIs come from search (they change without a publish)."""
    proj = Projection(*graph["origin"])

    def ll(ring: list[list[float]]) -> list[list[float]]:
        return [[round(c, 7) for c in proj.lonlat(x, y)] for x, y in ring]

    levels = []
    for li, lv in enumerate(graph["levels"]):
        levels.append(
            {
                **lv,
                "units": [
                    {
                        "id": u["id"],
                        "name": u["name"],
                        "category": u["category"],
                        "closed": u["closed"],
                        "ring": ll(u["ring"]),
                    }
                    for u in graph["units"]
                    if u["level"] == li
                ],
                "openings": [
                    {"id": o["id"], "at": [round(c, 7) for c in proj.lonlat(*graph["nodes"][o["node"]][:2])]}
                    for o in graph["openings"]
                    if graph["nodes"][o["node"]][2] == li
                ],
            }
        )
    venue = archive.venue()
    return {
        "venue": {
            "id": venue["id"],
            "name": imdf.label(venue["properties"].get("name"), venue["id"]),
            "geometry": venue["geometry"],
        },
        "origin": graph["origin"],
        "buildings": [
            {"id": b["id"], "name": imdf.label(b["properties"].get("name"), "")} for b in archive.features("building")
        ],
        "levels": levels,
        "kiosks": [
            {"id": k["id"], "name": imdf.label(k["properties"].get("name"), "")} for k in archive.features("kiosk")
        ],
    }
