"""Every error citygrid can answer with, in one catalogue: code, HTTP kind, Chinese and English text.

A raise site names an entry and fills its parameters, so the wording of an error lives here and nowhere
else, and a typo in a code is an attribute error the type checker sees:

    raise E.address_too_long(field="q", n=len(q), limit=MAX_LEN)

Texts are `str.format` templates; every `{name}` must be given. The web layer (`api/errors.py`) maps each
kind to an HTTP status; the core never imports the web framework. `/errors` and the API documentation list
the catalogue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from string import Formatter
from typing import Any, Literal, TypedDict

Kind = Literal["invalid", "unauthenticated", "forbidden", "not_found", "conflict", "unprocessable", "too_many",
               "too_large", "internal", "unavailable", "not_allowed", "precondition_failed", "unsupported_media",
               "insufficient_storage"]


@dataclass
class Problem:
    error_code: str
    message_zh: str
    message_en: str
    field: str | None = None
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CitygridError(Exception):
    """One or more problems with a request; `problems[0]` is the headline."""

    def __init__(self, problems: list[Problem] | Problem, kind: Kind = "invalid",
                 retry_after: int | None = None) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        self.kind = kind
        self.retry_after = retry_after  # seconds, for answers a caller should retry later (429, 503)
        super().__init__("; ".join(p.message_en for p in self.problems))

    # The headline, for callers that handle one problem (CLI messages, per-row results).
    @property
    def error_code(self) -> str:
        return self.problems[0].error_code

    @property
    def message_zh(self) -> str:
        return self.problems[0].message_zh

    @property
    def message_en(self) -> str:
        return self.problems[0].message_en

    def to_dict(self) -> dict[str, Any]:
        head = self.problems[0]
        return {**head.to_dict(), "errors": [p.to_dict() for p in self.problems]}


@dataclass(frozen=True)
class ErrorEntry:
    """One catalogue entry. Call it to get the error to raise; `.problem(...)` for one of several problems."""

    code: str
    kind: Kind
    zh: str
    en: str
    note: str = ""

    @property
    def params(self) -> list[str]:
        """The template parameters, sorted; `_zh`/`_en` ones are words in that language only."""
        return sorted({name for t in (self.zh, self.en) for _, name, _, _ in Formatter().parse(t) if name})

    def problem(self, field: str | None = None, row: int | None = None, **params: Any) -> Problem:
        return Problem(self.code, self.zh.format(**params), self.en.format(**params), field, row)

    def __call__(self, field: str | None = None, row: int | None = None, retry_after: int | None = None,
                 **params: Any) -> CitygridError:
        return CitygridError(self.problem(field, row, **params), self.kind, retry_after)


class Detail(TypedDict):
    """Typed, so that `**detail(...)` cannot be mistaken for an entry's `field` or `row`."""

    detail_zh: str
    detail_en: str


def detail(zh: str | None, en: str | None = None) -> Detail:
    """`detail_zh`/`detail_en` for templates ending in an optional "：why" (empty when there is no why)."""
    if not zh:
        return {"detail_zh": "", "detail_en": ""}
    return {"detail_zh": f"：{zh}", "detail_en": f": {zh if en is None else en}"}


def _e(code: str, zh: str, en: str, kind: Kind = "invalid", note: str = "") -> ErrorEntry:
    return ErrorEntry(code, kind, zh, en, note)


class E:
    """The catalogue. Attribute names are the error codes."""

    # --- requests: the web framework's own errors, answered in the same shape (api/errors.py) -------------------
    request_invalid = _e("request_invalid", "字段 {loc_zh}：{detail_zh}", "{loc_en}: {detail_en}", "unprocessable",
                         "a family: the code is request_<type>, the pydantic error type (request_missing, …); "
                         "400 under /ogc/, as OGC API - Features Part 1 requires")
    request_malformed = _e("request_malformed", "请求体无法解析（不是合法的 JSON）", "{detail_en}",
                           note="the English text is the framework's own")
    http_error = _e("http_error", "{detail_zh}", "{detail_en}", "not_found",
                    "a family: the code is http_<status> and the status is that HTTP status (http_404, http_405, …)")
    body_too_large = _e("body_too_large", "请求体超过本接口的上限 {limit}", "the request body exceeds this route's limit of {limit}",
                        "too_large", "answered before the body is read (api/hardening.py)")
    rate_limited = _e("rate_limited", "请求过于频繁（{what_zh}），请 {seconds} 秒后再试",
                      "too many requests ({what_en}): retry in {seconds} s", "too_many",
                      "the Retry-After header says the same")
    text_unstorable = _e("text_unstorable", "{where_zh}含有无法保存的字符（{what_zh}）",
                         "{where_en} contains a character that cannot be stored ({what_en})",
                         note="PostgreSQL text cannot hold NUL (U+0000) or unpaired surrogates; checked on every "
                              "request and again where text enters SQL")
    database_unavailable = _e("database_unavailable", "数据库暂时不可用（{reason_zh}），请 {seconds} 秒后再试",
                              "the database is unavailable for the moment ({reason_en}): retry in {seconds} s", "unavailable",
                              "a 503 with Retry-After; the server reconnects by itself when the database is back")
    not_ready = _e("not_ready", "服务尚未就绪（{reason_zh}），请 {seconds} 秒后再试",
                   "not ready yet ({reason_en}): retry in {seconds} s", "unavailable",
                   "GET /readyz for load balancers: 503 with Retry-After until the database answers and the address "
                   "index is in memory")
    internal_error = _e("internal_error", "服务器内部错误，已记录（编号 {ref}）",
                        "internal server error, logged under reference {ref}", "internal",
                        "the details (never SQL, values or secrets) are in the server log under the reference")

    # --- codes: unified and component codes, their validation and allocation ------------------------------------
    code_length = _e("code_length", "代码长度应为 {length} 位，实际为 {actual} 位",
                     "code must be {length} characters long, got {actual}")
    code_characters = _e("code_characters", "代码只能包含数字 0-9，发现非法字符：{chars}",
                         "code may contain digits 0-9 only, found: {chars}")
    code_division_unknown = _e("code_division_unknown", "行政区划代码 {division} 不存在", "unknown division code {division}")
    code_class_unknown = _e("code_class_unknown", "分类代码 {class_code} 不在分类目录中", "unknown class code {class_code}")
    code_check_digit = _e("code_check_digit", "校验码错误：应为 {expected}，实际为 {actual}",
                          "check digit mismatch: expected {expected}, got {actual}")
    code_format = _e("code_format", "对象代码格式错误：{code}", "malformed object code {code!r}")
    code_not_found = _e("code_not_found", "部件代码 {code} 未登记", "component code {code} is not registered", "not_found")
    alloc_count = _e("alloc_count", "分配数量必须大于 0", "count must be at least 1")
    alloc_exhausted = _e("alloc_exhausted", "{division}/{series} 的顺序码已用尽（上限 {limit}）",
                         "serials for {division}/{series} are exhausted (limit {limit})", "conflict",
                         "series is a class code, or c + a component code for component serials")

    # --- catalog and attributes: object classes and the values of their attributes ----------------------------
    class_unknown = _e("class_unknown", "分类代码 {code} 不在分类目录中", "unknown class {code}")
    class_not_found = _e("class_not_found", "分类代码 {code} 不存在", "class {code} not found", "not_found")
    department_unknown = _e("department_unknown", "部门 {department} 不在责任分工目录中",
                            "unknown department {department}")
    attrs_type = _e("attrs_type", "属性必须是对象（键值对）", "attrs must be an object")
    attr_required = _e("attr_required", "缺少必填{attr_zh}", "missing required {attr_en}")
    attr_type = _e("attr_type", "{attr_zh} {value_zh}不是{type_zh}", "{attr_en}: {value_en} is not {type_en}")
    attr_enum = _e("attr_enum", "{attr_zh} {value_zh}不在允许值中：{choices_zh}", "{attr_en}: {value_en} is not one of: {choices_en}")
    attr_range = _e("attr_range", "{attr_zh} {value_zh}{bound_zh} {limit}{unit}", "{attr_en}: {value_en} is {bound_en} {limit}{unit}")
    attr_length = _e("attr_length", "{attr_zh} 的长度 {length} 超过上限 {limit} 个字符",
                     "{attr_en}: length {length} exceeds the maximum of {limit} characters")
    attr_pattern = _e("attr_pattern", "{attr_zh} {value_zh}不符合格式要求{hint_zh}（格式 {pattern}）",
                      "{attr_en}: {value_en} does not match the required pattern {pattern}")
    attr_unknown = _e("attr_unknown", "未知属性“{key}”：类“{class_name_zh}”({class_code}) 没有该属性{hint_zh}",
                      "unknown attribute '{key}': class {class_code} ({class_name_en}) has no such attribute{hint_en}")

    # --- divisions: administrative divisions (GB/T 2260 and below) ---------------------------------------------
    division_code_format = _e("division_code_format", "行政区划代码格式错误：{code}（应为 2/4/6/9/12 位数字）",
                              "malformed division code {code!r}: expected 2, 4, 6, 9 or 12 digits")
    division_not_found = _e("division_not_found", "行政区划代码 {code} 不存在", "division {code} not found", "not_found")
    division_unknown = _e("division_unknown", "行政区划代码 {code} 不存在{rule_zh}", "division {code} does not exist{rule_en}")
    division_required = _e("division_required", "无法根据位置确定所属县级行政区，请提供 division_code",
                           "cannot place the object in a county from its location; give division_code")
    boundary_missing = _e("boundary_missing", "{name_zh}（{code}）没有边界数据", "no boundary loaded for {code}", "not_found")
    geom_outside_division = _e("geom_outside_division", "对象位置不在行政区 {name_zh}（{county}）范围内",
                               "object location is outside division {county}")

    # --- registry: city objects, their versions and lineage --------------------------------------------------
    object_not_found = _e("object_not_found", "对象 {code} 不存在", "object {code} not found", "not_found")
    object_retired = _e("object_retired", "对象 {code} 已注销，不能修改", "object {code} is retired", "conflict")
    version_conflict = _e("version_conflict", "版本冲突：当前版本为 {version}", "version conflict: current version is {version}",
                          "conflict")
    name_invalid = _e("name_invalid", "{label_zh}必须是不超过 {max} 字的{nonempty_zh}文本",
                      "name must be {nonempty_en}text of at most {max} chars")
    part_invalid = _e("part_invalid", "第 {n} 个部分必须是对象", "part {n} must be an object")
    split_parts = _e("split_parts", "拆分至少需要 2 个部分", "a split needs at least 2 parts")
    merge_parts = _e("merge_parts", "合并至少需要 2 个不同的对象", "a merge needs at least 2 distinct objects")
    merge_classes = _e("merge_classes", "合并的对象分类不同，请指定结果的 class_code",
                       "parts have different classes; give class_code for the result")

    # --- geometry and CRS: GeoJSON intake, reprojection, bounding boxes ----------------------------------------
    crs_offset_outside = _e("crs_offset_outside", "{crs} 坐标只在中国境内有定义：坐标超出中国范围或不是有限数",
                            "{crs} is defined only inside China: the coordinates are outside it or not finite numbers")
    crs_unknown = _e("crs_unknown", "不支持的坐标参考系：{crs}", "unknown CRS: {crs}")
    crs_unsupported = _e("crs_unsupported", "不支持的坐标参考系：{crs}；支持：{supported}",
                         "unsupported CRS {crs}; supported: {supported}")
    geom_missing = _e("geom_missing", "缺少几何图形（GeoJSON geometry 对象）", "geometry must be a GeoJSON geometry object")
    geom_malformed = _e("geom_malformed", "几何图形格式错误{detail_zh}", "malformed geometry{detail_en}")
    geom_empty = _e("geom_empty", "几何图形为空", "geometry is empty")
    geom_out_of_range = _e("geom_out_of_range", "坐标超出中国范围（经度 73–136，纬度 3–54）：{bounds}",
                           "coordinates outside China (lon 73–136, lat 3–54): {bounds}")
    geom_type = _e("geom_type", "几何类型应为 {expected_zh}，实际为 {actual}", "geometry type must be {expected_en}, got {actual}")
    geom_invalid = _e("geom_invalid", "几何图形无效：{reason}", "invalid geometry: {reason}")
    bbox_invalid = _e("bbox_invalid", "bbox 应为 minx,miny,maxx,maxy 四个数字且 min ≤ max",
                      "bbox must be minx,miny,maxx,maxy with min <= max")
    point_out_of_range = _e("point_out_of_range", "坐标超出中国范围", "point outside China")

    # --- layers, OGC API and tiles: collections, features, CQL2 filters, vector tiles --------------------------
    collection_not_found = _e("collection_not_found", "图层 {collection} 不存在", "collection {collection} not found",
                              "not_found")
    feature_not_found = _e("feature_not_found", "要素 {feature} 不存在", "feature {feature} not found", "not_found")
    limit_invalid = _e("limit_invalid", "limit 应在 1 到 {max} 之间", "limit must be 1..{max}")
    datetime_invalid = _e("datetime_invalid", "datetime 格式错误：{value}", "invalid datetime {value!r} (RFC 3339)")
    datetime_unsupported = _e("datetime_unsupported", "图层 {collection} 没有有效时间，不能按 datetime 筛选",
                              "collection {collection} has no valid time to filter by datetime")
    property_unknown = _e("property_unknown", "属性 {name} 不是图层 {collection} 的可查询属性",
                          "{name} is not a queryable property of {collection}")
    filter_invalid = _e("filter_invalid", "过滤条件无效：{detail_zh}", "invalid filter: {detail_en}")
    filter_type_mismatch = _e("filter_type_mismatch", "{op} 的类型不一致：{kinds_zh}", "{op} compares {kinds_en}")
    filter_function_unknown = _e("filter_function_unknown", "不支持的函数或运算符：{op}",
                                 "unknown function or operator {op!r}; see the conformance classes at /ogc/conformance")
    filter_property_unknown = _e("filter_property_unknown",
                                 "属性 {name} 不是图层 {collection} 的可查询属性（见 queryables）",
                                 "{name!r} is not a queryable of {collection} (see its queryables)")
    filter_lang_unsupported = _e("filter_lang_unsupported", "不支持的 filter-lang：{lang}（可用 cql2-text、cql2-json）",
                                 "unsupported filter-lang {lang!r}; use cql2-text or cql2-json")
    tile_out_of_range = _e("tile_out_of_range", "瓦片坐标超出范围：{z}/{x}/{y}", "tile {z}/{x}/{y} is outside the tile matrix")
    layer_not_found = _e("layer_not_found", "图层 {layer} 不存在", "layer {layer} not found", "not_found")
    collection_read_only = _e("collection_read_only", "图层 {collection} 只读，不能{action_zh}（只有对象分类图层可以编辑）",
                              "collection {collection} is read-only: {action_en} is for object-class collections only",
                              "not_allowed", "a 405 with an Allow header (OGC API – Features Part 4)")
    feature_body_invalid = _e("feature_body_invalid", "请求体应为 GeoJSON Feature 对象{detail_zh}",
                              "the request body must be a GeoJSON Feature object{detail_en}")
    feature_id_mismatch = _e("feature_id_mismatch", "请求体中的要素标识 {given} 与地址中的 {feature} 不一致",
                             "the feature id {given} in the body differs from {feature} in the path")
    feature_precondition_failed = _e("feature_precondition_failed",
                                     "要素 {feature} 已被修改（当前 ETag 为 {etag}），请重新读取后再提交",
                                     "feature {feature} has changed (its ETag is now {etag}): read it again, then retry",
                                     "precondition_failed", "If-Match or If-Unmodified-Since did not hold: a 412")
    media_type_unsupported = _e("media_type_unsupported", "不支持的内容类型 {given}；可用：{supported}",
                                "unsupported content type {given}; use {supported}", "unsupported_media")
    precondition_invalid = _e("precondition_invalid", "{header} 请求头格式错误：{value}", "malformed {header} header: {value}")
    glyph_range = _e("glyph_range", "字形范围 {range} 无效：应为 256 个码位一段，如 0-255",
                     "glyph range {range} is invalid: a block of 256 code points such as 0-255")

    # --- aggregation: counts, sums and averages by area, with small groups suppressed --------------------------
    stat_invalid = _e("stat_invalid", "stat 只能是 count、sum 或 avg", "stat must be count, sum or avg")
    attr_not_numeric = _e("attr_not_numeric", "属性 {attr} 不是 {class_name_zh}（{class_code}）的数值属性",
                          "{attr} is not a numeric attribute of {class_code}")
    by_invalid = _e("by_invalid", "分组方式 {by} 不正确，只能是 {choices_zh}", "invalid by={by}; must be {choices_en}")

    # --- grids: unit and governance grids, departments' own grid systems (多网合一) ----------------------------
    system_invalid = _e("system_invalid", "网格体系名称应为小写字母开头的字母、数字、-、_（不能是 unit/governance）",
                        "system must be a lowercase slug other than unit/governance")
    system_not_found = _e("system_not_found", "网格体系 {system} 不存在", "grid system {system} not found", "not_found")
    base_invalid = _e("base_invalid", "基础网格只能是 unit 或 governance", "base must be unit or governance")
    geojson_invalid = _e("geojson_invalid", "需要 GeoJSON FeatureCollection{detail_zh}",
                         "a GeoJSON FeatureCollection is required{detail_en}")
    geojson_empty = _e("geojson_empty", "文件中没有网格", "no grid cells in the file")
    grid_code_missing = _e("grid_code_missing", "第 {n} 个要素缺少网格编码字段 {code_field}", "feature {n} has no {code_field}")
    grid_code_duplicate = _e("grid_code_duplicate", "网格编码 {code} 重复", "duplicate grid code {code}")
    grid_not_found = _e("grid_not_found", "网格 {system}/{code} 不存在", "grid {system}/{code} not found", "not_found")

    # --- addresses: normalizing and geocoding text, address nodes, 三实 records ----------------------------------
    address_empty = _e("address_empty", "地址为空", "the address is empty")
    address_too_long = _e("address_too_long", "地址过长：{length} 个字符，最多 {limit} 个",
                          "the address is too long: {length} characters, at most {limit}")
    address_not_text = _e("address_not_text", "地址必须是文本，不能是 {type}", "the address must be text, got {type}")
    address_binary = _e("address_binary", "地址含有二进制或控制字符，不是文本", "the address looks like binary data, not text")
    address_not_found = _e("address_not_found", "地址编码 {code} 不存在", "address {code} not found", "not_found")
    address_level = _e("address_level", "该地址是 {level} 级，只能登记到{needed_zh}", "address is a {level}; this needs a {needed_en}")
    no_match = _e("no_match", "没有匹配到乡镇级以下的地址", "no address below county level matches", "not_found",
                  "batch geocoding results only: the error_code of a row that found no address")
    id_number_invalid = _e("id_number_invalid", "公民身份号码格式或校验码错误（GB 11643）",
                           "citizen ID number malformed or check character wrong (GB 11643)")
    phone_invalid = _e("phone_invalid", "电话号码格式错误", "phone number malformed")
    credit_code_invalid = _e("credit_code_invalid", "统一社会信用代码格式或校验码错误（GB 32100）",
                             "unified social credit code malformed or check character wrong (GB 32100)")
    plates_target = _e("plates_target", "请指定 village（村/社区代码）或 compound（小区地址编码）中的一个",
                       "name exactly one of village (a village code) or compound (a compound's address code)")
    plates_not_compound = _e("plates_not_compound", "地址 {code} 是 {level} 级，不是小区院落",
                             "address {code} is a {level}, not a compound")
    plates_none = _e("plates_none", "{place}（{code}）没有可打印的门牌", "no plates to print in {place} ({code})",
                     "not_found")
    plates_font_missing = _e("plates_font_missing", "服务器没有可嵌入的中文字体（{fonts}），请安装 fonts-wqy-microhei "
                             "或设置 CITYGRID_PLATE_FONT", "no CJK font to embed on the server ({fonts}): install "
                             "fonts-wqy-microhei or set CITYGRID_PLATE_FONT", "unavailable")

    # --- jobs and files: uploads, batch jobs and their results -------------------------------------------------
    job_not_found = _e("job_not_found", "任务 {job} 不存在", "job {job} not found", "not_found")
    job_state = _e("job_state", "任务处于 {state} 状态，不能{action_zh}", "a job that is {state} cannot be {action_en}",
                   "conflict", "resume: interrupted, failed or cancelled jobs; cancel: running or interrupted ones")
    job_not_done = _e("job_not_done", "任务尚未完成（{state}）", "job is {state}", "conflict")
    file_too_large = _e("file_too_large", "文件超过 {limit}", "file larger than {limit}")
    storage_full = _e("storage_full", "服务器存储空间已满，文件未保存，请 {seconds} 秒后再试",
                      "the server's storage is full: nothing was stored; retry in {seconds} s", "insufficient_storage",
                      "a 507 with Retry-After when the disk of uploads and job results is full; nothing of the "
                      "upload is kept (a full database disk is database_unavailable, 503)")
    file_empty = _e("file_empty", "文件为空", "file is empty")
    file_type = _e("file_type", "文件不是 CSV 或 Excel（xlsx）表格{detail_zh}", "file is neither CSV nor Excel (xlsx){detail_en}")
    file_encoding = _e("file_encoding", "无法识别文件编码（支持 UTF-8、GBK）", "unknown encoding (UTF-8 or GBK)")
    column_missing = _e("column_missing", "找不到地址列{column_zh}，现有列：{columns_zh}（可用 column 参数指定）",
                        "no address column{column_en} in the header {columns_en} (name one with column=)")
    format_invalid = _e("format_invalid", "format 只能是 csv、xlsx 或 geojson", "format must be csv, xlsx or geojson")

    # --- survey intake: templates, submissions, their rows, review, ODK (citygrid/survey/) ----------------------
    survey_header = _e("survey_header", "找不到表头：文件前 {scan} 行中没有模板的列名（应有 {columns_zh} 等列），请使用下载的模板",
                       "no header found in the first {scan} rows: expected the template's columns ({columns_en}); use "
                       "the downloaded template")
    survey_no_rows = _e("survey_no_rows", "文件中没有数据行（表头下面是空的）", "the file has a header but no data rows")
    survey_file_bad = _e("survey_file_bad", "文件无法读取{detail_zh}：请上传模板格式的 xlsx 或 CSV 文件",
                         "the file cannot be read{detail_en}: upload the template as xlsx or CSV")
    cell_number = _e("cell_number", "“{label_zh}”的值“{value}”不是数字，请填写数字{unit_zh}",
                     "{label_en}: '{value}' is not a number; enter a number{unit_en}")
    cell_integer = _e("cell_integer", "“{label_zh}”的值“{value}”不是整数，请填写整数{unit_zh}",
                      "{label_en}: '{value}' is not a whole number; enter one{unit_en}")
    cell_boolean = _e("cell_boolean", "“{label_zh}”的值“{value}”不是“是/否”，请填写 是 或 否",
                      "{label_en}: '{value}' is not yes/no; enter 是 or 否")
    cell_date = _e("cell_date", "“{label_zh}”的值“{value}”不是日期，请按 2024-03-05 的格式填写",
                   "{label_en}: '{value}' is not a date; write it as 2024-03-05")
    cell_enum = _e("cell_enum", "“{label_zh}”的值“{value}”不在允许值中（{choices_zh}）{hint_zh}",
                   "{label_en}: '{value}' is not an allowed value ({choices_en}){hint_en}")
    location_missing = _e("location_missing", "缺少位置：请填写经度和纬度，或填写标准地址",
                          "no location: enter longitude and latitude, or a standard address")
    location_number = _e("location_number", "“{label_zh}”的值“{value}”不是坐标数字（例如 114.98 或 30.10）",
                         "{label_en}: '{value}' is not a coordinate (e.g. 114.98 or 30.10)")
    location_swapped = _e("location_swapped", "经度和纬度似乎填反了（经度 {lon}，纬度 {lat}）：请交换两列的值",
                          "longitude and latitude look swapped (lon {lon}, lat {lat}): exchange the two columns")
    location_outside_china = _e("location_outside_china", "坐标（{lon}, {lat}）不在中国范围内（经度 73–136，纬度 3–54），请检查",
                                "the point ({lon}, {lat}) is outside China (lon 73-136, lat 3-54): check it")
    location_outside_village = _e("location_outside_village",
                                  "位置不在本村 {village_zh}（{village}）范围内，相距约 {distance} 米{hint_zh}",
                                  "the location is outside the village {village}, about {distance} m away{hint_en}")
    location_crs = _e("location_crs", "坐标系“{value}”无法识别，请填写 CGCS2000、WGS84 或 GCJ-02（手机地图坐标）",
                      "unknown coordinate system '{value}': use CGCS2000, WGS84 or GCJ-02 (phone map apps)")
    location_geometry = _e("location_geometry", "几何“{value}”无法识别{detail_zh}：请填写 WKT（如 LINESTRING(114.9 30.1, 114.91 30.1)）或 GeoJSON",
                           "geometry '{value}' cannot be read{detail_en}: enter WKT or GeoJSON")
    address_unresolved = _e("address_unresolved", "标准地址“{value}”未能匹配到门牌或楼栋{hint_zh}",
                            "the address '{value}' matches no door plate or building{hint_en}")
    row_duplicate = _e("row_duplicate", "与第 {other} 行重复（名称、位置和属性都相同），请删除其中一行",
                       "duplicates row {other} (same name, location and attributes): delete one of them")
    submission_not_found = _e("submission_not_found", "提交 {submission} 不存在", "submission {submission} not found",
                              "not_found")
    submission_row_not_found = _e("submission_row_not_found", "提交中没有第 {n} 行", "the submission has no row {n}",
                                  "not_found")
    review_not_valid = _e("review_not_valid", "第 {n} 行{state_zh}，不能通过审核", "row {n} is {state_en} and cannot be approved",
                          "conflict")
    review_reason = _e("review_reason", "退回第 {n} 行需要说明原因", "rejecting row {n} needs a reason")
    review_decision = _e("review_decision", "审核结论只能是 approve（通过）或 reject（退回），第 {n} 行为“{value}”",
                         "the decision for row {n} must be approve or reject, got '{value}'")
    village_ambiguous = _e("village_ambiguous", "您负责多个村/社区，请指定 village（{villages}）",
                           "you hold several villages: name one with village ({villages})")
    odk_instance_invalid = _e("odk_instance_invalid", "表单数据（XML）无法解析{detail_zh}",
                              "the form instance (XML) cannot be parsed{detail_en}")
    odk_form_unknown = _e("odk_form_unknown", "表单 {form} 不存在", "form {form} does not exist", "not_found")
    location_gk = _e("location_gk", "X/Y 坐标（{x}, {y}）不是可识别的高斯-克吕格坐标：X 为北向（7 位，如 3332123.45），Y 为东向"
                     "（带带号 8 位如 38512345.67，或 6 位并在“坐标系”列写明带号或 EPSG 代码，如 38带、EPSG:4547）",
                     "X/Y ({x}, {y}) are no Gauss-Krüger coordinates: X is the northing (7 digits, e.g. 3332123.45), "
                     "Y the easting (8 digits with the zone, e.g. 38512345.67, or 6 digits with the zone or EPSG code "
                     "in the coordinate system column, e.g. 38带, EPSG:4547)")
    location_gcj02 = _e("location_gcj02", "坐标按 {declared} 填写，但看起来是 GCJ-02（高德、腾讯等手机地图的坐标）：离最近的已登记对象或门牌 "
                        "{near} 米，按 GCJ-02 换算后只有 {near_fixed} 米（{lon}, {lat}）；请在“坐标系”列填写 GCJ-02，"
                        "或重新上传时声明坐标系为 GCJ-02",
                        "the point is declared {declared} but looks like GCJ-02 (a phone map app's coordinates): {near} m "
                        "from the nearest registered object or door plate, {near_fixed} m once read as GCJ-02 ({lon}, "
                        "{lat}); write GCJ-02 in the coordinate system column or upload again declaring GCJ-02")
    survey_gcj02 = _e("survey_gcj02", "本文件 {total} 个点中有 {n} 个整体偏移约 {shift} 米：离已登记对象和门牌的距离中位数为 "
                      "{median} 米，按 GCJ-02（手机地图坐标）换算后为 {median_fixed} 米。坐标很可能取自手机地图，"
                      "请把坐标系声明为 GCJ-02 后重新上传",
                      "{n} of the file's {total} points are shifted by about {shift} m: median distance to registered "
                      "objects and door plates {median} m, {median_fixed} m once read as GCJ-02 (a phone map app's "
                      "coordinates); upload again declaring GCJ-02")
    submission_state = _e("submission_state", "提交 {submission} 现在是“{state_zh}”（{state}），不能{action_zh}{hint_zh}",
                          "submission {submission} is {state} and cannot be {action_en}{hint_en}", "conflict")
    resubmit_closed = _e("resubmit_closed", "提交 {submission} 的每一行都已通过审核并赋码，没有可以更正的行；请新建一次提交",
                         "every row of submission {submission} has been approved and coded: nothing is left to "
                         "correct; make a new submission", "conflict")

    # --- security: who is calling and what they may do (citygrid/security/) ------------------------------------
    unauthenticated = _e("unauthenticated", "需要登录：{action_zh}需要身份凭证（Bearer 令牌或 API 密钥）",
                         "authentication required: {action_en} needs credentials (a bearer token or an API key)",
                         "unauthenticated")
    forbidden = _e("forbidden", "无权操作：{why_zh}", "forbidden: {why_en}", "forbidden")
    login_failed = _e("login_failed", "用户名或密码错误", "wrong username or password", "unauthenticated")
    account_locked = _e("account_locked", "登录失败次数过多，账户已锁定，请 {minutes} 分钟后再试",
                        "too many failed logins: the account is locked, try again in {minutes} min", "too_many")
    token_invalid = _e("token_invalid", "身份凭证无效（令牌或 API 密钥错误、已吊销或已停用）",
                       "invalid credentials (token or API key wrong, revoked or disabled)", "unauthenticated")
    token_expired = _e("token_expired", "令牌已过期，请重新登录", "the token has expired: log in again",
                       "unauthenticated")
    password_weak = _e("password_weak", "密码至少 {n} 个字符", "the password needs at least {n} characters")
    grant_invalid = _e("grant_invalid", "角色写法不正确：{spec}（如 admin、department:natural_resources@420281、"
                       "cadre@420281001001）", "malformed role {spec} (e.g. admin, department:natural_resources@420281, "
                       "cadre@420281001001)")
    principal_exists = _e("principal_exists", "用户 {username} 已存在", "principal {username} already exists", "conflict")
    principal_not_found = _e("principal_not_found", "用户 {username} 不存在", "principal {username} not found",
                             "not_found")
    block_too_large = _e("block_too_large", "一次最多预留 {limit} 个代码，请求了 {n} 个",
                         "at most {limit} codes may be reserved in one call, {n} were asked for")
    quota_exceeded = _e("quota_exceeded", "24 小时内最多预留 {limit} 个代码（已预留 {used} 个），请约 {minutes} 分钟后再试",
                        "at most {limit} codes may be reserved in 24 hours ({used} reserved): try again in about "
                        "{minutes} min", "too_many")
    attr_withheld = _e("attr_withheld", "属性 {attr} 是 {level} 级数据，超出您的密级，不能用于筛选或统计",
                       "{attr} is {level} data, above your clearance: it cannot be filtered or aggregated",
                       "forbidden")
    api_key_not_found = _e("api_key_not_found", "API 密钥 {key} 不存在或已吊销", "API key {key} not found or revoked",
                           "not_found")

    # --- sharing: links by code and the change feed (citygrid/sharing/) ------------------------------------------
    link_not_found = _e("link_not_found", "关联 {link} 不存在", "link {link} not found", "not_found")
    link_conflict = _e("link_conflict", "系统 {system} 的记录 {record} 已关联到对象 {code}，请先解除关联",
                       "record {record} of system {system} is already linked to object {code}: unlink it first",
                       "conflict")
    link_payload_too_large = _e("link_payload_too_large", "关联的附加数据为 {n} 字节，超过上限 {limit} 字节",
                                "the link's payload is {n} bytes, over the limit of {limit}", "unprocessable")
    link_valid_range = _e("link_valid_range", "有效期结束时间必须晚于开始时间",
                          "valid_to must be later than valid_from", "unprocessable")
    link_object_retired = _e("link_object_retired", "对象 {code} 已注销，不能新增关联（请关联到其后继对象）",
                             "object {code} is retired: link its successors instead", "conflict")
    webhook_not_found = _e("webhook_not_found", "回调 {id} 不存在", "webhook {id} not found", "not_found")
    cursor_invalid = _e("cursor_invalid", "游标 {cursor} 无效（应为上一次返回的 cursor）",
                        "cursor {cursor} is not valid (pass the cursor the previous answer gave)")
    expand_unknown = _e("expand_unknown", "expand 不认识 {name}，可用：{known}", "unknown expand {name}; known: {known}")
    change_kind_unknown = _e("change_kind_unknown", "未知的变更类型 {kind}，可用：{known}",
                             "unknown change kind {kind}; known: {known}")
    webhook_url_forbidden = _e("webhook_url_forbidden", "回调地址 {url} 指向内部网络地址 {address}，不允许（见 CITYGRID_WEBHOOK_ALLOW）",
                               "webhook URL {url} resolves to the internal address {address}, which is not allowed "
                               "(see CITYGRID_WEBHOOK_ALLOW)", note="loopback, private, link-local, metadata and other "
                               "non-global addresses, unless allowed by the setting")
    webhook_url_invalid = _e("webhook_url_invalid", "回调地址 {url} 无效：{detail_zh}", "invalid webhook URL {url}: {detail_en}")

    # --- personal data encryption (citygrid/security/crypto.py) and the keys it uses ---------------------------
    pii_key_missing = _e("pii_key_missing", "个人信息密文使用的密钥 {kid} 不在密钥环中，无法解密",
                         "personal data is encrypted under key {kid}, which is not in the keyring", "internal",
                         "a key was removed while rows still used it: restore it from the keyring backup")
    pii_corrupt = _e("pii_corrupt", "个人信息密文无法解密（已损坏或被篡改）",
                     "personal data failed to decrypt (the ciphertext is damaged or was tampered with)", "internal")
    key_unknown = _e("key_unknown", "密钥 {kid} 不在密钥环中", "key {kid} is not in the keyring", "not_found")
    key_active = _e("key_active", "密钥 {kid} 是当前密钥，不能停用（先轮换）",
                    "key {kid} is the active key and cannot be retired (rotate first)", "conflict")
    key_in_use = _e("key_in_use", "密钥 {kid} 仍在使用：{uses_zh}", "key {kid} is still in use: {uses_en}", "conflict")

    # --- demo data: the generated demonstration county ---------------------------------------------------------
    demo_no_outline = _e("demo_no_outline", "区划 {county} 没有边界，请先加载区划数据",
                         "division {county} has no outline: load the divisions first")
    demo_no_townships = _e("demo_no_townships", "区划 {county} 没有乡级区划，请先加载区划数据",
                           "division {county} has no townships: load the divisions first")


def catalogue() -> dict[str, ErrorEntry]:
    """Every entry by code."""
    return {v.code: v for v in vars(E).values() if isinstance(v, ErrorEntry)}
