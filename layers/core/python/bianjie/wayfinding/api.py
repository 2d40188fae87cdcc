"""Request and answer models of the wayfinding API (pydantic v2; docs/wayfinding.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.kit.types import WHOLE, IsoDatetime

Profile = Literal["elevator_first", "stairs_first", "accessible"]
Category = Literal[
    "department",
    "medtech",
    "kiosk",
    "pharmacy",
    "cashier",
    "information",
    "entrance",
    "toilet",
    "water",
    "shop",
    "rental",
    "other",
]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Tag = Annotated[str, Field(min_length=1, max_length=20)]
Alias = Annotated[str, Field(min_length=1, max_length=30)]
Count = Annotated[int, Field(ge=0, le=10_000_000), WHOLE]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportRequest(Strict):
    archive_base64: str = Field(
        min_length=4,
        max_length=5_600_000,
        description="the IMDF zip, base64 (at most 4 MiB before encoding)",
    )


class ImportAnswer(BaseModel):
    venue_id: str
    version: int
    status: Literal["draft"]
    counts: dict[str, int]


class VersionRef(BaseModel):
    venue_id: str
    version: int


class PublishAnswer(BaseModel):
    venue_id: str
    version: int
    status: Literal["published"]
    nodes: int
    edges: int
    pois: int
    graph_build_ms: float


class ExportAnswer(BaseModel):
    venue_id: str
    version: int
    url: str
    expires_in: int


class VenueSummary(BaseModel):
    venue_id: str
    hospital: str
    name: str
    published_version: int | None
    versions: int
    center: list[float] | None = None


class VenuesQuery(Strict):
    hospital: Id


class VenuesAnswer(BaseModel):
    venues: list[VenueSummary]


class MapAnswer(BaseModel):
    venue_id: str
    version: int
    map: dict[str, Any]


class RouteQuery(Strict):
    venue: Id
    from_: str = Field(
        alias="from",
        min_length=1,
        max_length=120,
        description="occupant, amenity, opening or kiosk id, or point:<level id>:<lon>,<lat>",
    )
    to: str = Field(min_length=1, max_length=120, description="as from, or nearest:<category>")
    profile: Profile = "elevator_first"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Place(BaseModel):
    id: str | None
    name: str
    level_id: str
    at: list[float]


class LevelChange(BaseModel):
    from_level_id: str
    to_level_id: str
    relationship_id: str | None
    category: str


class RouteStep(BaseModel):
    index: int
    kind: str
    text: str
    distance_m: float
    level_id: str
    at: list[float]


class PathPart(BaseModel):
    level_id: str
    coordinates: list[list[float]]


class RouteAnswer(BaseModel):
    venue_id: str
    version: int
    profile: Profile
    origin: Place
    destination: Place
    length_m: float = Field(description="horizontal metres walked")
    vertical_s: float = Field(description="seconds in elevators (waiting included), on stairs and escalators")
    eta_s: int
    path: list[PathPart]
    units: list[str]
    level_changes: list[LevelChange]
    steps: list[RouteStep]


class SearchQuery(Strict):
    venue: Id
    q: str = Field(default="", max_length=40)
    category: Category | None = None
    limit: int = Field(default=10, ge=1, le=50)


class Poi(BaseModel):
    id: str
    kind: str
    name: str
    category: str
    category_name: str
    group: str
    level_id: str | None
    building_id: str | None
    at: list[float] | None
    enabled: bool
    tags: list[str]
    aliases: list[str]


class SearchHit(BaseModel):
    score: float
    poi: Poi


class SearchAnswer(BaseModel):
    venue_id: str
    hits: list[SearchHit]


class PoiList(BaseModel):
    venue_id: str
    pois: list[Poi]


class PoiPatch(Strict):
    enabled: bool | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    aliases: list[Alias] | None = Field(default=None, max_length=20)
    category: Category | None = None


class TagRename(Strict):
    old: Tag = Field(alias="from")
    new: Tag = Field(alias="to")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TagRenameAnswer(BaseModel):
    renamed: int


class PoiImport(Strict):
    format: Literal["csv", "geojson"]
    content: str = Field(min_length=1, max_length=2_000_000)


class PoiImportAnswer(BaseModel):
    updated: int


class OverlayPost(Strict):
    venue_id: Id
    target_id: Id = Field(description="the unit, occupant, amenity or kiosk the reading is about")
    kind: Literal["queue_length", "device_status", "waiting_minutes", "occupancy"]
    value: Annotated[int, Field(ge=0, le=100_000), WHOLE] | None = None
    status: Literal["ok", "broken", "offline", "maintenance"] | None = None
    observed_at: IsoDatetime


class OverlayAnswer(BaseModel):
    venue_id: str
    target_id: str
    kind: str
    accepted: bool


class OperationsQuery(Strict):
    building: Id | None = None
    level: Id | None = None


class OperationsRoom(BaseModel):
    unit_id: str
    name: str
    pois: list[Poi]
    overlays: list[dict[str, Any]]


class OperationsLevel(BaseModel):
    level_id: str
    name: str
    ordinal: int
    rooms: list[OperationsRoom]


class OperationsBuilding(BaseModel):
    building_id: str | None
    name: str
    levels: list[OperationsLevel]


class OperationsAnswer(BaseModel):
    venue_id: str
    version: int
    buildings: list[OperationsBuilding]
    alerts: list[dict[str, Any]]
    counts: dict[str, Count]
