"""java.util.logging's level names as the JDK prints them, in each language it translates.

SimpleFormatter's default format (``%1$tb %1$td, %1$tY %1$tl:%1$tM:%1$tS %1$Tp %2$s%n%4$s:
%5$s%6$s%n``) prints the level's localized name (``Level.getLocalizedName``), from the
JDK's ``sun.util.logging.resources.logging_<locale>`` bundles: de, es, fr, it, ja, ko,
pt_BR, sv, zh_CN, zh_TW (zh_HK prints zh_TW's names). Every other locale prints the
English names. The names below are what JDK 17 and JDK 25 print (both the same), in the
order of :data:`LEVELS`. Pure data, imported by the collector's level detection and the
shipper's multiline rule ``java``.
"""

from __future__ import annotations

# JUL's levels, most severe first.
LEVELS = ("SEVERE", "WARNING", "INFO", "CONFIG", "FINE", "FINER", "FINEST")

NAMES: dict[str, tuple[str, ...]] = {
    "en": ("SEVERE", "WARNING", "INFO", "CONFIG", "FINE", "FINER", "FINEST"),
    "de": (
        "SCHWERWIEGEND",
        "WARNUNG",
        "INFORMATION",
        "KONFIGURATION",
        "FEIN",
        "FEINER",
        "AM FEINSTEN",
    ),
    "es": (
        "GRAVE",
        "ADVERTENCIA",
        "INFORMACIÓN",
        "CONFIGURAR",
        "DETALLADO",
        "MUY DETALLADO",
        "MÁS DETALLADO",
    ),
    "fr": ("GRAVE", "AVERTISSEMENT", "INFOS", "CONFIG", "PRÉCIS", "PLUS PRÉCIS", "LE PLUS PRÉCIS"),
    "it": (
        "GRAVE",
        "AVVERTENZA",
        "INFORMAZIONI",
        "CONFIGURAZIONE",
        "BUONO",
        "MIGLIORE",
        "OTTIMALE",
    ),
    "ja": ("重大", "警告", "情報", "構成", "普通", "詳細", "最も詳細"),
    "ko": ("심각", "경고", "정보", "구성", "미세", "보다 미세", "가장 미세"),
    "pt_BR": (
        "GRAVE",
        "ADVERTÊNCIA",
        "INFORMAÇÕES",
        "CONFIGURAÇÃO",
        "DETALHADO",
        "MAIS DETALHADO",
        "O MAIS DETALHADO",
    ),
    "sv": ("ALLVARLIG", "VARNING", "INFO", "KONFIG", "FIN", "FINARE", "FINASTE"),
    "zh_CN": ("严重", "警告", "信息", "配置", "详细", "较详细", "非常详细"),
    "zh_TW": ("嚴重", "警告", "資訊", "組態", "詳細", "較詳細", "最詳細"),
}


def names_of(level: str) -> list[str]:
    """Every name `level` (one of LEVELS) is printed with, English first, no repeats."""
    at = LEVELS.index(level)
    return list(dict.fromkeys(names[at] for names in NAMES.values()))


def all_names() -> list[str]:
    """Every name of every level, no repeats (each is upper-case letters and spaces, or
    CJK, so it needs no escaping in a regex)."""
    return list(dict.fromkeys(name for names in NAMES.values() for name in names))
