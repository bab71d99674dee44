"""Address normalizer: one test per rule, plus the index map and input limits."""

from __future__ import annotations

import pytest

from citygrid.address.normalize import MAX_LENGTH, AddressInputError, check_input, normalize, normalize_with_map
from citygrid.errors import CitygridError


def test_traditional_to_simplified() -> None:
    assert normalize("湖北省黃石市大冶市東岳路街道新冶大道88號") == "湖北省黄石市大冶市东岳路街道新冶大道88号"
    assert normalize("臺灣省臺北市中正區") == "台湾省台北市中正区"


def test_traditional_conversion_keeps_official_division_characters() -> None:
    # OpenCC t2s would write 干县 and 于潜镇; the civil-affairs names keep 乾 and 於.
    assert normalize("陕西省咸阳市乾县") == "陕西省咸阳市乾县"
    assert normalize("杭州市临安区於潜镇") == "杭州市临安区於潜镇"


def test_full_width_to_half_width() -> None:
    assert normalize("金湖小区Ａ座１２０１室") == "金湖小区A栋1201室"
    assert normalize("新冶大道８８号") == "新冶大道88号"


def test_numerals_before_units_become_digits() -> None:
    assert normalize("三号楼") == "3栋"
    assert normalize("十二单元") == "12单元"
    assert normalize("一〇二室") == "102室"
    assert normalize("二十三号") == "23号"
    assert normalize("五楼") == "5楼"
    assert normalize("十五层") == "15层"


def test_numerals_in_names_are_kept() -> None:
    assert normalize("北京市朝阳区三里屯") == "北京市朝阳区三里屯"
    assert normalize("五一路") == "五一路"
    assert normalize("九堡镇三村村") == "九堡镇三村村"
    assert normalize("十里铺") == "十里铺"
    assert normalize("五一路二号") == "五一路2号"


def test_village_groups() -> None:
    assert normalize("大箕铺镇柯大兴村一组") == "大箕铺镇柯大兴村1组"
    assert normalize("三组") == "3组"
    assert normalize("十三组") == "13组"


def test_lanes_convert_only_after_a_road() -> None:
    assert normalize("解放路三巷") == "解放路3巷"
    assert normalize("三巷村") == "三巷村"


def test_building_words_unified_to_dong() -> None:
    assert normalize("3号楼") == "3栋"
    assert normalize("5幢") == "5栋"
    assert normalize("A座") == "A栋"
    assert normalize("7栋2单元") == "7栋2单元"
    assert normalize("星座花园") == "星座花园"  # 座 not after a number is a name


def test_hu_becomes_shi() -> None:
    assert normalize("502户") == "502室"
    assert normalize("2单元502室") == "2单元502室"
    assert normalize("住户中心") == "住户中心"


def test_separators_stripped_but_number_dashes_kept() -> None:
    assert normalize("湖北省 大冶市，东岳路街道、新冶大道 - 88号") == "湖北省大冶市东岳路街道新冶大道88号"
    assert normalize("新冶大道88-1号") == "新冶大道88-1号"
    assert normalize("缤纷北苑47-6-746") == "缤纷北苑47-6-746"
    assert normalize("金湖小区-3#楼") == "金湖小区3栋"


def test_duplicated_prefixes_collapsed() -> None:
    assert normalize("浙江省杭州市浙江省杭州市西湖区") == "浙江省杭州市西湖区"
    assert normalize("湖北省湖北省大冶市") == "湖北省大冶市"
    assert normalize("浙江省杭州市余杭区杭州市余杭区闲林街道") == "浙江省杭州市余杭区闲林街道"


def test_control_characters_dropped() -> None:
    assert normalize("湖北省大冶市\u200b金湖小区\x073栋\ufeff") == "湖北省大冶市金湖小区3栋"


def test_index_map_points_into_the_input() -> None:
    raw = "湖北省 大冶市三号楼"
    text, idx = normalize_with_map(raw)
    assert text == "湖北省大冶市3栋"
    assert len(idx) == len(text)
    assert idx == sorted(idx)
    assert [raw[i] for i in idx[:6]] == list("湖北省大冶市")
    assert raw[idx[6]] == "三" and raw[idx[7]] == "号"
    unused = sorted(set(range(len(raw))) - set(idx))
    assert [raw[i] for i in unused] == [" ", "楼"]


def test_deterministic_and_idempotent() -> None:
    raw = "浙江省杭州市浙江省杭州市西湖区文三路三号楼 二单元 一〇二户"
    once = normalize(raw)
    assert once == "浙江省杭州市西湖区文三路3栋2单元102室"
    assert normalize(once) == once
    assert normalize(raw) == once


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "address_empty"),
        ("  \t ", "address_empty"),
        ("，、 ", "address_empty"),
        ("大" * (MAX_LENGTH + 1), "address_too_long"),
        (b"\x89PNG\r\n", "address_not_text"),
        ("\x00\x01abc", "address_binary"),
        ("\x01\x02\x03\x04湖北", "address_binary"),
        (None, "address_not_text"),
    ],
)
def test_bad_input_raises(value: object, code: str) -> None:
    with pytest.raises(AddressInputError) as e:
        normalize(value)  # type: ignore[arg-type]
    err = e.value
    assert err.error_code == code
    assert err.message_zh and err.message_en
    assert isinstance(err, ValueError) and isinstance(err, CitygridError)
    assert err.to_dict()["error_code"] == code


@pytest.mark.parametrize("value", ["—", "～～", "＃", "｜-", "\u200d–", "－ ＃ ～"])
def test_check_input_refuses_what_normalize_refuses(value: str) -> None:
    # The tagger reads the caller's text through check_input: full-width and typographic dashes, ＃ and ｜ are
    # separators to normalize, so input made only of them is empty for both (it used to reach the tagger).
    with pytest.raises(AddressInputError) as e:
        normalize(value)
    assert e.value.error_code == "address_empty"
    with pytest.raises(AddressInputError) as e:
        check_input(value)
    assert e.value.error_code == "address_empty"
    assert check_input("—3号") == "—3号" and normalize("—3号")


def test_length_cap_is_inclusive() -> None:
    assert len(normalize("大" * MAX_LENGTH)) == MAX_LENGTH
