"""What every geocode answer carries besides the resolver's own fields (citygrid/address/resolve.py): the match
level in the words departments know from Amap (`level_amap`), whether the match is exact (`precise`, as Baidu's
geocoder says it) and the point in the CRS the caller asked for (`citygrid.crs`: GCJ-02 for Amap/Tencent maps,
BD-09 for Baidu, CGCS2000, WGS84, Gauss-Krüger zones).

The single GET, the POST list and the batch rows all pass through `present`, so the three never disagree.

Amap's levels (高德地理编码 `level`) against the resolver's (`level`, kept as it is):

| level | level_zh | level_amap | why |
|---|---|---|---|
| province | 省 | 省 | |
| city | 市 | 市 | |
| county | 县区 | 区县 | |
| township | 乡镇街道 | 乡镇, or 开发区 | a township-level development zone, industrial park or 管委会 is Amap's 开发区 |
| village | 村社区 | 村庄 | |
| village_group | 组 | 村庄 | Amap has nothing below the village; the point is the group's |
| road | 街路巷 | 道路 | |
| door | 门牌 | 门牌号 | |
| compound | 小区院落 | 住宅区, or 兴趣点 | a residential name (小区 花园 苑 …) is 住宅区; a school, hospital or works is 兴趣点 |
| building | 楼栋 | 单元号 | Amap has no building level: its 单元号 covers 楼 and 单元 (its example: 望京西园四区5号楼2单元) |
| unit | 单元 | 单元号 | |
| floor | 楼层 | 楼层 | finer than Amap goes; the words departments use |
| room | 户室 | 房间 | finer than Amap goes |

`precise` is true when nothing was guessed: the point is the address's own (a door plate or finer, or a
compound), no part of the name was matched approximately, nothing fell back to a coarser level, and no part of the
input was left unused. Otherwise it is false and the confidence says how far to trust the answer.
"""

from __future__ import annotations

import re
from typing import Any

from citygrid import crs as crsmod
from citygrid.address.resolve import AddressIndex, geocode_safe
from citygrid.crs import Crs

LEVEL_AMAP = {"province": "省", "city": "市", "county": "区县", "township": "乡镇", "village": "村庄",
              "village_group": "村庄", "road": "道路", "door": "门牌号", "compound": "住宅区", "building": "单元号",
              "unit": "单元号", "floor": "楼层", "room": "房间"}
AMAP_LEVELS = ["省", "市", "区县", "开发区", "乡镇", "村庄", "道路", "门牌号", "单元号", "楼层", "房间", "兴趣点", "住宅区"]
POINT_LEVELS = {"door", "compound", "building", "unit", "floor", "room"}
_DEV_ZONE = re.compile(r"(开发区|高新区|新区|园区|工业园|产业园|管理委员会|管委会|示范区|保税区)$")
_RESIDENTIAL = re.compile(r"(小区|花园|家园|苑|新村|雅居|华府|名都|佳园|公馆|公寓|嘉园|名苑|山庄|庭|府|城|湾|居|里|宿舍|村)$")

DESCRIPTION = ("Every candidate keeps `level` (citygrid's: province … room) and `level_zh`, and adds `level_amap`, the "
               "match level in Amap's words (" + "/".join(AMAP_LEVELS) + "; building and unit are 单元号, a "
               "development zone township 开发区, a residential compound 住宅区 and any other compound 兴趣点), and "
               "`precise` beside `confidence`: true when nothing was guessed (the point is the address's own, no "
               "approximate name, no fallback to a coarser level, nothing of the input unused), as Baidu's `precise`. "
               "`crs` (gcj02, bd09, CGCS2000 = EPSG:4490 the default, EPSG:4326, EPSG:4534–4554 Gauss-Krüger, or their "
               "URIs) gives `point` in that CRS ({lon, lat, crs}, projected {x, y, crs}); `point.wgs84` stays WGS84. "
               "GCJ-02 and BD-09 are defined only inside China: elsewhere a 400 crs_offset_outside.")


def level_amap(c: dict[str, Any]) -> str:
    """The candidate's level in Amap's words."""
    level = str(c.get("level", ""))
    if level == "township" and _DEV_ZONE.search((c.get("township") or {}).get("name") or ""):
        return "开发区"
    if level == "compound":
        name = c.get("address") or ""
        return "住宅区" if _RESIDENTIAL.search(name) else "兴趣点"
    return LEVEL_AMAP.get(level, level)


def is_precise(c: dict[str, Any]) -> bool:
    """Exact (true) or fuzzy (false) match, see the module's docstring."""
    return (c.get("level") in POINT_LEVELS and c.get("point") is not None and not c.get("notes")
            and not c.get("unused"))


def present(result: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """A resolver answer (one address) with `level_amap` and `precise` on every candidate and their points in
    `crs`. The CRS is checked on every point: a point GCJ-02 cannot express is a coded 400 (never a wrong point)."""
    return present_all([result], crs)[0]


def present_all(results: list[dict[str, Any]], crs: Crs) -> list[dict[str, Any]]:
    """`present` over many answers, with one transform for all their points (a list of 10,000 addresses would
    otherwise pay numpy's per-call cost 10,000 times)."""
    moved: list[dict[str, Any]] = []
    for result in results:
        for c in result.get("candidates") or ():
            c["level_amap"] = level_amap(c)
            c["precise"] = is_precise(c)
            if c.get("point") is not None and not crs.is_storage:
                moved.append(c)
    if moved:
        xs, ys = crs.out_of_storage([c["point"]["lon"] for c in moved], [c["point"]["lat"] for c in moved])
        nd = 7 if crs.geographic else 3
        names = ("lon", "lat") if crs.geographic else ("x", "y")
        for c, x, y in zip(moved, xs.tolist(), ys.tolist(), strict=True):
            c["point"] = {names[0]: round(x, nd), names[1]: round(y, nd), "crs": crs.key,
                          "wgs84": c["point"].get("wgs84")}
    return results


def geocode(index: AddressIndex, q: str, division: str | None, limit: int, crs: str | None = None) -> dict[str, Any]:
    """One address, answered with the fields above; `crs` as a request names it (`citygrid.crs.lookup`)."""
    c = crsmod.lookup(crs, "crs")
    return present(index.geocode(q, division, limit), c)


def geocode_row(index: AddressIndex, q: Any, division: str | None, limit: int, crs: Crs) -> dict[str, Any]:
    """One address of a list or a file: bad input is an error in the row, not an exception."""
    return present(geocode_safe(index, q, division, limit), crs)
