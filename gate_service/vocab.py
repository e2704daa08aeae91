"""Fixed vocabularies of the public contract (API.md), with the Chinese labels users read."""

from __future__ import annotations

ZONES: dict[str, str] = {
    "linfen-edz": "临汾经济开发区",
    "hongtong": "洪洞经济技术开发区",
    "xiangfen": "襄汾经济技术开发区",
    "quwo": "曲沃经济技术开发区",
    "houma": "侯马经济技术开发区",
    "huozhou": "霍州经济技术开发区",
    "yaodu-hitech": "尧都高新技术产业开发区",
    "city": "市区规划区",
    "other": "其他区域",
}

INDUSTRIES: dict[str, str] = {
    "steel": "钢铁",
    "foundry_iron": "铸造用生铁",
    "cement": "水泥",
    "coking": "焦化",
    "coal": "煤炭",
    "non_ferrous": "有色",
    "carbon": "炭素",
    "power": "火电",
    "chemical": "化工",
    "glass": "玻璃",
    "ceramics": "陶瓷",
    "logistics": "物流",
    "building_materials": "建材",
    "other": "其他",
}

GRADES: dict[str, str] = {
    "A": "A级",
    "B": "B级",
    "B-": "B-级",
    "C": "C级",
    "D": "D级",
    "leading": "引领性",
}

FUEL_TYPES: dict[str, str] = {
    "diesel": "柴油",
    "petrol": "汽油",
    "gas": "燃气(CNG/LNG)",
    "methanol": "甲醇",
    "hybrid": "油电混合",
    "phev": "插电式混合动力",
    "electric": "纯电动",
    "hydrogen": "氢燃料电池",
}

VEHICLE_CLASSES: dict[str, str] = {
    "heavy_truck": "重型货车",
    "medium_truck": "中型货车",
    "light_truck": "轻型货车",
    "concrete_mixer": "混凝土搅拌车",
    "muck_truck": "渣土车",
    "logistics": "物流车",
    "bus": "客车",
    "car": "小型汽车",
    "nonroad": "非道路移动机械",
    "other": "其他",
}

PLATE_COLORS: dict[str, str] = {
    "blue": "蓝牌",
    "yellow": "黄牌",
    "green": "绿牌",
    "yellow-green": "黄绿牌",
    "white": "白牌",
    "black": "黑牌",
    "unknown": "未知",
}

ROLES: dict[str, str] = {
    "admin": "管理员",
    "kiosk": "门岗终端",
    "police": "交警",
    "ecology": "生态环境局",
    "enterprise": "企业",
}

ALERT_LEVELS: dict[str, str] = {"yellow": "黄色预警", "orange": "橙色预警", "red": "红色预警"}

DIRECTIONS: dict[str, str] = {"in": "进厂", "out": "出厂"}
