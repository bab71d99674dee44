"""What each role may do, decided here and only here; core functions call these with the caller's `Principal`
and routers never decide rights themselves. A refusal is a coded error: 401 (`unauthenticated`) for anonymous
callers who would need credentials, 403 (`forbidden`) for principals whose roles do not cover the act.

| act | who |
|---|---|
| read published layers, tiles, aggregates above k, reference data | everyone (anonymous included) |
| read a class that is not public (catalog `public: false`) | admin; the owning department; cadres and reviewers in their area |
| create/update/retire/split/merge objects of a class | admin; a department owning the class, inside its division scope |
| reserve code blocks for a class | the same as editing that class |
| register persons and organizations (三实), read personal fields | a principal with the `personal` grant (and L4 clearance) |
| submit surveyed objects | a cadre in its village (admin too) |
| review submissions | a reviewer in its township (admin too) |
| resolve addresses in bulk (batch files) | departments and admins |
| principals, grants, catalog, grid-system imports | admin |
"""

from __future__ import annotations

from citygrid.catalog import ObjectClass
from citygrid.errors import E
from citygrid.security.principal import Principal


def require_login(p: Principal, action_zh: str, action_en: str) -> None:
    if p.anonymous:
        raise E.unauthenticated(None, action_zh=action_zh, action_en=action_en)


def _refuse(p: Principal, action_zh: str, action_en: str, why_zh: str, why_en: str) -> None:
    require_login(p, action_zh, action_en)
    raise E.forbidden(None, why_zh=f"{action_zh}：{why_zh}", why_en=f"{action_en}: {why_en}")


def may_edit_class(p: Principal, cls: ObjectClass, division_code: str | None) -> bool:
    """Admins anywhere; a department for the classes it owns (责任分工目录) or is granted, inside its scope."""
    if p.is_admin:
        return True
    return any((g.department == cls.department.id or (g.classes is not None and cls.code in g.classes))
               and g.covers(division_code) for g in p.grants_of("department"))


def require_edit_class(p: Principal, cls: ObjectClass, division_code: str | None, action_zh: str = "修改对象",
                       action_en: str = "editing objects") -> None:
    if not may_edit_class(p, cls, division_code):
        _refuse(p, action_zh, action_en, f"{cls.name}（{cls.code}）归 {cls.department.name} 管理，"
                f"{division_code or '该地区'}不在您的权限范围内" if p.grants else "您没有任何角色",
                f"class {cls.code} belongs to department {cls.department.id}; your roles do not cover it in "
                f"{division_code or 'this place'}")


def may_read_class(p: Principal, cls: ObjectClass, division_code: str | None = None) -> bool:
    """Public classes for everyone; the others for those who own them or work in the place."""
    if cls.public or may_edit_class(p, cls, division_code):
        return True
    return any(g.covers(division_code) for g in p.grants if g.role in ("cadre", "reviewer")) \
        if division_code is not None else False


def may_read_personal(p: Principal) -> bool:
    return p.is_admin or (p.personal and p.clearance == "L4")


def require_personal(p: Principal, action_zh: str = "登记或查看个人信息",
                     action_en: str = "registering or reading personal data") -> None:
    if not may_read_personal(p):
        _refuse(p, action_zh, action_en, "需要个人信息授权（personal）和 L4 密级",
                "needs the personal-data grant and L4 clearance")


def require_admin(p: Principal, action_zh: str, action_en: str) -> None:
    if not p.is_admin:
        _refuse(p, action_zh, action_en, "仅管理员可以操作", "only admins may do this")


def require_submit(p: Principal, village: str) -> None:
    if p.is_admin or any(g.covers(village) for g in p.grants_of("cadre")):
        return
    _refuse(p, "提交调查数据", "submitting survey data", f"村/社区 {village} 不在您的范围内",
            f"village {village} is not yours")


def require_review(p: Principal, township: str) -> None:
    if p.is_admin or any(g.covers(township) for g in p.grants_of("reviewer")):
        return
    _refuse(p, "审核调查数据", "reviewing survey data", f"乡镇 {township} 不在您的范围内",
            f"township {township} is not yours")


def require_bulk_resolve(p: Principal) -> None:
    if p.is_admin or p.grants_of("department"):
        return
    _refuse(p, "批量地址解析", "batch address resolution", "仅部门和管理员可以使用", "departments and admins only")
