"""IMDF 1.0 venues made for demos, tests and the benchmark (tooling; never in production).

``demo_hospital()`` is the demo campus of ``make run``: 仁济示范医院 东院区, two buildings (门诊楼 with a
basement B1 and floors 1-5, 医技楼 with floors 1-4), an outdoor plaza (an ``outdoor`` level at ordinal 0)
joining their entrances through traversal relationships, a skybridge (连廊, a ``footbridge`` unit) on the
third floor, an east elevator and a west stair in each building, an escalator pair between 门诊楼 1F and 2F,
an employees-only back corridor in 医技楼, clinics, exam rooms (B超室 among them), pharmacy and cashier
windows, kiosks, toilets, drinking water, a shop and wheelchair rental.

``generated_campus(...)`` makes larger or random venues of the same shape (the benchmark's 3-building,
12-level campus; the property tests' random venues with missing elevators, missing stairs and closed
rooms). Everything is deterministic for given arguments.

Geometry is laid out in metres on a local grid, then placed near 31.2°N 121.5°E (Shanghai) as WGS84
longitude/latitude, as IMDF requires.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

ORIGIN_LON, ORIGIN_LAT = 121.5085, 31.2105
_NS = uuid.UUID("6f1c1d4e-6c3b-4b9e-9a51-7d1d0c0a4b17")
M_PER_DEG_LAT = 110_540.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(ORIGIN_LAT))

FILES = (
    "venue",
    "address",
    "building",
    "footprint",
    "level",
    "unit",
    "opening",
    "amenity",
    "anchor",
    "occupant",
    "kiosk",
    "relationship",
)

W, D = 60.0, 20.0  # building footprint in metres (x east, y north)
BAY = 6.0  # room width
CORRIDOR = (8.0, 12.0)  # corridor from y=8 to y=12


def lonlat(x: float, y: float) -> list[float]:
    return [round(ORIGIN_LON + x / M_PER_DEG_LON, 8), round(ORIGIN_LAT + y / M_PER_DEG_LAT, 8)]


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [lonlat(x0, y0), lonlat(x1, y0), lonlat(x1, y1), lonlat(x0, y1), lonlat(x0, y0)]
    return {"type": "Polygon", "coordinates": [ring]}


def segment(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [lonlat(x0, y0), lonlat(x1, y1)]}


def point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": lonlat(x, y)}


def zh(text: str) -> dict[str, str]:
    return {"zh-Hans": text}


@dataclass
class Room:
    """One bay of a floor: ``side`` "n" (north of the corridor) or "s"; ``bay`` 1..8 from the west."""

    name: str
    category: str = "room"
    side: str = "n"
    bay: int = 1
    occupant: str | None = None  # occupant (department) name anchored in the room
    occupant_category: str = "healthcare"
    amenity: str | None = None  # amenity category placed in the room
    amenity_name: str | None = None
    restriction: str | None = None
    door_to_plaza: bool = False  # a second door on the building's south face (ground floor)


@dataclass
class Floor:
    ordinal: int
    name: str  # 1楼, B1, ...
    short: str  # 1F, B1
    rooms: list[Room] = field(default_factory=list)
    elevator: bool = True
    stairs: bool = True
    escalator: bool = False  # an escalator pair to the floor above
    bridge_to: str | None = None  # building key reached by a skybridge from this floor (east side)


@dataclass
class Building:
    key: str
    name: str
    x0: float
    floors: list[Floor]
    elevator_name: str = "东侧电梯"
    stairs_name: str = "西侧楼梯"


class _Builder:
    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.features: dict[str, list[dict[str, Any]]] = {name: [] for name in FILES}

    def fid(self, *parts: object) -> str:
        return str(uuid.uuid5(_NS, "/".join([self.seed, *map(str, parts)])))

    def add(self, file: str, fid: str, geometry: dict[str, Any] | None, **props: Any) -> str:
        self.features[file].append(
            {"id": fid, "type": "Feature", "feature_type": file, "geometry": geometry, "properties": props}
        )
        return fid


def build(
    buildings: list[Building], *, seed: str = "demo", venue_name: str = "仁济示范医院 东院区", plaza: bool = True
) -> dict[str, Any]:
    """The IMDF archive as ``{"manifest": {...}, "<file>": FeatureCollection, ...}``."""
    b = _Builder(seed)
    xmax = max(bd.x0 for bd in buildings) + W
    address = b.add(
        "address",
        b.fid("address"),
        None,
        address="浦东新区浦建路160号",
        unit=None,
        locality="上海市",
        province="CN-SH",
        country="CN",
        postal_code="200127",
        postal_code_ext=None,
        postal_code_vanity=None,
    )
    venue = b.add(
        "venue",
        b.fid("venue"),
        rect(-20, -30, xmax + 20, D + 20),
        category="healthcarefacility",
        restriction=None,
        name=zh(venue_name),
        alt_name=None,
        hours="Mo-Su 07:30-17:30",
        phone="+862158752345",
        website=None,
        display_point=point(xmax / 2, -15),
        address_id=address,
    )
    plaza_unit = None
    plaza_level = None
    if plaza:
        plaza_level = b.add(
            "level",
            b.fid("level", "outdoor"),
            rect(-20, -30, xmax + 20, 0),
            category="unspecified",
            restriction=None,
            outdoor=True,
            ordinal=0,
            name=zh("室外广场"),
            short_name=zh("室外"),
            display_point=point(xmax / 2, -15),
            address_id=None,
            building_ids=None,
        )
        plaza_unit = b.add(
            "unit",
            b.fid("unit", "plaza"),
            rect(-20, -30, xmax + 20, 0),
            category="walkway",
            restriction=None,
            accessibility=None,
            name=zh("院内广场"),
            alt_name=None,
            display_point=point(xmax / 2, -15),
            level_id=plaza_level,
        )
        gate = b.add(
            "opening",
            b.fid("opening", "gate"),
            segment(-20, -16, -20, -14),
            category="pedestrian.principal",
            accessibility=None,
            access_control=None,
            door=None,
            name=zh("正门"),
            alt_name=None,
            display_point=point(-20, -15),
            level_id=plaza_level,
        )
        kiosk_anchor = b.add(
            "anchor", b.fid("anchor", "gate-kiosk"), point(-16, -15), address_id=None, unit_id=plaza_unit
        )
        b.add(
            "kiosk",
            b.fid("kiosk", "gate"),
            rect(-16.5, -15.5, -15.5, -14.5),
            name=zh("正门导航机"),
            alt_name=None,
            anchor_id=kiosk_anchor,
            level_id=plaza_level,
            display_point=point(-16, -15),
        )
        b.add(
            "amenity",
            b.fid("amenity", "gate-info"),
            point(-14, -12),
            category="information",
            accessibility=None,
            name=zh("正门咨询台"),
            alt_name=None,
            hours="Mo-Su 07:30-17:30",
            phone=None,
            website=None,
            unit_ids=[plaza_unit],
            address_id=None,
            correlation_id=None,
        )
        del gate

    corridors: dict[tuple[str, int], str] = {}
    levels: dict[tuple[str, int], str] = {}
    for bd in buildings:
        bx = bd.x0
        building = b.add(
            "building",
            b.fid("building", bd.key),
            None,
            name=zh(bd.name),
            alt_name=None,
            category="unspecified",
            restriction=None,
            display_point=point(bx + W / 2, D / 2),
            address_id=address,
        )
        b.add(
            "footprint",
            b.fid("footprint", bd.key),
            rect(bx, 0, bx + W, D),
            category="ground",
            name=None,
            building_ids=[building],
        )
        elevator_units: list[str] = []
        stair_units: list[tuple[int, str]] = []
        for fl in sorted(bd.floors, key=lambda f: f.ordinal):
            lk = (bd.key, fl.ordinal)
            level = b.add(
                "level",
                b.fid("level", bd.key, fl.ordinal),
                rect(bx, 0, bx + W, D) if not fl.bridge_to else _bridge_level(bx),
                category="unspecified",
                restriction=None,
                outdoor=False,
                ordinal=fl.ordinal,
                name=zh(f"{bd.name}{fl.name}"),
                short_name=zh(fl.short),
                display_point=point(bx + W / 2, D / 2),
                address_id=None,
                building_ids=[building],
            )
            levels[lk] = level
            corridor = b.add(
                "unit",
                b.fid("unit", bd.key, fl.ordinal, "corridor"),
                rect(bx, CORRIDOR[0], bx + W, CORRIDOR[1]),
                category="walkway",
                restriction=None,
                accessibility=None,
                name=zh(f"{fl.short}走廊"),
                alt_name=None,
                display_point=point(bx + W / 2, 10),
                level_id=level,
            )
            corridors[lk] = corridor

            def room_unit(
                tag: str,
                x0: float,
                side: str,
                name: str,
                category: str,
                restriction: str | None = None,
                *,
                _level: str = level,
                _corridor: str = corridor,
                _key: tuple[str, int] = lk,
            ) -> tuple[str, float, float]:
                y0, y1 = (CORRIDOR[1], D) if side == "n" else (0.0, CORRIDOR[0])
                unit = b.add(
                    "unit",
                    b.fid("unit", *_key, tag),
                    rect(x0, y0, x0 + BAY, y1),
                    category=category,
                    restriction=restriction,
                    accessibility=None,
                    name=zh(name),
                    alt_name=None,
                    display_point=point(x0 + BAY / 2, (y0 + y1) / 2),
                    level_id=_level,
                )
                door_y = CORRIDOR[1] if side == "n" else CORRIDOR[0]
                b.add(
                    "opening",
                    b.fid("opening", *_key, tag),
                    segment(x0 + BAY / 2 - 0.75, door_y, x0 + BAY / 2 + 0.75, door_y),
                    category="pedestrian",
                    accessibility=None,
                    access_control=None,
                    door={"type": "hinged", "automatic": False, "material": "wood"},
                    name=None,
                    alt_name=None,
                    display_point=point(x0 + BAY / 2, door_y),
                    level_id=_level,
                )
                return unit, x0 + BAY / 2, (y0 + y1) / 2

            if fl.stairs:
                unit, _, _ = room_unit("stairs", bx, "n", bd.stairs_name, "stairs")
                stair_units.append((fl.ordinal, unit))
            if fl.elevator:
                unit, _, _ = room_unit("elevator", bx + W - BAY, "n", bd.elevator_name, "elevator")
                elevator_units.append(unit)
            for room in fl.rooms:
                x0 = bx + room.bay * BAY
                unit, cx, cy = room_unit(
                    f"room-{room.side}{room.bay}", x0, room.side, room.name, room.category, room.restriction
                )
                if room.occupant:
                    anchor = b.add(
                        "anchor",
                        b.fid("anchor", *lk, room.side, room.bay),
                        point(cx, cy),
                        address_id=None,
                        unit_id=unit,
                    )
                    b.add(
                        "occupant",
                        b.fid("occupant", *lk, room.side, room.bay),
                        None,
                        name=zh(room.occupant),
                        category=room.occupant_category,
                        anchor_id=anchor,
                        hours="Mo-Fr 08:00-17:00",
                        phone=None,
                        website=None,
                        validity=None,
                        correlation_id=None,
                    )
                if room.amenity:
                    b.add(
                        "amenity",
                        b.fid("amenity", *lk, room.side, room.bay),
                        point(cx, cy),
                        category=room.amenity,
                        accessibility=["wheelchair"] if room.amenity.startswith("restroom") else None,
                        name=zh(room.amenity_name or room.name),
                        alt_name=None,
                        hours=None,
                        phone=None,
                        website=None,
                        unit_ids=[unit],
                        address_id=None,
                        correlation_id=None,
                    )
                if room.door_to_plaza and plaza_unit is not None and plaza_level is not None:
                    door = b.add(
                        "opening",
                        b.fid("opening", *lk, room.side, room.bay, "plaza"),
                        segment(cx - 1.0, 0, cx + 1.0, 0),
                        category="pedestrian.principal" if room.category == "lobby" else "service",
                        accessibility=None,
                        access_control=None,
                        door={"type": "sliding", "automatic": True, "material": "glass"},
                        name=zh(f"{bd.name}{'南门' if room.category == 'lobby' else '后门'}"),
                        alt_name=None,
                        display_point=point(cx, 0),
                        level_id=level,
                    )
                    b.add(
                        "relationship",
                        b.fid("rel", "plaza", *lk, room.bay),
                        None,
                        category="traversal",
                        direction="undirected",
                        origin={"id": plaza_unit, "feature_type": "unit"},
                        intermediary=[{"id": door, "feature_type": "opening"}],
                        destination={"id": unit, "feature_type": "unit"},
                        hours=None,
                    )
            if fl.escalator or any(f.escalator and f.ordinal == fl.ordinal - 1 for f in bd.floors):
                room_unit("escalator", bx + 3 * BAY, "s", "自动扶梯", "escalator")
        # vertical connectors
        if len(elevator_units) > 1:
            b.add(
                "relationship",
                b.fid("rel", bd.key, "elevator"),
                None,
                category="elevator",
                direction="undirected",
                origin={"id": elevator_units[0], "feature_type": "unit"},
                intermediary=[{"id": u, "feature_type": "unit"} for u in elevator_units[1:-1]] or None,
                destination={"id": elevator_units[-1], "feature_type": "unit"},
                hours=None,
            )
        for (o1, s1), (o2, s2) in itertools.pairwise(stair_units):
            if o2 == o1 + 1:
                b.add(
                    "relationship",
                    b.fid("rel", bd.key, "stairs", o1),
                    None,
                    category="stairs",
                    direction="undirected",
                    origin={"id": s1, "feature_type": "unit"},
                    intermediary=None,
                    destination={"id": s2, "feature_type": "unit"},
                    hours=None,
                )
        for fl in bd.floors:
            if fl.escalator:
                lower = b.fid("unit", bd.key, fl.ordinal, "escalator")
                upper = b.fid("unit", bd.key, fl.ordinal + 1, "escalator")
                if any(f["id"] == upper for f in b.features["unit"]):
                    for direction, (o, d) in (("up", (lower, upper)), ("down", (upper, lower))):
                        b.add(
                            "relationship",
                            b.fid("rel", bd.key, "escalator", fl.ordinal, direction),
                            None,
                            category="escalator",
                            direction="directed",
                            origin={"id": o, "feature_type": "unit"},
                            intermediary=None,
                            destination={"id": d, "feature_type": "unit"},
                            hours=None,
                        )
    # skybridges: a footbridge unit on the east side of the floor, reaching the next building's west end
    for bd in buildings:
        for fl in bd.floors:
            if not fl.bridge_to:
                continue
            other = next(o for o in buildings if o.key == fl.bridge_to)
            target = (other.key, fl.ordinal)
            if target not in corridors:
                continue
            lk = (bd.key, fl.ordinal)
            x0, x1 = bd.x0 + W, other.x0
            bridge = b.add(
                "unit",
                b.fid("unit", *lk, "bridge"),
                rect(x0, CORRIDOR[0], x1, CORRIDOR[1]),
                category="footbridge",
                restriction=None,
                accessibility=None,
                name=zh(f"{fl.short}连廊"),
                alt_name=None,
                display_point=point((x0 + x1) / 2, 10),
                level_id=levels[lk],
            )
            b.add(
                "opening",
                b.fid("opening", *lk, "bridge-west"),
                segment(x0, 9.25, x0, 10.75),
                category="pedestrian",
                accessibility=None,
                access_control=None,
                door=None,
                name=None,
                alt_name=None,
                display_point=point(x0, 10),
                level_id=levels[lk],
            )
            east = b.add(
                "opening",
                b.fid("opening", *target, "bridge-east"),
                segment(x1, 9.25, x1, 10.75),
                category="pedestrian",
                accessibility=None,
                access_control=None,
                door=None,
                name=None,
                alt_name=None,
                display_point=point(x1, 10),
                level_id=levels[target],
            )
            b.add(
                "relationship",
                b.fid("rel", "bridge", *lk),
                None,
                category="traversal",
                direction="undirected",
                origin={"id": bridge, "feature_type": "unit"},
                intermediary=[{"id": east, "feature_type": "opening"}],
                destination={"id": corridors[target], "feature_type": "unit"},
                hours=None,
            )
    del venue
    archive: dict[str, Any] = {
        "manifest": {
            "version": "1.0.0",
            "created": "2026-12-01T00:00:00Z",
            "generated_by": "bianjie_dev.wayfinding.venues",
            "language": "zh-Hans",
            "extensions": None,
        }
    }
    for name in FILES:
        archive[name] = {"type": "FeatureCollection", "features": b.features[name]}
    return archive


def _bridge_level(bx: float) -> dict[str, Any]:
    """A floor with a skybridge leaving east: the level's outline includes the bridge."""
    ring = [
        lonlat(bx, 0),
        lonlat(bx + W, 0),
        lonlat(bx + W, CORRIDOR[0]),
        lonlat(bx + W + 30, CORRIDOR[0]),
        lonlat(bx + W + 30, CORRIDOR[1]),
        lonlat(bx + W, CORRIDOR[1]),
        lonlat(bx + W, D),
        lonlat(bx, D),
        lonlat(bx, 0),
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def to_zip(archive: dict[str, Any]) -> bytes:
    """The archive as an IMDF zip: ``manifest.json`` and one ``<file>.geojson`` per feature type."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in archive.items():
            filename = "manifest.json" if name == "manifest" else f"{name}.geojson"
            zf.writestr(filename, json.dumps(content, ensure_ascii=False))
    return buffer.getvalue()


# -- the demo hospital --------------------------------------------------------------------------------

OUTPATIENT, MEDTECH = "outpatient", "medtech"


def demo_buildings() -> list[Building]:
    out = Building(
        OUTPATIENT,
        "门诊楼",
        0.0,
        [
            Floor(
                -1,
                "B1",
                "B1",
                [
                    Room("停车场电梯厅", "lobby", "s", 1),
                    Room("中药房", "pharmacy", "s", 3, occupant="中药房", occupant_category="pharmacy"),
                    Room("卫生间", "restroom", "s", 7, amenity="restroom"),
                ],
            ),
            Floor(
                0,
                "1楼",
                "1F",
                [
                    Room(
                        "门诊大厅", "lobby", "s", 1, door_to_plaza=True, amenity="kiosk", amenity_name="自助挂号缴费机"
                    ),
                    Room("挂号收费处", "room", "s", 2, amenity="cashier", amenity_name="1楼收费窗口"),
                    Room(
                        "西药房",
                        "pharmacy",
                        "s",
                        5,
                        occupant="西药房",
                        occupant_category="pharmacy",
                        amenity="pharmacy",
                        amenity_name="西药房取药窗口",
                    ),
                    Room("便利店", "room", "s", 6, amenity="shop", amenity_name="便利店"),
                    Room("轮椅租借", "room", "s", 7, amenity="wheelchairassist", amenity_name="轮椅租借处"),
                    Room("预检分诊台", "room", "n", 2, occupant="预检分诊", occupant_category="healthcare"),
                    Room("急诊科", "room", "n", 3, occupant="急诊科"),
                    Room("卫生间", "restroom", "n", 6, amenity="restroom"),
                    Room("饮水间", "room", "n", 7, amenity="drinkingfountain", amenity_name="饮水机"),
                ],
                escalator=True,
            ),
            Floor(
                1,
                "2楼",
                "2F",
                [
                    Room("内科诊区", "room", "n", 2, occupant="普通内科"),
                    Room("心内科", "room", "n", 4, occupant="心内科"),
                    Room("呼吸内科", "room", "n", 5, occupant="呼吸内科"),
                    Room("消化内科", "room", "s", 4, occupant="消化内科"),
                    Room("自助机", "room", "s", 5, amenity="kiosk", amenity_name="2楼自助机"),
                    Room("卫生间", "restroom", "n", 7, amenity="restroom"),
                ],
            ),
            Floor(
                2,
                "3楼",
                "3F",
                [
                    Room("外科诊区", "room", "n", 2, occupant="普通外科"),
                    Room("骨科", "room", "n", 4, occupant="骨科"),
                    Room("眼科", "room", "s", 2, occupant="眼科"),
                    Room("耳鼻喉科", "room", "s", 4, occupant="耳鼻喉科"),
                    Room("卫生间", "restroom", "n", 7, amenity="restroom"),
                ],
                bridge_to=MEDTECH,
            ),
            Floor(
                3,
                "4楼",
                "4F",
                [
                    Room("妇产科", "room", "n", 2, occupant="妇产科"),
                    Room("儿科", "room", "n", 4, occupant="儿科"),
                    Room("饮水间", "room", "s", 4, amenity="drinkingfountain", amenity_name="饮水机"),
                ],
            ),
            Floor(
                4,
                "5楼",
                "5F",
                [
                    Room("皮肤科", "room", "n", 2, occupant="皮肤科"),
                    Room("中医科", "room", "n", 4, occupant="中医科"),
                    Room("行政办公室", "office", "s", 4, restriction="employeesonly"),
                ],
            ),
        ],
    )
    med = Building(
        MEDTECH,
        "医技楼",
        90.0,
        [
            Floor(
                0,
                "1楼",
                "1F",
                [
                    Room("医技楼大厅", "lobby", "s", 1, door_to_plaza=True),
                    Room("检验科", "laboratory", "n", 2, occupant="检验科（抽血）"),
                    Room("放射科", "room", "n", 4, occupant="放射科（CT/DR）"),
                    Room("员工通道", "walkway", "s", 6, restriction="employeesonly", door_to_plaza=True),
                    Room("自助打印机", "room", "s", 3, amenity="kiosk", amenity_name="报告自助打印机"),
                    Room("卫生间", "restroom", "n", 7, amenity="restroom"),
                ],
            ),
            Floor(
                1,
                "2楼",
                "2F",
                [
                    Room("超声科", "room", "n", 2, occupant="超声科（B超室）"),
                    Room("心电图室", "room", "n", 4, occupant="心电图室"),
                    Room("内镜中心", "room", "s", 4, occupant="内镜中心"),
                ],
            ),
            Floor(
                2,
                "3楼",
                "3F",
                [
                    Room("核磁共振", "room", "n", 3, occupant="磁共振室（MRI）"),
                    Room("收费窗口", "room", "s", 3, amenity="cashier", amenity_name="医技楼收费窗口"),
                ],
            ),
            Floor(3, "4楼", "4F", [Room("病理科", "laboratory", "n", 3, occupant="病理科")]),
        ],
    )
    return [out, med]


def demo_hospital() -> dict[str, Any]:
    return build(demo_buildings(), seed="demo")


def generated_campus(
    buildings: int = 3,
    levels: int = 12,
    *,
    seed: str = "bench",
    missing_elevators: frozenset[tuple[int, int]] = frozenset(),
    missing_stairs: frozenset[tuple[int, int]] = frozenset(),
    closed_rooms: frozenset[tuple[int, int, int]] = frozenset(),
    bridges: frozenset[tuple[int, int]] = frozenset(),
    escalators: frozenset[tuple[int, int]] = frozenset(),
) -> dict[str, Any]:
    """``buildings`` buildings of ``levels`` levels each (one basement), rooms on every bay, plus the
    plaza. ``missing_elevators``/``missing_stairs`` hold (building, ordinal) without that connector;
    ``closed_rooms`` (building, ordinal, bay) employees-only rooms; ``bridges`` (building, ordinal) a
    skybridge to the next building; ``escalators`` (building, ordinal) an escalator pair to the floor above.
    Every building has a 便利店, a 卫生间 and a clinic per floor; the generated names are unique."""
    out: list[Building] = []
    for bi in range(buildings):
        floors = []
        for li in range(levels):
            ordinal = li - 1
            rooms = []
            for bay in range(1, 9):
                for side in ("n", "s"):
                    if bi == 0 and ordinal == 0 and side == "s" and bay == 1:
                        rooms.append(Room("大厅", "lobby", "s", 1, door_to_plaza=True))
                        continue
                    if ordinal == 0 and side == "s" and bay == 1:
                        rooms.append(Room(f"{bi + 1}号楼大厅", "lobby", "s", 1, door_to_plaza=True))
                        continue
                    if side == "s" and bay == 3 and (bi, ordinal) in escalators:
                        continue
                    if side == "s" and bay == 3 and (bi, ordinal - 1) in escalators:
                        continue
                    tag = f"{bi + 1}-{ordinal}-{side}{bay}"
                    restriction = "employeesonly" if (bi, ordinal, bay) in closed_rooms and side == "n" else None
                    if bay == 7 and side == "n":
                        rooms.append(Room(f"卫生间{tag}", "restroom", side, bay, amenity="restroom"))
                    elif bay == 5 and side == "s":
                        rooms.append(Room(f"便利店{tag}", "room", side, bay, amenity="shop"))
                    else:
                        rooms.append(
                            Room(f"诊室{tag}", "room", side, bay, occupant=f"科室{tag}", restriction=restriction)
                        )
            floors.append(
                Floor(
                    ordinal,
                    f"{ordinal + 1}楼" if ordinal >= 0 else f"B{-ordinal}",
                    f"{ordinal + 1}F" if ordinal >= 0 else f"B{-ordinal}",
                    rooms,
                    elevator=(bi, ordinal) not in missing_elevators,
                    stairs=(bi, ordinal) not in missing_stairs,
                    escalator=(bi, ordinal) in escalators and li < levels - 1,
                    bridge_to=f"b{bi + 1}" if (bi, ordinal) in bridges and bi + 1 < buildings else None,
                )
            )
        out.append(Building(f"b{bi}", f"{bi + 1}号楼", bi * 90.0, floors))
    return build(out, seed=seed, venue_name=f"生成院区-{seed}")
