"""Generate the bundled DEMO risk layers (演示数据) — synthetic, seeded, reproducible.

Real risk-point records for Chengkou are not public, so the four layers in ``layers/`` are
made here: plausible (placed inside real townships, named after real villages), sized after
the county's 2026 work plan (../shared/seed: 12 geohazard sites get new monitoring stations,
2 major treatment projects, 154 people to relocate, 6 waterlogging spots in 葛城街道/复兴街道,
10 dangerous bridges to rebuild), and marked ``demo: true`` in every feature. Fire-risk zones
are blobs around township borders **clipped to the county outline** (``data/county.geojson``),
so none reaches outside the county.

Run from the project root: ``python scripts/make_demo_layers.py`` (overwrites the four layer
files; the catalog is untouched). Same seed → byte-identical output.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import shapely
from shapely.geometry import Point, Polygon

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskmap import io  # noqa: E402
from riskmap.derive import apply_derived  # noqa: E402
from riskmap.schema import coerce_layer  # noqa: E402
from riskmap.settings import Settings  # noqa: E402

SEED = 500229
SOURCE = "演示数据 scripts/make_demo_layers.py (seed 500229)"
UPDATED = "2026-11-20"
PLACES = [
    "大湾",
    "岩口",
    "后坪",
    "老屋场",
    "堡坎",
    "水井湾",
    "沟口",
    "梁上",
    "垭口",
    "坪上",
    "石板沟",
    "竹林湾",
    "学堂坪",
    "庙湾",
    "黄泥坡",
    "大岩",
    "小河口",
    "阳坡",
    "阴坡",
    "新房子",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"


def _village_short(name: str) -> str:
    """``农民村村民委员会`` → ``农民村``; ``土城社区居民委员会`` → ``土城社区``."""
    for suffix, kind in (("村民委员会", "村"), ("居民委员会", "社区")):
        if name.endswith(suffix):
            stem = name.removesuffix(suffix)
            return stem if stem.endswith(kind) else stem + kind
    return name


def _bridge_name(village: str) -> str:
    stem = village.removesuffix("村").removesuffix("社区")
    return f"{stem}新桥" if stem.endswith("桥") else f"{stem}桥"


def _person(rng: np.random.Generator) -> str:
    return f"{SURNAMES[rng.integers(len(SURNAMES))]}某某"


def _phone(rng: np.random.Generator) -> str:
    # 1390000xxxx: a fictitious block, obviously not a real subscriber
    return f"1390000{rng.integers(0, 10000):04d}"


def _random_point_in(
    poly: shapely.Geometry, rng: np.random.Generator, near: Point | None, spread_deg: float
) -> Point:
    minx, miny, maxx, maxy = poly.bounds
    prepared = shapely.prepared.prep(poly)
    for _ in range(10_000):
        if near is not None and rng.random() < 0.7:
            lon = near.x + rng.normal(0, spread_deg)
            lat = near.y + rng.normal(0, spread_deg)
        else:
            lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        p = Point(round(lon, 6), round(lat, 6))
        if prepared.contains(p):
            return p
    msg = "could not place a point"
    raise RuntimeError(msg)


def _township_cells(settings: Settings) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    gdf_t = io.read_townships(settings)
    codes = io.read_township_codes(settings)
    villages = pd.read_csv(settings.data_dir / "villages.csv", dtype=str)
    return gdf_t, codes, villages


def _cell_for(code: str, gdf_t: gpd.GeoDataFrame) -> shapely.Geometry:
    own = gdf_t[gdf_t["adcode"] == code]
    if len(own):
        return own.geometry.iloc[0]
    host = gdf_t[gdf_t["also_covers"].fillna("").str.contains(code)]
    return host.geometry.iloc[0]


def _villages_of(code: str, villages: pd.DataFrame) -> list[str]:
    col = "streetCode" if "streetCode" in villages.columns else "township_code"
    names = villages.loc[villages[col].str[:9] == code, "name"].map(_village_short).tolist()
    return names or ["城区"]


def make_geohazard(rng, gdf_t, codes, villages) -> gpd.GeoDataFrame:
    n = 60
    rural = codes[~codes["name"].isin(["葛城街道", "复兴街道"])].reset_index(drop=True)
    types = ["滑坡", "崩塌", "泥石流", "不稳定斜坡", "地面塌陷"]
    type_p = [0.6, 0.15, 0.1, 0.1, 0.05]
    rows, geoms = [], []
    for i in range(n):
        t = rural.iloc[i % len(rural)] if i < len(rural) else rural.iloc[rng.integers(len(rural))]
        seat = Point(float(t["seat_lon"]), float(t["seat_lat"]))
        geom = _random_point_in(_cell_for(t["adcode"], gdf_t), rng, seat, 0.03)
        village = str(rng.choice(_villages_of(t["adcode"], villages)))
        htype = str(rng.choice(types, p=type_p))
        people = int(min(1200, rng.lognormal(3.2, 0.9)))
        households = max(1, round(people / rng.uniform(3.0, 4.2)))
        property_wan = round(people * rng.uniform(4, 14), 1)
        volume = float(round(rng.lognormal(10, 1.2), -2))
        scale = (
            "小型"
            if volume < 1e5
            else "中型"
            if volume < 1e6
            else "大型"
            if volume < 1e7
            else "特大型"
        )
        rows.append(
            {
                "uid": f"DZ-500229-{i + 1:03d}",
                "name": f"{village}{PLACES[rng.integers(len(PLACES))]}{htype}",
                "township_declared": t["name"],
                "village": village,
                "hazard_type": htype,
                "volume_m3": volume,
                "scale_grade": scale,
                "threat_households": households,
                "threat_people": people,
                "threat_property_wan": property_wan,
                "monitor_method": "群测群防",
                "has_station": False,
                "station_planned_2026": False,
                "measures": "群测群防",
                "relocate_people": 0,
                "two_cards": bool(rng.random() < 0.95),
                "has_plan": True,
                "drill_date": (
                    dt.date(2026, 3, 1) + dt.timedelta(days=int(rng.integers(0, 200)))
                ).isoformat(),
                "status": "监测中",
                "resp_unit": f"{t['name']}人民政府",
                "resp_name": _person(rng),
                "resp_phone": _phone(rng),
            }
        )
        geoms.append(geom)
    df = pd.DataFrame(rows)
    # 2026 plan: 12 sites get new intelligent monitoring stations (the 12 most threatening active)
    order = df.sort_values("threat_people", ascending=False).index
    station = order[2:14]
    df.loc[station, ["has_station", "station_planned_2026"]] = True
    df.loc[station, "monitor_method"] = "普适型监测设备+群测群防"
    df.loc[station, "measures"] = "专业监测"
    # 2 major treatment projects (the two most threatening): sites under the county town's
    # slopes threaten several hundred people (大型 险情 by DZ/T 0286)
    df.loc[order[0], ["threat_people", "threat_households", "threat_property_wan"]] = [
        680,
        196,
        5200.0,
    ]
    df.loc[order[1], ["threat_people", "threat_households", "threat_property_wan"]] = [
        520,
        151,
        3900.0,
    ]
    df.loc[order[:2], "measures"] = "工程治理"
    df.loc[order[:2], "status"] = "治理中"
    df.loc[order[:2], "deadline"] = "2026-12-31"  # 整改期限: the plan's year
    # 154 people relocated (避险搬迁) from 7 small sites
    small = df[
        (df["threat_people"] >= 12) & (df["threat_people"] <= 40) & ~df.index.isin(order[:14])
    ].index[:7]
    shares = np.array([30, 26, 24, 22, 20, 18, 14])
    df.loc[small, "relocate_people"] = shares[: len(small)]
    df.loc[small, "measures"] = "搬迁避让"
    df.loc[small, "status"] = "治理中"
    # 整改期限: three relocations were due before the 2026 flood season ended (overdue demo)
    df.loc[small, "deadline"] = ["2026-09-30"] * 3 + ["2026-12-31"] * (len(small) - 3)
    # a few already cleared (已销号) — kept as history
    cleared = df[df["status"] == "监测中"].sample(4, random_state=SEED).index
    df.loc[cleared, "status"] = "已销号"
    df.loc[cleared, "cleared_date"] = "2026-06-30"
    df.loc[cleared, "cleared_reason"] = "排危除险"
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def make_waterlogging(rng, gdf_t, codes, villages) -> gpd.GeoDataFrame:
    del villages
    spots = [
        ("葛城街道", "滨河路下穿通道", "下穿通道", 45.0),
        ("葛城街道", "北大街低洼路段", "低洼路段", 30.0),
        ("葛城街道", "南大街与河堤路交叉口", "交叉口", 22.0),
        ("复兴街道", "复兴农贸市场背街小巷", "背街小巷", 18.0),
        ("复兴街道", "中和小区地下车库出入口", "地下空间出入口", 55.0),
        ("复兴街道", "复兴大桥桥头低洼路段", "低洼路段", 12.0),
    ]
    seat = codes[codes["name"] == "葛城街道"].iloc[0]
    centre = Point(float(seat["seat_lon"]), float(seat["seat_lat"]))
    cell = _cell_for(seat["adcode"], gdf_t)
    rows, geoms = [], []
    for i, (town, name, site_type, depth) in enumerate(spots):
        geoms.append(_random_point_in(cell, rng, centre, 0.004))
        sensor = f"JS-GC-{i + 1:02d}" if i in (0, 1, 4) else None  # 3 automatic monitors (plan)
        rows.append(
            {
                "uid": f"NL-500229-{i + 1:03d}",
                "name": name,
                "township_declared": town,
                "site_type": site_type,
                "max_depth_cm": depth,
                "area_m2": float(round(rng.uniform(80, 900), -1)),
                "drain_min": float(round(rng.uniform(20, 180), -1)),
                "warn_depth_cm": 15.0,
                "trigger_rain_mm": 50.0,
                "sensor_id": sensor,
                "has_sign": bool(i % 2 == 0),
                "plan": "一点一案一策：移动泵车抽排、交通疏导、低洼住户转移",
                "rectify_2026": True,
                "status": "治理中" if i < 2 else "监测中",
                "deadline": ("2026-10-15", "2027-05-31")[i] if i < 2 else None,
                "resp_unit": "县住房城乡建委",
                "resp_name": _person(rng),
                "resp_phone": _phone(rng),
            }
        )
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs="EPSG:4326")


def make_bridge(rng, gdf_t, codes, villages) -> gpd.GeoDataFrame:
    routes = ["G541", "S202", "X216", "X218", "X221", "Y035", "Y112"]
    rural = codes[codes["seat_lon"].notna()].reset_index(drop=True)
    scores = [
        28.0,
        35.5,
        38.0,
        42.0,
        45.5,
        48.0,
        51.0,
        53.5,
        56.0,
        58.5,
        66.0,
        72.5,
        83.0,
        88.0,
        96.0,
    ]
    rows, geoms = [], []
    for i, dr in enumerate(scores):
        t = rural.iloc[rng.integers(len(rural))]
        seat = Point(float(t["seat_lon"]), float(t["seat_lat"]))
        geoms.append(_random_point_in(_cell_for(t["adcode"], gdf_t), rng, seat, 0.02))
        village = str(rng.choice(_villages_of(t["adcode"], villages)))
        route = routes[i % len(routes)]
        length = float(round(rng.uniform(8, 160), 1))
        span = (
            "特大桥"
            if length > 1000
            else "大桥"
            if length > 100
            else "中桥"
            if length > 30
            else "小桥"
        )
        cls = (
            "5类"
            if dr < 40
            else "4类"
            if dr < 60
            else "3类"
            if dr < 80
            else "2类"
            if dr < 95
            else "1类"
        )
        danger = cls in {"4类", "5类"}
        rows.append(
            {
                "uid": f"QL-500229-{i + 1:03d}",
                "name": _bridge_name(village),
                "township_declared": t["name"],
                "village": village,
                "bridge_code": f"{route}500229L{i + 1:04d}",
                "route_code": route,
                "stake_km": float(round(rng.uniform(1, 60), 3)),
                "maint_unit": "城口县公路事务中心",
                "length_m": length,
                "width_m": float(round(rng.uniform(4.5, 9), 1)),
                "max_span_m": float(round(min(length, rng.uniform(6, 40)), 1)),
                "span_class": span,
                "built_year": int(rng.integers(1968, 2005)),
                "dr_score": dr,
                "condition_class": cls,
                "traffic_control": ("封闭" if cls == "5类" else "限载") if danger else "无",
                "load_limit_t": (None if cls == "5类" else float(rng.choice([10, 15, 20])))
                if danger
                else None,
                "rebuild_status": str(rng.choice(["已批复", "在建", "未立项"])) if danger else None,
                "planned_done": "2026-12-31" if danger else None,
                "status": "治理中" if danger else "监测中",
                "resp_unit": "县交通运输委",
                "resp_name": _person(rng),
                "resp_phone": _phone(rng),
            }
        )
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs="EPSG:4326")


def _blob(centre_xy: tuple[float, float], rng: np.random.Generator, radius_m: float) -> Polygon:
    """Return an irregular closed outline around a centre, in metric coordinates."""
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    radii = radius_m * (
        1 + 0.35 * np.sin(3 * angles + rng.uniform(0, 6)) + rng.uniform(-0.1, 0.1, 24)
    )
    return Polygon(
        zip(
            centre_xy[0] + radii * np.cos(angles),
            centre_xy[1] + radii * 0.7 * np.sin(angles),
            strict=True,
        )
    )


def make_firezone(rng, gdf_t, codes, villages, settings: Settings) -> gpd.GeoDataFrame:
    del codes, villages
    metric = gdf_t.to_crs(settings.metric_crs)
    # Clip to the county outline itself (data/county.geojson), not only to the union of the
    # approximate township cells: a fire zone never reaches outside the county it is filed in.
    county = io.read_county(settings).to_crs(settings.metric_crs).union_all()
    borders = shapely.intersection(shapely.boundary(metric.geometry.to_numpy()), county)
    lines = [b for b in borders if not b.is_empty]
    grades = ["I级"] * 4 + ["II级"] * 4 + ["III级"] * 4
    rows, geoms = [], []
    for i, grade in enumerate(grades):
        line = lines[(i * 7) % len(lines)]
        centre = line.interpolate(rng.uniform(0.3, 0.7), normalized=True)
        poly = _blob((centre.x, centre.y), rng, rng.uniform(2500, 4500)).intersection(county)
        geoms.append(poly)
        level = int(rng.integers(1, 6))
        rows.append(
            {
                "uid": f"HX-500229-{i + 1:03d}",
                "name": f"{['大巴山', '九重山', '黄安坝', '亢河', '巴山湖', '光头山'][i % 6]}林区{i + 1}号火险区",
                "zone_grade": grade,
                "forest_area_ha": None,
                "fire_danger_level": level,
                "fire_danger_date": "2026-11-20",
                "rangers": int(rng.integers(4, 30)),
                "towers": int(rng.integers(0, 3)),
                "cameras": int(rng.integers(1, 8)),
                "checkpoints": int(rng.integers(0, 4)),
                "protect_targets": str(rng.choice(["居民点", "学校", "景区", "居民点、学校"])),
                "status": "监测中",
                "resp_unit": "县林业局",
                "resp_name": _person(rng),
                "resp_phone": _phone(rng),
            }
        )
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=settings.metric_crs)
    gdf["forest_area_ha"] = (gdf.area / 1e4 * rng.uniform(0.6, 0.9, len(gdf))).round(1)
    return gdf.to_crs("EPSG:4326")


def main() -> None:
    """Write the four demo layers into ``layers/``."""
    settings = Settings()
    catalog = io.read_catalog(settings)
    gdf_t, codes, villages = _township_cells(settings)
    makers = {
        "geohazard": lambda rng: make_geohazard(rng, gdf_t, codes, villages),
        "waterlogging": lambda rng: make_waterlogging(rng, gdf_t, codes, villages),
        "bridge": lambda rng: make_bridge(rng, gdf_t, codes, villages),
        "firezone": lambda rng: make_firezone(rng, gdf_t, codes, villages, settings),
    }
    for offset, (layer_id, make) in enumerate(makers.items()):
        spec = catalog.get(layer_id)
        gdf = make(np.random.default_rng(SEED + offset))
        gdf["updated_at"] = UPDATED
        gdf["source"] = SOURCE
        gdf["demo"] = True
        gdf = apply_derived(coerce_layer(gdf, spec), spec, metric_crs=settings.metric_crs)
        gdf = gdf.drop(columns=["township", "township_code", "flags"], errors="ignore")
        text = io.geojson_text(gdf)
        io.write_text_atomic(spec.path(settings.layers_dir), text)
        print(
            f"{layer_id}: {len(gdf)} features -> {spec.path(settings.layers_dir).relative_to(ROOT)}"
        )


if __name__ == "__main__":
    main()
