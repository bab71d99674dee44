"""Run by the system Python with QGIS's bindings (Debian python3-qgis): open a citygrid collection through
QGIS's own OGC API – Features provider (OAPIF), unmodified, and print what QGIS sees as JSON.

    python3 oapif_probe.py BASE_URL COLLECTION_ID MINX,MINY,MAXX,MAXY
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import Qgis, QgsApplication, QgsFeatureRequest, QgsRectangle, QgsVectorLayer  # noqa: E402

QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
base, collection, bbox = sys.argv[1], sys.argv[2], sys.argv[3]
# pageSize below the collection's size: QGIS has to follow the `next` links
layer = QgsVectorLayer(f"url='{base}/ogc' typename='{collection}' pageSize='50'", "probe", "OAPIF")
out = {"valid": layer.isValid(), "qgis": Qgis.QGIS_VERSION}
if layer.isValid():
    out["feature_count"] = layer.featureCount()  # numberMatched
    out["crs"] = layer.crs().authid()
    out["fields"] = [f.name() for f in layer.fields()]
    out["geometry_type"] = layer.wkbType()
    e = layer.extent()  # from the collection document, before any feature is read: what "zoom to layer" shows
    out["extent"] = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
    feats = list(layer.getFeatures())
    out["xy"] = {str(f["code"]): [f.geometry().asPoint().x(), f.geometry().asPoint().y()] for f in feats}
    out["n"] = len(feats)
    req = QgsFeatureRequest().setFilterRect(QgsRectangle(*map(float, bbox.split(","))))
    out["bbox_codes"] = sorted(str(f["code"]) for f in layer.getFeatures(req))
print(json.dumps(out, ensure_ascii=False), flush=True)
os._exit(0)  # QGIS 3.22's exitQgis() can crash at teardown after network layers; nothing is left to clean
