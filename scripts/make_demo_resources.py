"""Generate the bundled DEMO emergency-resource layers (应急资源, 演示数据) — seeded, reproducible.

No public register of Chengkou's shelters, rescue teams or supply depots exists, so the three
resource layers (``shelters``, ``teams``, ``depots``, declared in ``layers/catalog.toml`` with
``role = "shelter" | "team" | "depot"``) and the township duty contacts
(the records collection ``duty_contacts``,
``layers/records/duty_contacts.json``) are made here: each township gets resources within about 1 km
of its real seat (GeoNames point in ``data/townships.csv``; 复兴街道, which has no seat point,
shares the county town with 葛城街道), named after its real villages. Every feature carries
``demo: true``; names (``X某某``) and phones (``1390000xxxx``) are fictitious.

Run from the project root: ``python scripts/make_demo_resources.py`` (overwrites the three
layer files and the duty-contact file). Same seed → byte-identical output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
from shapely.geometry import Point

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskmap import io  # noqa: E402
from riskmap.schema import coerce_layer  # noqa: E402
from riskmap.settings import Settings  # noqa: E402

SEED = 500230
SOURCE = "演示数据 scripts/make_demo_resources.py (seed 500230)"
UPDATED = "2026-11-20"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
COUNTY_TOWN = ("葛城街道", "复兴街道")


def _person(rng: np.random.Generator) -> str:
    return f"{SURNAMES[rng.integers(len(SURNAMES))]}某某"


def _phone(rng: np.random.Generator) -> str:
    # 1390000xxxx: a fictitious block, obviously not a real subscriber
    return f"1390000{rng.integers(0, 10000):04d}"


def _village_short(name: str) -> str:
    for suffix, kind in (("村民委员会", "村"), ("居民委员会", "社区")):
        if name.endswith(suffix):
            stem = name.removesuffix(suffix)
            return stem if stem.endswith(kind) else stem + kind
    return name


def _near(seat: Point, cell, rng: np.random.Generator, spread_deg: float) -> Point:
    """Return a point about `spread_deg` from the seat, inside the township's cell."""
    for _ in range(10_000):
        p = Point(
            round(seat.x + rng.normal(0, spread_deg), 6),
            round(seat.y + rng.normal(0, spread_deg), 6),
        )
        if cell.contains(p):
            return p
    msg = "could not place a point"
    raise RuntimeError(msg)


def _townships(settings: Settings) -> list[dict]:
    """Every township with its seat point, its cell and its villages."""
    gdf_t = io.read_townships(settings)
    codes = io.read_township_codes(settings)
    villages = pd.read_csv(settings.data_dir / "villages.csv", dtype=str)
    col = "streetCode" if "streetCode" in villages.columns else "township_code"
    seat_gc = codes[codes["name"] == "葛城街道"].iloc[0]
    out = []
    for row in codes.itertuples():
        own = gdf_t[gdf_t["adcode"] == row.adcode]
        cell = (
            own.geometry.iloc[0]
            if len(own)
            else gdf_t[gdf_t["also_covers"].fillna("").str.contains(row.adcode)].geometry.iloc[0]
        )
        lon = row.seat_lon if pd.notna(row.seat_lon) else seat_gc["seat_lon"]
        lat = row.seat_lat if pd.notna(row.seat_lat) else seat_gc["seat_lat"]
        names = villages.loc[villages[col].str[:9] == row.adcode, "name"].map(_village_short)
        out.append(
            {
                "code": row.adcode,
                "name": row.name,
                "seat": Point(float(lon), float(lat)),
                "cell": cell,
                "villages": names.tolist() or ["城区"],
            }
        )
    return out


def make_shelters(rng: np.random.Generator, towns: list[dict]) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for town in towns:
        short = town["name"].removesuffix("街道").removesuffix("镇").removesuffix("乡")
        county_town = town["name"] in COUNTY_TOWN
        sites = [("室内", f"{short}中心学校避难场所", "教室、操场、饮水、厕所、应急照明")]
        outdoor = f"{rng.choice(town['villages'])}广场避难场所"
        sites.append(("室外", outdoor, "帐篷区、饮水、临时厕所"))
        if county_town:
            sites.append(("室内", f"{short}体育馆避难场所", "床位、饮水、医疗点、应急照明"))
        for kind, name, facilities in sites:
            capacity = (
                int(rng.integers(800, 2500) if county_town else rng.integers(150, 900)) // 10 * 10
            )
            per_person_m2 = 2.0 if kind == "室内" else 1.5
            rows.append(
                {
                    "name": name,
                    "township_declared": town["name"],
                    "village": str(rng.choice(town["villages"])),
                    "shelter_kind": kind,
                    "capacity": capacity,
                    "area_m2": float(round(capacity * per_person_m2 * rng.uniform(1.0, 1.3), -1)),
                    "address": f"城口县{town['name']}",
                    "facilities": facilities,
                    "status": "在册",
                    "resp_unit": f"{town['name']}人民政府"
                    if town["name"] != "复兴街道"
                    else "复兴街道办事处",
                    "resp_name": _person(rng),
                    "resp_phone": _phone(rng),
                }
            )
            geoms.append(_near(town["seat"], town["cell"], rng, 0.006 if county_town else 0.008))
    df = pd.DataFrame(rows)
    df.insert(0, "uid", [f"BN-500229-{i + 1:03d}" for i in range(len(df))])
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def make_teams(rng: np.random.Generator, towns: list[dict]) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    county = [
        ("城口县综合应急救援大队", "综合救援队", 60, "冲锋舟、破拆工具、生命探测仪、发电机"),
        ("城口县地质灾害应急分队", "地灾应急队", 24, "无人机、裂缝计、全站仪"),
        ("城口县森林消防专业队", "森林消防队", 45, "风力灭火机、水泵、隔离带工具"),
    ]
    seat_gc = next(t for t in towns if t["name"] == "葛城街道")
    for name, kind, members, equipment in county:
        rows.append((name, "葛城街道", kind, members, equipment, "县应急管理局"))
        geoms.append(_near(seat_gc["seat"], seat_gc["cell"], rng, 0.005))
    for town in towns:
        kind = "民兵应急分队" if rng.random() < 0.3 else "乡镇应急队"
        rows.append(
            (f"{town['name']}{kind}", town["name"], kind, int(rng.integers(12, 40)),
             "铁锹、雨具、手摇报警器、应急照明", f"{town['name']}人民政府")
        )  # fmt: skip
        geoms.append(_near(town["seat"], town["cell"], rng, 0.004))
    df = pd.DataFrame(
        rows,
        columns=["name", "township_declared", "team_kind", "members", "equipment", "resp_unit"],
    )
    df.insert(0, "uid", [f"DW-500229-{i + 1:03d}" for i in range(len(df))])
    df["duty_phone"] = [_phone(rng) for _ in range(len(df))]
    df["resp_name"] = [_person(rng) for _ in range(len(df))]
    df["resp_phone"] = [_phone(rng) for _ in range(len(df))]
    df["status"] = "在册"
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def make_depots(rng: np.random.Generator, towns: list[dict]) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    seat_gc = next(t for t in towns if t["name"] == "葛城街道")
    rows.append(
        ("城口县应急物资储备库", "葛城街道", "县级",
         "帐篷200顶、折叠床500张、棉被1000床、发电机10台、冲锋舟4艘", "县应急管理局")
    )  # fmt: skip
    geoms.append(_near(seat_gc["seat"], seat_gc["cell"], rng, 0.005))
    for town in towns:
        tents = int(rng.integers(10, 40))
        quilts = int(rng.integers(50, 200))
        rows.append(
            (f"{town['name']}应急物资储备点", town["name"], "乡镇级",
             f"帐篷{tents}顶、棉被{quilts}床、雨具、手电、方便食品、饮用水",
             f"{town['name']}人民政府")
        )  # fmt: skip
        geoms.append(_near(town["seat"], town["cell"], rng, 0.004))
    df = pd.DataFrame(
        rows, columns=["name", "township_declared", "depot_level", "main_supplies", "resp_unit"]
    )
    df.insert(0, "uid", [f"WZ-500229-{i + 1:03d}" for i in range(len(df))])
    df["resp_name"] = [_person(rng) for _ in range(len(df))]
    df["resp_phone"] = [_phone(rng) for _ in range(len(df))]
    df["status"] = "在册"
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def duty_contacts(rng: np.random.Generator, towns: list[dict]) -> list[dict]:
    """Return the township duty contacts (乡镇值班), one record per township, demo-marked."""
    return [
        {
            "township_code": town["code"],
            "township": town["name"],
            "duty_name": _person(rng),
            "duty_phone": _phone(rng),
            "duty_office": f"{town['name']}值班室",
            "demo": True,
            "source": SOURCE,
        }
        for town in towns
    ]


def main() -> None:
    """Write the three resource layers and the duty contacts into ``layers/``."""
    settings = Settings()
    catalog = io.read_catalog(settings)
    towns = _townships(settings)
    makers = {"shelters": make_shelters, "teams": make_teams, "depots": make_depots}
    for offset, (layer_id, make) in enumerate(makers.items()):
        spec = catalog.get(layer_id)
        gdf = make(np.random.default_rng(SEED + offset), towns)
        gdf["updated_at"] = UPDATED
        gdf["source"] = SOURCE
        gdf["demo"] = True
        gdf = coerce_layer(gdf, spec)
        gdf = gdf.drop(columns=["township", "township_code", "flags"], errors="ignore")
        path = spec.path(settings.layers_dir)
        io.write_text_atomic(path, io.geojson_text(gdf))
        print(f"{layer_id}: {len(gdf)} features -> {path.relative_to(ROOT)}")
    # The store's records collection ``duty_contacts`` (riskmap.store.files layout); written
    # directly here because this script *creates* the bundled seed, it does not edit data.
    path = settings.layers_dir / "records" / "duty_contacts.json"
    records = duty_contacts(np.random.default_rng(SEED + 9), towns)
    text = json.dumps(records, ensure_ascii=False, allow_nan=False, indent=1) + "\n"
    io.write_text_atomic(path, text)
    print(f"duty contacts: {len(towns)} townships -> {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
