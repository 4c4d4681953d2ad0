"""Real county-level administrative divisions used by the demo registry, with address fragments.

Codes and names follow GB/T 2260 (县级行政区划代码) as published by the Ministry of Civil Affairs; a resident ID
number starts with the code of the holder's household registration (户籍), so the demo's IDs carry real codes.
The selection covers the three large destinations of internal migration (Beijing, Shanghai, Guangdong) and three
large origins (Henan, Anhui, Sichuan), with both provincial capitals and rural counties in the origins.

Weights are demo assumptions, not statistics: ``resident_weight`` is the relative share of kindergartens placed in
a region (children live where their kindergarten is), ``origin_weight`` the relative share of migrant children
whose household registration is there.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMMUNITIES",
    "KINDERGARTEN_BRANDS",
    "PROVINCE_NAMES",
    "REGIONS",
    "REGIONS_BY_CODE",
    "ROADS",
    "VILLAGES",
    "Region",
]


@dataclass(frozen=True, slots=True)
class Region:
    """One county-level division (区, 县, 县级市, or a prefecture city without counties such as 东莞市)."""

    code: str
    name: str
    city: str
    province: str
    towns: tuple[str, ...]
    """Real subdistricts (街道) and towns (镇) inside the division, used as the first part of an address."""
    resident_weight: float
    origin_weight: float
    rural: bool = False
    """True for counties where many addresses are villages (…村…组…号) rather than compounds."""

    @property
    def province_code(self) -> str:
        return self.code[:2]

    @property
    def full_name(self) -> str:
        """The name as it opens an address: 北京市朝阳区, 河南省周口市郸城县, 广东省东莞市."""
        parts = [] if self.province == self.city else [self.province]
        parts.append(self.city)
        if self.name != self.city:
            parts.append(self.name)
        return "".join(parts)


PROVINCE_NAMES: dict[str, str] = {
    "11": "北京市",
    "31": "上海市",
    "34": "安徽省",
    "41": "河南省",
    "44": "广东省",
    "51": "四川省",
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _r(
    code: str,
    name: str,
    city: str,
    towns: str,
    resident: float,
    origin: float,
    *,
    rural: bool = False,
) -> Region:
    return Region(code, name, city, PROVINCE_NAMES[code[:2]], _words(towns), resident, origin, rural)


REGIONS: tuple[Region, ...] = (
    # 北京市
    _r("110101", "东城区", "北京市", "东华门街道 景山街道 和平里街道 建国门街道", 2.0, 0.3),
    _r("110102", "西城区", "北京市", "西长安街街道 金融街街道 德胜街道 月坛街道", 2.5, 0.3),
    _r("110105", "朝阳区", "北京市", "建外街道 三里屯街道 望京街道 酒仙桥街道 呼家楼街道", 6.0, 0.6),
    _r("110106", "丰台区", "北京市", "丰台街道 卢沟桥街道 右安门街道", 3.5, 0.3),
    _r("110107", "石景山区", "北京市", "八宝山街道 古城街道 苹果园街道", 1.2, 0.1),
    _r("110108", "海淀区", "北京市", "中关村街道 学院路街道 万寿路街道 清河街道", 5.5, 0.5),
    _r("110112", "通州区", "北京市", "新华街道 中仓街道 永顺镇 宋庄镇", 3.0, 0.2),
    _r("110113", "顺义区", "北京市", "胜利街道 光明街道 石园街道", 2.0, 0.1),
    _r("110114", "昌平区", "北京市", "城北街道 城南街道 回龙观街道 天通苑北街道", 3.5, 0.2),
    _r("110115", "大兴区", "北京市", "兴丰街道 林校路街道 清源街道", 3.0, 0.2),
    # 上海市
    _r("310101", "黄浦区", "上海市", "南京东路街道 外滩街道 打浦桥街道 老西门街道", 1.2, 0.2),
    _r("310104", "徐汇区", "上海市", "徐家汇街道 天平路街道 漕河泾街道 田林街道", 2.0, 0.2),
    _r("310106", "静安区", "上海市", "静安寺街道 南京西路街道 彭浦新村街道 大宁路街道", 1.8, 0.2),
    _r("310107", "普陀区", "上海市", "长寿路街道 曹杨新村街道 真如镇街道", 1.8, 0.1),
    _r("310110", "杨浦区", "上海市", "五角场街道 控江路街道 殷行街道", 2.0, 0.2),
    _r("310112", "闵行区", "上海市", "江川路街道 古美路街道 莘庄镇 七宝镇", 3.0, 0.2),
    _r("310113", "宝山区", "上海市", "友谊路街道 吴淞街道 大场镇 顾村镇", 2.5, 0.1),
    _r("310115", "浦东新区", "上海市", "陆家嘴街道 花木街道 张江镇 川沙新镇 金桥镇", 5.5, 0.4),
    _r("310117", "松江区", "上海市", "岳阳街道 方松街道 九亭镇 泗泾镇", 2.2, 0.1),
    # 广东省
    _r("440104", "越秀区", "广州市", "北京街道 东山街道 农林街道", 1.5, 0.2),
    _r("440106", "天河区", "广州市", "天河南街道 石牌街道 五山街道 林和街道", 2.5, 0.3),
    _r("440111", "白云区", "广州市", "京溪街道 同和街道 三元里街道", 3.0, 0.2),
    _r("440113", "番禺区", "广州市", "市桥街道 大石街道 洛浦街道", 2.5, 0.2),
    _r("440304", "福田区", "深圳市", "园岭街道 沙头街道 梅林街道 华富街道", 2.0, 0.2),
    _r("440305", "南山区", "深圳市", "南头街道 粤海街道 蛇口街道 西丽街道", 2.0, 0.2),
    _r("440306", "宝安区", "深圳市", "新安街道 西乡街道 福永街道 沙井街道", 3.5, 0.1),
    _r("440307", "龙岗区", "深圳市", "龙城街道 布吉街道 横岗街道 坂田街道", 3.5, 0.1),
    _r("441900", "东莞市", "东莞市", "南城街道 东城街道 长安镇 虎门镇 塘厦镇", 3.5, 0.2),
    # 四川省
    _r("510104", "锦江区", "成都市", "春熙路街道 书院街街道 牛市口街道", 1.2, 0.4),
    _r("510107", "武侯区", "成都市", "浆洗街街道 望江路街道 玉林街道 红牌楼街道", 1.5, 0.5),
    _r("511302", "顺庆区", "南充市", "中城街道 北城街道 舞凤街道", 0.8, 1.5),
    _r("511321", "南部县", "南充市", "南隆镇 升钟镇 建兴镇", 0.7, 3.0, rural=True),
    _r("511324", "仪陇县", "南充市", "新政镇 金城镇 马鞍镇", 0.6, 2.5, rural=True),
    _r("511602", "广安区", "广安市", "广福街道 北辰街道 浓洄街道", 0.6, 1.5),
    _r("511621", "岳池县", "广安市", "九龙镇 顾县镇 罗渡镇", 0.6, 2.5, rural=True),
    # 河南省
    _r("410102", "中原区", "郑州市", "林山寨街道 建设路街道 桐柏路街道", 1.2, 0.6),
    _r("410105", "金水区", "郑州市", "经八路街道 花园路街道 文化路街道 丰产路街道", 1.6, 0.6),
    _r("411302", "宛城区", "南阳市", "东关街道 新华街道 汉冶街道", 0.8, 1.5),
    _r("411381", "邓州市", "南阳市", "古城街道 花洲街道 湍河街道 穰东镇", 0.8, 3.0, rural=True),
    _r("411525", "固始县", "信阳市", "番城街道 蓼城街道 陈淋子镇", 0.8, 3.5, rural=True),
    _r("411623", "商水县", "周口市", "城关镇 固墙镇 黄寨镇", 0.6, 3.0, rural=True),
    _r("411625", "郸城县", "周口市", "城关镇 宁平镇 吴台镇", 0.6, 3.0, rural=True),
    _r("411627", "太康县", "周口市", "城关镇 常营镇 逊母口镇", 0.6, 3.0, rural=True),
    _r("411722", "上蔡县", "驻马店市", "蔡都街道 重阳街道 杨屯乡", 0.6, 2.5, rural=True),
    # 安徽省
    _r("340102", "瑶海区", "合肥市", "明光路街道 胜利路街道 三里街街道", 1.0, 0.5),
    _r("340104", "蜀山区", "合肥市", "三里庵街道 稻香村街道 琥珀街道", 1.4, 0.5),
    _r("341202", "颍州区", "阜阳市", "鼓楼街道 文峰街道 清河街道", 0.8, 1.5),
    _r("341221", "临泉县", "阜阳市", "城关镇 杨桥镇 鲖城镇", 0.8, 3.5, rural=True),
    _r("341222", "太和县", "阜阳市", "城关镇 旧县镇 宫集镇", 0.7, 3.0, rural=True),
    _r("341226", "颍上县", "阜阳市", "慎城镇 谢桥镇 江口镇", 0.6, 2.5, rural=True),
    _r("341522", "霍邱县", "六安市", "城关镇 孟集镇 叶集镇", 0.6, 2.5, rural=True),
    _r("341621", "涡阳县", "亳州市", "城关镇 星园街道 高炉镇", 0.6, 2.5, rural=True),
    _r("341622", "蒙城县", "亳州市", "城关镇 庄周街道 双涧镇", 0.6, 2.5, rural=True),
)

REGIONS_BY_CODE: dict[str, Region] = {region.code: region for region in REGIONS}


ROADS: tuple[str, ...] = _words(
    "建设路 人民路 解放路 中山路 和平路 文化路 胜利路 新华路 光明路 幸福路 团结路 育才路 花园路 滨河路 长江路 黄河路 东风路 振兴路 迎宾大道 学府路 工农路 "
    "友谊路 健康路 园林路"
)
"""Road names that exist in most Chinese cities, for compound addresses (…路12号…小区3号楼2单元501)."""

COMMUNITIES: tuple[str, ...] = _words(
    "阳光花园 幸福家园 锦绣花园 金色家园 翠苑小区 和谐家园 康乐小区 书香苑 滨江花园 紫荆花园 世纪城 怡景苑 绿洲小区 丽都花园 华府小区 嘉园 新村 东苑小区 "
    "西苑小区 南湖小区 北辰小区 富力城 金地花园 温馨家园 雅居乐花园 龙湖小区 春晖苑 梧桐苑"
)
"""Residential compound names (小区) for urban addresses."""

VILLAGES: tuple[str, ...] = _words(
    "王庄 李庄 张湾 刘集 陈营 赵楼 孙店 杨桥 周寨 新庄 黄岗 马庄 吴庄 郭楼 何湾 高庄 罗店 胡集 前营 后营 东湖 西湾 小李庄 大刘庄 柳树 枣林 双桥 三里"
)
"""Village name stems; an address appends 村, a group number (组) and a house number."""

KINDERGARTEN_BRANDS: tuple[str, ...] = _words(
    "阳光 小天使 蓝天 金太阳 童心 启明星 育英 贝贝 七彩虹 春苗 新蕾 星星 小太阳 快乐宝贝 爱心 彩虹 明珠 希望 小精灵 乐乐 博雅 晨曦 花蕾 苗苗"
)
"""Name stems of private kindergartens (…阳光幼儿园); public ones are numbered (…第三幼儿园)."""
