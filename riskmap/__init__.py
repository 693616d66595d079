"""riskmap: a county's safety-risk points on one map (一张图).

Layers of risk points (GeoJSON, EPSG:4326) declared in one catalog, joined to townships
(乡镇/街道), summarised, exported as per-township lists and shown on an offline folium map.
"""

__version__ = "0.1.0"
