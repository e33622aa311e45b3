"""The dates an article's own text names, in every language the storylines are read in.

Month names (with their inflected and genitive forms), native date formats ("18 березня 2025",
"18. März", "3月18日", "2025년 3월 18일", "18 Μαρτίου", "18.03.2025"), retrospective phrases ("a year
ago", "минулого року"), a truce's length of a week ("week-long", "на тиждень"), frost and winter are
tabled here, in one place, for: ar, az, be, bg, bn, bs/hr/sr (Latin and
Cyrillic), cs, da, de, el, en, es, et, fa (Gregorian and Solar Hijri months), fi, fr, he, hi, hu, hy, id,
it, ja, ka, kk, ko, lt, lv, ms, nb, nl, pl, pt, ro, ru, sk, sl, sq, sv, th, tr, uk, ur, vi and zh.

Terms use the storyline term syntax (ingest/storyline_rules.py): ``stem*`` for inflected languages,
Chinese, Japanese, Korean and Thai terms match anywhere. A form written ``?form`` is also a common word
("may", "mai", "aralık", "մարտ" = battle) and counts as a month only with a day or a year next to it.

The storyline tagger reads these only for articles with no publication date (ingest/storyline.py).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from calendar import monthrange
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import compress

from ingest.storyline_rules import Matcher, Prepared, Span, fold, prepare

__all__ = ["FROST", "MONTHS", "RETROSPECTIVE", "SOLAR_MONTHS", "WEEK", "WINTER", "Mention", "TimeReader", "reader"]

# Twelve entries per language, January first; forms separated by "|".
MONTHS: dict[str, tuple[str, ...]] = {
    "en": (
        "january|?jan",
        "february|?feb",
        "march",
        "april|?apr",
        "?may",
        "june|?jun",
        "july|?jul",
        "august|?aug",
        "september|?sep|?sept",
        "october|?oct",
        "november|?nov",
        "december|?dec",
    ),
    "de": (
        "januar|jänner",
        "februar|feber",
        "märz",
        "april",
        "?mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "dezember",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "?mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre|setiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "pt": (
        "janeiro",
        "fevereiro",
        "?março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
    "ro": (
        "ianuarie",
        "februarie",
        "martie",
        "aprilie",
        "?mai",
        "iunie",
        "iulie",
        "august",
        "septembrie",
        "octombrie",
        "noiembrie",
        "decembrie",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "sv": (
        "januari",
        "februari",
        "mars",
        "april",
        "?maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "da": (
        "januar",
        "februar",
        "marts",
        "april",
        "?maj",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "nb": (
        "januar",
        "februar",
        "mars",
        "april",
        "?mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "desember",
    ),
    "fi": (
        "tammikuu*",
        "helmikuu*",
        "maaliskuu*",
        "huhtikuu*",
        "toukokuu*",
        "kesäkuu*",
        "heinäkuu*",
        "elokuu*",
        "syyskuu*",
        "lokakuu*",
        "marraskuu*",
        "joulukuu*",
    ),
    "et": (
        "jaanuar*",
        "veebruar*",
        "märts*",
        "aprill*",
        "maini|?mais",
        "juuni*",
        "juuli*",
        "augustis|augustil",
        "septemb*",
        "oktoob*",
        "novemb*",
        "detsemb*",
    ),
    "lv": (
        "janvār*",
        "februār*",
        "marts|martā|marta",
        "aprīl*",
        "maijs|maijā|maija",
        "jūnij*",
        "jūlij*",
        "augusts|augustā|augusta",
        "septembr*",
        "oktobr*",
        "novembr*",
        "decembr*",
    ),
    "lt": (
        "sausio|sausis|sausyje",
        "vasario|vasaris|vasaryje",
        "kovo|kovas",
        "balandžio|balandis|balandyje",
        "gegužės|gegužė|gegužę",
        "birželio|birželis|birželyje",
        "liepos",
        "rugpjūčio|rugpjūtis|rugpjūtį",
        "rugsėjo|rugsėjis|rugsėjį",
        "spalio|spalis|spalį",
        "lapkričio|lapkritis|lapkritį",
        "gruodžio|gruodis|gruodį",
    ),
    "pl": (
        "styczeń|stycznia|styczniu",
        "luty|lutego|lutym",
        "marzec|marca|marcu",
        "kwiecień|kwietnia|kwietniu",
        "?maj|?maja|maju",
        "czerwiec|czerwca|czerwcu",
        "lipiec|lipca|lipcu",
        "sierpień|sierpnia|sierpniu",
        "wrzesień|września|wrześniu",
        "październik*",
        "listopad|listopada|listopadzie",
        "grudzień|grudnia|grudniu",
    ),
    "cs": (
        "leden|ledna|lednu",
        "únor|února|únoru",
        "březen|března|březnu",
        "duben|dubna|dubnu",
        "květen|května|květnu",
        "červen|června|červnu",
        "červenec|července|červenci",
        "srpen|srpna|srpnu",
        "?září",
        "říjen|října|říjnu",
        "listopad|listopadu",
        "prosinec|prosince|prosinci",
    ),
    "sk": (
        "január|januára|januári",
        "február|februára|februári",
        "marec|marca|marci",
        "apríl|apríla|apríli",
        "?máj|?mája|máji",
        "?jún|júna|júni",
        "?júl|júla|júli",
        "august|augusta|auguste",
        "september|septembra|septembri",
        "október|októbra|októbri",
        "november|novembra|novembri",
        "december|decembra|decembri",
    ),
    "sl": (
        "januar|januarja|januarju",
        "februar|februarja|februarju",
        "marec|marca|marcu",
        "april|aprila|aprilu",
        "?maj|?maja|maju",
        "junij|junija|juniju",
        "julij|julija|juliju",
        "avgust|avgusta|avgustu",
        "september|septembra|septembru",
        "oktober|oktobra|oktobru",
        "november|novembra|novembru",
        "december|decembra|decembru",
    ),
    "hr": (
        "siječanj|siječnja|siječnju",
        "veljača|veljače|veljači",
        "ožujak|ožujka|ožujku",
        "travanj|travnja|travnju",
        "svibanj|svibnja|svibnju",
        "lipanj|lipnja|lipnju",
        "srpanj|srpnja|srpnju",
        "kolovoz|kolovoza|kolovozu",
        "rujan|rujna|rujnu",
        "listopad|listopada|listopadu",
        "studeni|studenoga|studenog|studenom",
        "prosinac|prosinca|prosincu",
    ),
    # Bosnian and Serbian in Latin script (Croatian above has its own month names).
    "bs": (
        "januar|januara|januaru",
        "februar|februara|februaru",
        "mart|marta|martu",
        "april|aprila|aprilu",
        "?maj|?maja|maju",
        "?jun|juna|junu|juni",
        "?jul|jula|julu|juli",
        "avgust|avgusta|avgustu|augusta",
        "septembar|septembra|septembru",
        "oktobar|oktobra|oktobru",
        "novembar|novembra|novembru",
        "decembar|decembra|decembru",
    ),
    "sr": (
        "јануар|јануара|јануару",
        "фебруар|фебруара|фебруару",
        "март|марта|марту",
        "април|априла|априлу",
        "мај|маја|мају",
        "јун|јуна|јуну",
        "јул|јула|јулу",
        "август|августа|августу",
        "септембар|септембра|септембру",
        "октобар|октобра|октобру",
        "новембар|новембра|новембру",
        "децембар|децембра|децембру",
    ),
    "bg": (
        "януари",
        "февруари",
        "март",
        "април",
        "май",
        "юни",
        "юли",
        "август",
        "септември",
        "октомври",
        "ноември",
        "декември",
    ),
    "ru": (
        "январь|января|январе|январск*",
        "февраль|февраля|феврале|февральск*",
        "март|марта|марте|мартовск*",
        "апрель|апреля|апреле|апрельск*",
        "май|мая|мае|майск*",
        "июнь|июня|июне|июньск*",
        "июль|июля|июле|июльск*",
        "август|августа|августе|августовск*",
        "сентябрь|сентября|сентябре|сентябрьск*",
        "октябрь|октября|октябре|октябрьск*",
        "ноябрь|ноября|ноябре|ноябрьск*",
        "декабрь|декабря|декабре|декабрьск*",
    ),
    "uk": (
        "січень|січня|січні|січнев*",
        "?лютий|лютого|лютому|лютнев*",
        "березень|березня|березні|березнев*",
        "квітень|квітня|квітні|квітнев*",
        "травень|травня|травні|травнев*",
        "червень|червня|червні|червнев*",
        "липень|липня|липні|липнев*",
        "серпень|серпня|серпні|серпнев*",
        "вересень|вересня|вересні|вересне*",
        "жовтень|жовтня|жовтні|жовтнев*",
        "листопад|листопада|листопаді|листопадов*",
        "грудень|грудня|грудні|груднев*",
    ),
    "be": (
        "студзень|студзеня|студзені",
        "люты|лютага|лютым",
        "сакавік|сакавіка|сакавіку",
        "красавік|красавіка|красавіку",
        "май|мая|маі",
        "чэрвень|чэрвеня|чэрвені",
        "ліпень|ліпеня|ліпені",
        "жнівень|жніўня|жніўні",
        "верасень|верасня|верасні",
        "кастрычнік|кастрычніка|кастрычніку",
        "лістапад|лістапада|лістападзе",
        "снежань|снежня|снежні",
    ),
    "kk": (
        "қаңтар*",
        "ақпан*",
        "наурыз*",
        "сәуір*",
        "мамыр*",
        "маусым*",
        "шілде*",
        "тамыз*",
        "қыркүйек*",
        "?қазан|қазанда|қазанның",
        "қараша*",
        "желтоқсан*",
    ),
    "az": (
        "yanvar*",
        "fevral*",
        "mart|martda|martdan",
        "aprel*",
        "?may|mayda|maydan",
        "iyun*",
        "iyul*",
        "avqust*",
        "sentyabr*",
        "oktyabr*",
        "noyabr*",
        "dekabr*",
    ),
    "tr": (
        "?ocak",
        "şubat",
        "mart",
        "nisan",
        "mayıs",
        "haziran",
        "temmuz",
        "ağustos",
        "eylül",
        "ekim",
        "?kasım",
        "?aralık",
    ),
    "el": (
        "ιανουάρ*|γενάρη",
        "φεβρουάρ*|φλεβάρη",
        "μάρτιος|μαρτίου|μάρτη",
        "απρίλ*",
        "μάιος|μαΐου|μάη",
        "ιούνι*",
        "ιούλι*",
        "αύγουστ*",
        "σεπτέμβρ*",
        "οκτώβρ*",
        "νοέμβρ*",
        "δεκέμβρ*",
    ),
    "sq": (
        "janar*",
        "?shkurt|shkurti|shkurtit",
        "mars|marsi|marsit",
        "prill|prilli|prillit",
        "?maj|maji|majit",
        "qershor*",
        "korrik*",
        "gusht*",
        "shtator*",
        "tetor*",
        "nëntor*",
        "dhjetor*",
    ),
    "hu": (
        "január*",
        "február*",
        "március*",
        "április*",
        "május*",
        "június*",
        "július*",
        "augusztus*",
        "szeptember*",
        "október*",
        "november*",
        "december*",
    ),
    "id": (
        "januari",
        "februari",
        "maret",
        "april",
        "mei",
        "juni",
        "juli",
        "agustus",
        "september",
        "oktober",
        "november",
        "desember",
    ),
    "ms": (
        "januari",
        "februari",
        "?mac",
        "april",
        "mei",
        "?jun",
        "julai",
        "ogos",
        "september",
        "oktober",
        "november",
        "disember",
    ),
    "vi": (
        "tháng một|tháng giêng",
        "tháng hai",
        "tháng ba",
        "tháng tư",
        "?tháng năm",
        "tháng sáu",
        "tháng bảy",
        "tháng tám",
        "tháng chín",
        "tháng mười",
        "tháng mười một",
        "tháng mười hai|tháng chạp",
    ),
    "ka": (
        "იანვარ*",
        "თებერვ*",
        "მარტი|მარტს|მარტში|მარტის|მარტიდან|მარტამდე",
        "აპრილ*",
        "მაის*",
        "ივნის*",
        "ივლის*",
        "აგვისტო*",
        "სექტემბ*",
        "ოქტომბ*",
        "ნოემბ*",
        "დეკემბ*",
    ),
    # Armenian մարտ is also "battle": March only with a day or year beside it.
    "hy": (
        "հունվար*",
        "փետրվար*",
        "?մարտ|?մարտի|?մարտին",
        "ապրիլ*",
        "մայիս*",
        "հունիս*",
        "հուլիս*",
        "օգոստոս*",
        "սեպտեմբեր*",
        "հոկտեմբեր*",
        "նոյեմբեր*",
        "դեկտեմբեր*",
    ),
    "he": (
        "ינואר",
        "פברואר",
        "?מרץ",
        "אפריל",
        "מאי",
        "?יוני",
        "יולי",
        "אוגוסט",
        "ספטמבר",
        "אוקטובר",
        "נובמבר",
        "דצמבר",
    ),
    # Gregorian names of Egypt and the Gulf, then those of the Levant and Iraq.
    "ar": (
        "يناير|كانون الثاني",
        "فبراير|شباط",
        "?مارس|آذار|اذار",
        "أبريل|ابريل|إبريل|نيسان",
        "مايو|أيار|ايار",
        "يونيو|يونيه|حزيران",
        "يوليو|يوليه|تموز",
        "أغسطس|اغسطس|?آب",
        "سبتمبر|أيلول|ايلول",
        "أكتوبر|اكتوبر|تشرين الأول|تشرين الاول",
        "نوفمبر|تشرين الثاني",
        "ديسمبر|كانون الأول|كانون الاول",
    ),
    "fa": (
        "ژانویه",
        "فوریه",
        "?مارس",
        "آوریل",
        "?مه",
        "ژوئن",
        "ژوئیه|جولای",
        "اوت|آگوست",
        "سپتامبر",
        "اکتبر",
        "نوامبر",
        "دسامبر",
    ),
    "ur": (
        "جنوری",
        "فروری",
        "مارچ",
        "اپریل",
        "مئی",
        "جون",
        "جولائی",
        "اگست",
        "ستمبر",
        "اکتوبر",
        "نومبر",
        "دسمبر",
    ),
    "hi": (
        "जनवरी",
        "फ़रवरी|फरवरी",
        "मार्च",
        "अप्रैल|अप्रेल",
        "मई",
        "जून",
        "जुलाई",
        "अगस्त",
        "सितंबर|सितम्बर",
        "अक्टूबर|अक्तूबर",
        "नवंबर|नवम्बर",
        "दिसंबर|दिसम्बर",
    ),
    "bn": (
        "জানুয়ারি*|জানুয়ারী*",
        "ফেব্রুয়ারি*|ফেব্রুয়ারী*",
        "মার্চ*",
        "এপ্রিল*",
        "মে|মেতে",
        "জুন|জুনে",
        "জুলাই*",
        "আগস্ট*",
        "সেপ্টেম্বর*",
        "অক্টোবর*",
        "নভেম্বর*",
        "ডিসেম্বর*",
    ),
    "th": (
        "มกราคม|ม.ค.",
        "กุมภาพันธ์|ก.พ.",
        "มีนาคม|มี.ค.",
        "เมษายน|เม.ย.",
        "พฤษภาคม|พ.ค.",
        "มิถุนายน|มิ.ย.",
        "กรกฎาคม|ก.ค.",
        "สิงหาคม|ส.ค.",
        "กันยายน|ก.ย.",
        "ตุลาคม|ต.ค.",
        "พฤศจิกายน|พ.ย.",
        "ธันวาคม|ธ.ค.",
    ),
    # zh, ja and ko write months as numbers ("3月", "三月", "3월"): read by _CJK below.
}

# The Solar Hijri months of Iranian and Afghan Persian, Farvardin first, and the Gregorian day each begins
# on (in most years; a day off at most, which a window of weeks does not notice).
SOLAR_MONTHS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("فروردین|حمل", (3, 21)),
    ("اردیبهشت|ثور", (4, 21)),
    ("خرداد|جوزا", (5, 22)),
    ("?تیر|سرطان", (6, 22)),
    ("مرداد|امرداد|اسد", (7, 23)),
    ("شهریور|سنبله", (8, 23)),
    ("?مهر|میزان", (9, 23)),
    ("آبان|عقرب", (10, 23)),
    ("?آذر|قوس", (11, 22)),
    ("?دی|جدی", (12, 22)),
    ("بهمن|دلو", (1, 21)),
    ("اسفند|حوت", (2, 20)),
)

# Phrases that date a text a year or more after what it recalls: "last year's 30-day pause".
RETROSPECTIVE: dict[str, tuple[str, ...]] = {
    "en": ("a year ago", "year ago", "last year", "last year's", "a year earlier", "one year on", "a year on"),
    "de": ("vor einem jahr", "vergangenen jahr*", "letzten jahr*", "im vorjahr", "vor einem jahr*"),
    "fr": ("il y a un an", "l'an dernier", "l'annee derniere", "l'an passe", "un an plus tot"),
    "es": ("hace un ano", "el ano pasado", "del ano pasado", "un ano antes"),
    "pt": ("ha um ano", "ano passado", "um ano antes"),
    "it": ("un anno fa", "l'anno scorso", "dell'anno scorso", "lo scorso anno"),
    "ro": ("acum un an", "anul trecut", "anului trecut"),
    "nl": ("een jaar geleden", "vorig jaar"),
    "sv": ("for ett ar sedan", "forra aret", "i fjol"),
    "da": ("for et ar siden", "sidste ar", "sidste ars"),
    "nb": ("for et ar siden", "i fjor", "fjorarets"),
    "fi": ("vuosi sitten", "viime vuonna", "viime vuoden"),
    "et": ("aasta eest", "aasta tagasi", "eelmisel aastal", "mullu"),
    "lv": ("pirms gada", "pagājušajā gadā", "pagājušā gada", "pērn"),
    "lt": ("prieš metus", "pernai", "praėjusiais metais", "pernykšt*"),
    "pl": ("rok temu", "w zeszłym roku", "w ubiegłym roku", "zeszłoroczn*", "ubiegłoroczn*"),
    "cs": ("před rokem", "loni", "loňsk*", "minulého roku", "loňského roku"),
    "sk": ("pred rokom", "vlani", "minulého roka", "minuloročn*"),
    "sl": ("pred letom", "lani", "lansk*"),
    "hr": ("prije godinu dana", "prošle godine", "prošlogodišnj*", "lani"),
    "bs": ("prije godinu dana", "pre godinu dana", "prošle godine", "prošlogodišnj*"),
    "sr": ("пре годину дана", "прошле године", "прошлогодишњ*"),
    "bg": ("преди година", "миналата година", "миналогодишн*"),
    "ru": ("год назад", "в прошлом году", "прошлого года", "прошлогодн*"),
    "uk": ("рік тому", "минулого року", "торік", "торішн*", "минулорічн*"),
    "be": ("год таму", "летась", "мінулага года", "у мінулым годзе"),
    "kk": ("бір жыл бұрын", "өткен жылы", "былтыр*"),
    "az": ("bir il əvvəl", "keçən il", "ötən il"),
    "tr": ("bir yıl önce", "geçen yıl", "geçen yılki", "geçen sene"),
    "el": ("πριν από ένα χρόνο", "πριν ένα χρόνο", "πέρυσι", "πέρσι", "την περασμένη χρονιά"),
    "sq": ("një vit më parë", "vitin e kaluar", "vjet"),
    "hu": ("egy éve", "egy évvel ezelőtt", "tavaly*"),
    "id": ("setahun lalu", "tahun lalu", "setahun yang lalu"),
    "ms": ("setahun lalu", "tahun lepas", "tahun lalu"),
    "vi": ("năm ngoái", "một năm trước", "năm trước"),
    "ka": ("ერთი წლის წინ", "შარშან*", "გასულ წელს", "გასული წლის"),
    "hy": ("մեկ տարի առաջ", "անցյալ տարի", "նախորդ տարի"),
    "he": ("לפני שנה", "בשנה שעברה", "אשתקד"),
    "ar": ("قبل عام", "قبل سنة", "العام الماضي", "السنة الماضية", "العام المنصرم"),
    "fa": ("یک سال پیش", "سال گذشته", "پارسال"),
    "ur": ("ایک سال پہلے", "گزشتہ سال", "پچھلے سال"),
    "hi": ("एक साल पहले", "पिछले साल", "पिछले वर्ष", "गत वर्ष"),
    "bn": ("এক বছর আগে", "গত বছর"),
    "th": ("ปีที่แล้ว", "ปีก่อน"),
    "zh": ("去年", "一年前"),
    "ja": ("昨年", "1年前", "一年前"),
    "ko": ("지난해", "작년", "1년 전", "일 년 전"),
}

# A truce of a week: the January-February 2026 energy halt ("week-long", "на тиждень"). Not "one week"
# alone: "one week after the call" is how follow-ups of a longer truce are dated.
WEEK: dict[str, tuple[str, ...]] = {
    "en": ("week-long", "weeklong", "for a week", "for one week", "seven-day", "7-day"),
    "de": ("für eine woche", "eine woche lang", "einwöchig*", "siebentägig*"),
    "fr": ("pendant une semaine", "d'une semaine", "de sept jours"),
    "es": ("durante una semana", "por una semana", "de una semana", "de siete días"),
    "pt": ("por uma semana", "durante uma semana", "de uma semana", "de sete dias"),
    "it": ("per una settimana", "di una settimana", "di sette giorni"),
    "ro": ("de o săptămână", "timp de o săptămână", "de șapte zile"),
    "nl": ("een week lang", "voor een week", "zevendaags*"),
    "sv": ("i en vecka", "en veckas", "veckolång*"),
    "da": ("i en uge", "en uges", "ugelang*"),
    "nb": ("i en uke", "en ukes", "ukelang*"),
    "fi": ("viikoksi", "viikon ajan", "viikon mittai*", "viikon pituinen"),
    "et": ("nädalaks", "nädalane", "nädalase", "ühenädala*"),
    "lv": ("uz nedēļu", "nedēļu ilg*", "vienas nedēļas"),
    "lt": ("savaitei", "savaitės trukmės", "vienos savaitės"),
    "pl": ("na tydzień", "przez tydzień", "tygodniow*", "siedmiodniow*"),
    "cs": ("na týden", "týdenní", "týdenního", "sedmidenní"),
    "sk": ("na týždeň", "týždňov*", "sedemdňov*"),
    "sl": ("za en teden", "za teden dni", "enotedensk*"),
    "hr": ("na tjedan dana", "tjedan dana", "jednotjedn*", "sedmodnevn*"),
    "bs": ("na sedmicu", "sedmicu dana", "na nedelju dana", "nedelju dana", "sedmičn*", "jednosedmičn*"),
    "sr": ("на недељу дана", "недељу дана", "седмодневн*", "једнонедељн*"),
    "bg": ("за една седмица", "за седмица", "едноседмичн*"),
    "ru": ("на неделю", "недельн*", "в течение недели", "семидневн*"),
    "uk": ("на тиждень", "тижнев*", "протягом тижня", "семиденн*"),
    "be": ("на тыдзень", "тыднёв*"),
    "kk": ("бір апталық", "бір аптаға"),
    "az": ("bir həftəlik", "bir həftə müddətinə"),
    "tr": ("bir haftalık", "bir hafta boyunca", "bir haftalığına", "yedi günlük"),
    "el": ("για μία εβδομάδα", "για μια εβδομάδα", "μιας εβδομάδας", "επταήμερ*"),
    "sq": ("për një javë", "njëjavor*", "njëjavësh*"),
    "hu": ("egyhetes", "egy hétre", "egy hétig"),
    "id": ("selama seminggu", "selama satu minggu"),
    "ms": ("selama seminggu", "selama satu minggu"),
    "vi": ("trong một tuần", "kéo dài một tuần"),
    "ka": ("ერთკვირიან*", "ერთი კვირით", "ერთი კვირის ვადით"),
    "hy": ("մեկշաբաթյա", "մեկ շաբաթով"),
    "he": ("לשבוע", "בן שבוע", "למשך שבוע"),
    "ar": ("لمدة أسبوع", "لمدة اسبوع", "لأسبوع", "لاسبوع"),
    "fa": ("به مدت یک هفته", "یک هفته ای"),
    "ur": ("ایک ہفتے کے لیے", "ایک ہفتے کی"),
    "hi": ("एक सप्ताह के लिए", "एक हफ्ते के लिए", "एक हफ़्ते के लिए", "सप्ताह भर", "हफ्ते भर"),
    "bn": ("এক সপ্তাহের জন্য", "সপ্তাহব্যাপী"),
    "th": ("หนึ่งสัปดาห์", "1 สัปดาห์"),
    "zh": ("为期一周", "為期一週", "一周内", "一週內", "为期七天", "為期七天", "一星期"),
    "ja": ("1週間", "一週間"),
    "ko": ("일주일간", "일주일 동안", "1주일간", "1주일 동안", "일주일짜리"),
}

# Frost and cold snaps: the weather of the later truces (winter 2025-26), not of a March-April pause.
FROST: dict[str, tuple[str, ...]] = {
    "en": ("frost", "frosts", "cold snap", "extreme cold", "freezing temperatures", "sub-zero", "bitter cold"),
    "de": ("frost", "kältewelle", "eisige kälte", "extreme kälte", "minusgrade*", "dauerfrost"),
    "fr": ("grand froid", "grands froids", "froid extrême", "vague de froid", "températures glaciales"),
    "es": ("ola de frío", "frío extremo", "heladas", "temperaturas bajo cero"),
    "pt": ("onda de frio", "frio extremo", "geadas", "temperaturas negativas"),
    "it": ("ondata di gelo", "gelo", "freddo estremo", "temperature sotto zero"),
    "ro": ("gerul", "geruri", "val de frig", "frig extrem"),
    "nl": ("vorst", "strenge vorst", "koudegolf", "extreme kou"),
    "sv": ("sträng kyla", "köldknäpp", "minusgrader"),
    "da": ("streng kulde", "kuldebølge", "frost"),
    "nb": ("sprengkulde", "kuldebølge", "frost"),
    "fi": ("pakkanen", "pakkas*", "kova pakkanen"),
    "et": ("pakane", "pakase", "krõbe külm"),
    "lv": ("sals", "bargs sals", "spēcīgs sals"),
    "lt": ("šalčiai", "šalčių", "speig*"),
    "pl": ("mrozy", "mrozów", "mrozami", "mroźn*"),
    "cs": ("mrazy", "mrazu", "mrazivé", "silné mrazy"),
    "sk": ("mrazy", "mrazu", "mrazivé"),
    "sl": ("mraz", "mraza", "hud mraz"),
    "hr": ("mraz", "mraza", "mrazevi", "val hladnoće"),
    "bs": ("mraz", "mraza", "mrazevi", "hladni talas"),
    "sr": ("мраз", "мраза", "мразеви", "хладни талас"),
    "bg": ("студове", "мразове", "студена вълна"),
    "ru": ("морозы", "морозами", "морозн*", "похолодани*", "аномальн* холод*", "сильн* холод*"),
    "uk": ("морози", "морозами", "морозн*", "похолодання", "аномальн* холод*", "сильн* холод*"),
    "be": ("маразы", "марозн*"),
    "kk": ("қатты аяз", "аяздар*"),
    "az": ("şaxta", "sərt soyuq"),
    "tr": ("dondurucu soğuk", "soğuk hava dalgası", "aşırı soğuk", "ayaz"),
    "el": ("παγετός", "παγετού", "κύμα ψύχους", "τσουχτερό κρύο"),
    "sq": ("ngrica", "acar", "të ftohtë ekstrem"),
    "hu": ("fagyok", "hideghullám", "mínuszok", "kemény hideg"),
    "id": ("dingin ekstrem", "suhu beku"),
    "ms": ("sejuk melampau", "suhu beku"),
    "vi": ("giá rét", "rét đậm", "rét hại"),
    "ka": ("ყინვ*", "ძლიერი სიცივე"),
    "hy": ("սառնամանիք*", "ուժեղ ցուրտ"),
    "he": ("קור עז", "כפור", "גל קור"),
    "ar": ("البرد القارس", "موجة برد", "الصقيع", "برد شديد"),
    "fa": ("سرمای شدید", "یخبندان", "موج سرما"),
    "ur": ("شدید سردی", "سردی کی لہر"),
    "hi": ("कड़ाके की ठंड", "शीतलहर", "भीषण ठंड"),
    "bn": ("তীব্র শীত", "শৈত্যপ্রবাহ"),
    "th": ("หนาวจัด",),
    "zh": ("严寒", "嚴寒", "寒潮", "极寒", "極寒", "低温", "低溫"),
    "ja": ("厳しい寒さ", "寒波", "極寒"),
    "ko": ("혹한", "한파", "강추위"),
}

# Winter and the heating season: other grid campaigns and the later truces (the storyline is spring).
WINTER: dict[str, tuple[str, ...]] = {
    "en": ("winter", "heating season", "wintertime"),
    "de": ("winter", "heizperiode", "heizsaison"),
    "fr": ("hiver", "hivernal*", "saison de chauffage"),
    "es": ("invierno", "invernal*"),
    "pt": ("inverno",),
    "it": ("inverno", "invernal*"),
    "ro": ("iarna", "iernii"),
    "nl": ("winter", "de winter"),
    "sv": ("vinter", "vintern"),
    "da": ("vinter", "vinteren"),
    "nb": ("vinter", "vinteren"),
    "fi": ("talvi", "talvella", "talven", "talvis*"),
    "et": ("talv", "talvel", "talvine", "talve"),
    "lv": ("ziema", "ziemā", "ziemas"),
    "lt": ("žiema", "žiemą", "žiemos", "žiemai"),
    "pl": ("zima", "zimy", "zimę", "zimie", "zimow*", "sezon grzewcz*"),
    "cs": ("zima", "zimy", "zimu", "zimní", "v zimě", "topnou sezónu", "topné sezóny"),
    "sk": ("zima", "zimy", "zimu", "zimn*", "v zime"),
    "sl": ("zima", "zime", "pozimi", "zimsk*"),
    "hr": ("zima", "zime", "zimu", "zimi", "zimsk*"),
    "bs": ("zima", "zime", "zimu", "zimi", "zimsk*"),
    "sr": ("зима", "зиме", "зиму", "зимск*"),
    "bg": ("зима", "зимата", "зимн*"),
    "ru": ("зима", "зимы", "зиму", "зимой", "зимн*", "отопительн* сезон*"),
    "uk": ("зима", "зими", "зиму", "взимку", "зимов*", "опалювальн* сезон*"),
    "be": ("зіма", "зімы", "зімой", "зімов*"),
    "kk": ("қыс", "қыста", "қысқы"),
    "az": ("qış", "qışda"),
    "tr": ("kışın", "kış ayları*"),
    "el": ("χειμώνας", "χειμώνα", "χειμεριν*"),
    "sq": ("dimër", "dimri", "dimrit", "dimëror*"),
    "hu": ("télen", "fűtési szezon*"),
    "id": ("musim dingin",),
    "ms": ("musim sejuk",),
    "vi": ("mùa đông",),
    "ka": ("ზამთ*",),
    "hy": ("ձմեռ*", "ձմռան"),
    "he": ("חורף", "החורף", "בחורף"),
    "ar": ("الشتاء", "فصل الشتاء"),
    "fa": ("زمستان",),
    "ur": ("سردیوں", "موسم سرما"),
    "hi": ("सर्दी", "सर्दियों"),
    "bn": ("শীতকাল", "শীতে"),
    "th": ("ฤดูหนาว",),
    "zh": ("冬季", "冬天", "今冬", "入冬"),
    "ja": ("冬季", "冬場", "この冬"),
    "ko": ("겨울", "동절기"),
}

# "Until" before a date, or after it (suffixes and postpositions): "until 1 February", "до 1 лютого",
# "1 Şubat'a kadar", "2월 1일까지", "1 თებერვლამდე". A truce that runs until a day the window does not hold
# is another truce. Written folded (lower case, no accents), as the text is searched.
UNTIL_BEFORE = (
    "until", "till", "through", "to", "up to", "lasting until",
    "до", "да", "do", "az do", "bis", "bis zum", "bis zur", "bis am", "jusqu'au", "jusqu'a", "jusqu'au 1er",
    "hasta el", "hasta", "ate", "ate ao", "ate dia", "fino al", "fino a", "pana la", "pana pe", "tot", "tot en met",
    "till och med", "fram till", "til", "indtil", "frem til", "kuni", "lidz", "iki", "εωσ", "εωσ την", "μεχρι",
    "μεχρι την", "deri me", "deri ne", "sampai", "hingga", "մինչև", "עד", "עד ה", "حتى", "تا",
)  # fmt: skip
UNTIL_BEFORE_CJK = ("直至", "直到", "至", "到", "จนถึง", "ถึง")  # no spaces: matched right before the date
UNTIL_AFTER = ("kadar", "qədər", "дейін", "asti", "saakka", "تک", "तक", "পর্যন্ত", "まで", "까지", "ig")

# Arabic-script and Hebrew prepositions written onto the month: "في مارس" is two words, "بمارس" one.
_CLITICS = {"ar": ("ب", "ل", "و", "وب", "ول"), "he": ("ב", "ל", "מ", "ו", "וב", "ה"), "fa": ("ب",)}

_AMBIGUOUS: set[str] = set()  # folded forms that are months only with a day or a year beside them
_GREGORIAN, _SOLAR, _RETRO, _WEEK, _FROST, _WINTER = 0, 12, 24, 25, 26, 27
_N_CONCEPTS = 28
_PHRASES = ((_RETRO, "retrospective"), (_WEEK, "week"), (_FROST, "frost"), (_WINTER, "winter"))

# What may stand between a day number and its month: "18 ", "18. ", "18-го ", "18 de ", "le 18 ", "18th of ".
_DAY_BEFORE = re.compile(r"(?<![\d.,])(\d{1,2})(?:\.|[^\W\d]{1,2}\.?|-[^\W\d]{1,3})?\s*(?:de\s+|d'|of\s+|del\s+)?$")
_DAY_AFTER = re.compile(r"^\s*(\d{1,2})(?![\d.,]\d)")
# Gregorian (19xx, 20xx), Solar Hijri (13xx, 14xx) and Thai Buddhist Era (25xx) years.
_YEAR_AFTER = re.compile(r"^[^\d\n]{0,6}(?:\d{1,2}[^\d\n]{1,6})?((?:19|20)\d{2}|1[34]\d{2}|25[5-7]\d)(?!\d)")
_YEAR_BEFORE = re.compile(r"(?<!\d)((?:19|20)\d{2}|1[34]\d{2}|25[5-7]\d)(?!\d)[^\d\n]{0,12}(?:\d{1,2}[^\d\n]{0,4})?$")
# 18.03.2025, 18/3/2025, 2025-03-18, 2025.03.18
_NOT_BEFORE = frozenset("0123456789.,/-")  # a number that continues another is not a date or a year
_DMY = re.compile(r"(\d{1,2})[./](\d{1,2})[./]((?:19|20)\d{2})(?!\d)")
_YMD = re.compile(r"((?:19|20)\d{2})[-./](\d{1,2})[-./](\d{1,2})(?!\d)")
# 2025年3月18日, 3月18日, 三月, 2025년 3월 18일, 3월, tháng 3 (năm 2025)
_CN_NUM = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10, "正": 1}
_CJK_BEFORE = re.compile(r"(?:((?:19|20)\d{2})\s*[年년]\s*)?(\d{1,2}|十[一二]?|[正一二三四五六七八九])\s*$")
_CJK_DAY = re.compile(r"\s*(\d{1,2})\s*[日일号號]")
_CJK_NUMERALS = frozenset("0123456789十一二三四五六七八九")
_VI = re.compile(r"(?:ngay\s+(\d{1,2})\s+)?thang\s+(\d{1,2})(?:\s*(?:/|nam)\s*((?:19|20)\d{2}))?")
_UNTIL_BEFORE = re.compile(
    "(?:(?<!\\w)(?:"
    + "|".join(re.escape(w) for w in sorted(UNTIL_BEFORE, key=len, reverse=True))
    + ")|"
    + "|".join(map(re.escape, UNTIL_BEFORE_CJK))
    + ")"
    r"[\s-]*(?:(?:the|el|la|le|de la|de|al|ao|dem|ال)\s*)?(?:[^\W\d]{1,8}\s+(?:من|of)\s+)?$"
)
_UNTIL_AFTER = re.compile(
    r"[\s'’-]*(?:[aeıiouüö]|[yn][aeıiouüö]|)[\s'’-]*(?:" + "|".join(map(re.escape, UNTIL_AFTER)) + r")(?!\w)"
)
_UNTIL_SUFFIX = ("მდე",)  # Georgian writes "until" onto the month: 1 თებერვლამდე
_THAI = re.compile(r"[\u0e00-\u0e7f]")


# Whether a stretch of text [start, end) is worth reading (near the story's event, for a storyline).
Near = Callable[[int, int], bool]


def _anywhere(start: int, end: int) -> bool:
    return True


@dataclass(frozen=True)
class Mention:
    """One time reference in a text: where, what it says, and the days it can mean."""

    start: int
    end: int
    # "date", "month" (with its year), "month-only" (no year), "year"; or a phrase: "retrospective" ("a
    # year ago"), "week" (a week-long truce), "frost" (a cold snap), "winter" (the season)
    kind: str
    first: date | None  # the earliest day meant (None: retrospective, or a month without a year)
    last: date | None
    month: int = 0  # for "month-only": 1-12
    until: bool = False  # the end of something: "until 1 February", "2월 1일까지"


def _cn_month(token: str) -> int:
    if token.isdigit():
        return int(token)
    if token.startswith("十"):
        return 10 + (_CN_NUM[token[1]] if len(token) > 1 else 0)
    return _CN_NUM[token]


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _month_span(y: int, m: int) -> tuple[date, date]:
    return date(y, m, 1), date(y, m, monthrange(y, m)[1])


def _year(text: str, solar: bool = False) -> int:
    """A year as written, in the Gregorian calendar; 0 when it cannot be a year of that calendar."""
    y = int(text)
    if 1300 <= y < 1500:  # Solar Hijri: only next to a Solar month ("1400 drones" is no year)
        return y + 621 if solar else 0
    if 2500 <= y < 2600:  # Thai Buddhist Era
        return y - 543
    return y


# Digits of other scripts as ASCII, one character for one, so offsets do not move.
_DIGITS = {zero + k: ord("0") + k for zero in (0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0xFF10) for k in range(10)}
_OTHER_DIGIT = re.compile("[\u0660-\u0669\u06f0-\u06f9\u0966-\u096f\u09e6-\u09ef\u0e50-\u0e59\uff10-\uff19]")


class TimeReader:
    """Finds the dates, months, years and time phrases of a prepared text.

    Its terms are added to a Matcher (a storyline's own, so that an article's words are looked up once for
    the storyline and its time cues together), as concepts base .. base + 27.
    """

    def __init__(self, matcher: Matcher | None = None) -> None:
        self._matcher = matcher if matcher is not None else Matcher(0)
        self.base = self._matcher.add_concepts(_N_CONCEPTS)
        for lang, months in MONTHS.items():
            for m, forms in enumerate(months):
                for form in forms.split("|"):
                    self._add(_GREGORIAN + m, form, _CLITICS.get(lang, ()))
        for m, (forms, _start) in enumerate(SOLAR_MONTHS):
            for form in forms.split("|"):
                self._add(_SOLAR + m, form, ())
        for concept, table in ((_RETRO, RETROSPECTIVE), (_WEEK, WEEK), (_FROST, FROST), (_WINTER, WINTER)):
            for phrases in table.values():
                for phrase in phrases:
                    self._matcher.add_term(self.base + concept, phrase)

    def _add(self, concept: int, form: str, clitics: Sequence[str]) -> None:
        ambiguous = form.startswith("?")
        form = form.lstrip("?")
        for clitic in ("", *clitics):
            term = clitic + form if " " not in form or not clitic else form
            self._matcher.add_term(self.base + concept, term)
            if ambiguous:
                _AMBIGUOUS.add(fold(prepare(term)).rstrip("*"))

    def read(
        self, prepared: Prepared, hits: Sequence[Sequence[Span]] | None = None, near: Near | None = None
    ) -> list[Mention]:
        """Every time reference of the text, sorted by position (one per place: the most precise).

        `hits` are the matcher's results for this text when the caller has them already; with `near`, only
        the references it accepts (by start and end) are read, and the rest of the text costs nothing.
        """
        folded = prepared.folded
        if _OTHER_DIGIT.search(folded):
            folded = folded.translate(_DIGITS)
        if hits is None:
            hits = self._matcher.find(prepared)
        ok = near or _anywhere
        base = self.base
        out: list[Mention] = []
        for c in range(_SOLAR + 12):
            for s, e in hits[base + c]:
                if ok(s - 12, e + 24) and (mention := self._month(folded, s, e, c)) is not None:
                    out.append(mention)
        for concept, kind in _PHRASES:
            out.extend(Mention(s, e, kind, None, None) for s, e in hits[base + concept] if ok(s, e))
        out.extend(m for m in self._numeric(prepared, folded, out, ok) if ok(m.start, m.end))
        return [_until(folded, m) if m.kind in ("date", "month-only") else m for m in _best_per_place(out)]

    def _month(self, folded: str, s: int, e: int, concept: int) -> Mention | None:
        before, after = folded[max(0, s - 24) : s], folded[e : e + 24]
        day_m = _DAY_BEFORE.search(before[-12:]) or _DAY_AFTER.match(after)
        day = int(day_m.group(1)) if day_m else 0
        if not 1 <= day <= 31:
            day = 0
        solar = concept >= _SOLAR
        start, end = s, e
        if day_m is not None and day:
            if day_m.re is _DAY_BEFORE:
                start = s - len(before[-12:]) + day_m.start(1)
            else:
                end = e + day_m.end(1)
        year = 0
        if (year_m := _YEAR_AFTER.match(after)) is not None:
            year = _year(year_m.group(1), solar)
            end = max(end, e + year_m.end(1)) if year else end
        elif (year_m := _YEAR_BEFORE.search(before)) is not None:
            year = _year(year_m.group(1), solar)
            start = min(start, s - len(before) + year_m.start(1)) if year else start
        if not day and not year and folded[s:e] in _AMBIGUOUS:
            return None
        if solar:
            return _solar(start, end, concept - _SOLAR, day, year)
        m = concept - _GREGORIAN + 1
        if not year:
            return Mention(start, end, "month-only", None, None, m)
        if day and (d := _safe_date(year, m, day)) is not None:
            return Mention(start, end, "date", d, d, m)
        first, last = _month_span(year, m)
        return Mention(start, end, "month", first, last, m)

    def _numeric(self, prepared: Prepared, folded: str, words: list[Mention], ok: Near) -> list[Mention]:
        """Dates written in digits (18.03.2025, 2025-03-18, 3月18日, tháng 3) and years standing alone."""
        out: list[Mention] = []
        years: list[tuple[int, int, int]] = []
        # The numbers are among the words the text was split into: picking them out runs in C (a pattern
        # would be tried at every character of the text).
        tokens, bounds = prepared.words, prepared.bounds
        for i in compress(range(len(tokens)), map(str.isdigit, tokens)):
            start, end = bounds[2 * i], bounds[2 * i + 1]
            if (start and folded[start - 1] in _NOT_BEFORE) or not ok(start, end + 8):
                continue
            n = end - start
            nxt = folded[end : end + 1]
            if n <= 2 and nxt in "./" and nxt and (match := _DMY.match(folded, start)) is not None:
                d, m, y = int(match.group(1)), int(match.group(2)), int(match.group(3))
                if m > 12 >= d:  # 3/18/2025: the American order
                    d, m = m, d
                if (day := _safe_date(y, m, d)) is not None:
                    out.append(Mention(match.start(), match.end(), "date", day, day, m))
            elif n == 4 and nxt and nxt in "-./" and (match := _YMD.match(folded, start)) is not None:
                y, m, d = int(match.group(1)), int(match.group(2)), int(match.group(3))
                if (day := _safe_date(y, m, d)) is not None:
                    out.append(Mention(match.start(), match.end(), "date", day, day, m))
                    continue
            if n == 4:
                y = int(folded[start:end])
                if 1900 <= y < 2100 or (2550 <= y < 2580 and _THAI.search(folded)):
                    years.append((start, end, _year(folded[start:end])))
        for marker in "月월":
            # From each month sign back to its number: the signs are few, the text is long.
            k = folded.find(marker)
            while k >= 0:
                lo = max(0, k - 12)
                before = _CJK_BEFORE.search(folded, lo, k)
                if before is not None and ok(before.start(), k + 8):
                    m = _cn_month(before.group(2))
                    start = before.start(1) if before.group(1) else before.start(2)
                    if 1 <= m <= 12 and (not start or folded[start - 1] not in _CJK_NUMERALS):
                        after = _CJK_DAY.match(folded, k + 1)
                        end = after.end() if after else k + 1
                        out.append(self._dated(start, end, before.group(1), m, after.group(1) if after else None))
                k = folded.find(marker, k + 1)
        if "thang" in folded:
            for match in _VI.finditer(folded):
                m = int(match.group(2))
                if 1 <= m <= 12:
                    out.append(self._dated(match.start(), match.end(), match.group(3), m, match.group(1)))
        # Years on their own: the ones no date has taken.
        taken = sorted((m.start, m.end) for m in (*words, *out) if m.kind in ("date", "month"))
        for start, end, y in years:
            if not _inside(taken, start):
                out.append(Mention(start, end, "year", date(y, 1, 1), date(y, 12, 31)))
        return out

    @staticmethod
    def _dated(start: int, end: int, year: str | None, m: int, day: str | None) -> Mention:
        if not year:
            return Mention(start, end, "month-only", None, None, m)
        y = int(year)
        if day and (d := _safe_date(y, m, int(day))) is not None:
            return Mention(start, end, "date", d, d, m)
        first, last = _month_span(y, m)
        return Mention(start, end, "month", first, last, m)


def _solar(start: int, end: int, index: int, day: int, year: int) -> Mention | None:
    """A Solar Hijri month (0 = Farvardin) as the Gregorian days it covers; None without a year."""
    if not year:
        return None  # its Gregorian month is not one month: without a year it dates nothing
    gm, gd = SOLAR_MONTHS[index][1]
    gy = year + (1 if index >= 10 else 0)  # Dey 11 onwards, Bahman and Esfand fall in the next Gregorian year
    begin = date(gy, gm, gd)
    nm, nd = SOLAR_MONTHS[(index + 1) % 12][1]
    finish = date(gy + (1 if nm < gm else 0), nm, nd) - timedelta(days=1)
    if day:
        d = begin + timedelta(days=day - 1)
        return Mention(start, end, "date", d, d, d.month)
    return Mention(start, end, "month", begin, finish, begin.month)


def _until(folded: str, m: Mention) -> Mention:
    """The mention, marked when an "until" stands before or after it (or in it)."""
    if (
        _UNTIL_BEFORE.search(folded, max(0, m.start - 24), m.start)
        or _UNTIL_AFTER.match(folded, m.end, m.end + 12)
        or any(x in folded[m.start : m.end] for x in _UNTIL_SUFFIX)
    ):
        return Mention(m.start, m.end, m.kind, m.first, m.last, m.month, until=True)
    return m


def _inside(spans: list[Span], at: int) -> bool:
    i = bisect_left(spans, (at + 1,)) - 1
    return i >= 0 and spans[i][0] <= at < spans[i][1]


_PRECISION = {"date": 0, "month": 1, "month-only": 2, "year": 3}


def _best_per_place(mentions: list[Mention]) -> list[Mention]:
    """One mention per place: where two overlap ("tháng mười" in "tháng mười một"), the more precise."""
    mentions.sort(key=lambda m: (m.start, _PRECISION.get(m.kind, 9), -(m.end - m.start)))
    out: list[Mention] = []
    for m in mentions:
        if out and m.start < out[-1].end and m.kind in _PRECISION and out[-1].kind in _PRECISION:
            continue
        out.append(m)
    return out


_READER: TimeReader | None = None


def reader() -> TimeReader:
    """The one TimeReader of the process (its tables compile once, on first use)."""
    global _READER
    if _READER is None:
        _READER = TimeReader()
    return _READER
