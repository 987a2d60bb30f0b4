"""parse_user_agent against User-Agent strings as they arrive from real devices and apps."""

from typing import Any

import pytest
from fake_useragent import UserAgent

from app.clicks.enrich.known_bots import MAX_UA_LENGTH
from app.clicks.enrich.useragent import UserAgentInfo, _quick, device_and_os, parse_user_agent


def case(id: str, ua: str, **expected: Any) -> Any:
    return pytest.param(ua, expected, id=id)


IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
ANDROID_WV = (
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36"
)

CASES = [
    # iPhone and iPad
    case(
        "iphone-safari-17.5",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        device_type="mobile",
        os="iOS",
        os_version="17.5",
        browser="Mobile Safari",
        browser_version="17.5",
        device_brand="Apple",
        device_model="iPhone",
        in_app=None,
    ),
    case(
        "iphone-safari-16.6",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        device_type="mobile",
        os="iOS",
        os_version="16.6",
        browser="Mobile Safari",
    ),
    case(
        "iphone-safari-15.7.9",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 15_7_9 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6.6 Mobile/15E148 Safari/604.1",
        device_type="mobile",
        os="iOS",
        os_version="15.7.9",
        browser_version="15.6.6",
    ),
    case(
        "iphone-safari-18.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        device_type="mobile",
        os="iOS",
        os_version="18.1",
        device_model="iPhone",
    ),
    case(
        "iphone-chrome",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
        device_type="mobile",
        os="iOS",
        browser="Chrome Mobile iOS",
        browser_version="126.0.6478",
    ),
    case(
        "iphone-firefox",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
        device_type="mobile",
        browser="Firefox iOS",
        browser_version="127.0",
    ),
    case(
        "iphone-edge",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1 EdgiOS/126.2592.56",
        device_type="mobile",
        browser="Edge Mobile",
    ),
    case(
        "ipad-safari",
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        device_type="tablet",
        os="iOS",
        os_version="17.5",
        device_brand="Apple",
        device_model="iPad",
    ),
    # Android phones
    case(
        "samsung-s23-ultra-chrome",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_type="mobile",
        os="Android",
        os_version="14",
        browser="Chrome Mobile",
        browser_version="126.0.6478",
        device_brand="Samsung",
        device_model="Galaxy S23 Ultra",
        in_app=None,
    ),
    case(
        "samsung-a53-samsung-internet",
        "Mozilla/5.0 (Linux; Android 13; SM-A536E) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        device_type="mobile",
        os_version="13",
        browser="Samsung Internet",
        browser_version="25.0",
        device_brand="Samsung",
        device_model="Galaxy A53 5G",
    ),
    case(
        "samsung-a52-yandex",
        "Mozilla/5.0 (Linux; arm_64; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.4.1.92.00 SA/3 Mobile Safari/537.36",
        device_type="mobile",
        browser="Yandex Browser",
        device_brand="Samsung",
    ),
    case(
        "xiaomi-model-code",
        "Mozilla/5.0 (Linux; Android 13; 23021RAAEG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_type="mobile",
        device_brand="Xiaomi",
        device_model="Redmi Note 12",
    ),
    case(
        "xiaomi-2023-model-code",
        "Mozilla/5.0 (Linux; Android 14; 2311DRK48G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        device_type="mobile",
        device_brand="POCO",
        device_model="X6 Pro 5G",
    ),
    case(
        "xiaomi-m-model-code",
        "Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_brand="Xiaomi",
        device_model="Redmi Note 10 Pro",
    ),
    case(
        "redmi-note-11",
        "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36",
        device_type="mobile",
        os_version="12",
        device_brand="Xiaomi",
        device_model="Redmi Note 11",
    ),
    case(
        "redmi-note-12-pro",
        "Mozilla/5.0 (Linux; Android 13; Redmi Note 12 Pro 5G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        device_brand="Xiaomi",
        device_model="Redmi Note 12 Pro",
        browser_version="126.0.0",
    ),
    case(
        "xiaomi-mi-9t",
        "Mozilla/5.0 (Linux; Android 13; Mi 9T Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        device_brand="Xiaomi",
        device_model="Mi 9T Pro",
    ),
    case(
        "poco",
        "Mozilla/5.0 (Linux; Android 12; POCO X3 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        device_brand="POCO",
        device_model="X3 Pro",
    ),
    case(
        "miui-browser",
        "Mozilla/5.0 (Linux; U; Android 13; en-us; 2201117TY Build/TKQ1.221114.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.5.1-gn",
        # ua-parser reads the MIUI browser's UA as a generic smartphone: no brand, no model.
        device_type="mobile",
        browser="MiuiBrowser",
        browser_version="14.5.1",
        device_brand="Xiaomi",
        device_model="Redmi Note 11 4G",
    ),
    case(
        "oppo",
        "Mozilla/5.0 (Linux; Android 13; CPH2487) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_type="mobile",
        device_brand="OnePlus",
        device_model="11R 5G",
    ),
    case(
        "realme",
        # realme is an OPPO brand, and ua-parser files its RMX codes under Oppo.
        "Mozilla/5.0 (Linux; Android 13; RMX3630) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_brand="Realme",
        device_model="10",
    ),
    case(
        "vivo-model-code",
        "Mozilla/5.0 (Linux; Android 13; V2207) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_type="mobile",
        device_brand="Vivo",
        device_model="Y22",
    ),
    case(
        "vivo-named",
        "Mozilla/5.0 (Linux; Android 11; vivo 1906) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_brand="Vivo",
        device_model="Y11",
    ),
    case(
        "pixel-8-pro",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_type="mobile",
        os_version="14",
        device_brand="Google",
        device_model="Pixel 8 Pro",
    ),
    case(
        "huawei-p30-pro",
        "Mozilla/5.0 (Linux; Android 10; ELE-L29) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 Mobile Safari/537.36",
        device_type="mobile",
        device_brand="Huawei",
        device_model="P30",
    ),
    case(
        "huawei-browser-harmonyos",
        # ua-parser takes "Browser" (from HuaweiBrowser) for the model: dropped.
        "Mozilla/5.0 (Linux; Android 10; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.300 Mobile Safari/537.36",
        device_type="mobile",
        browser="Huawei Browser",
        device_brand="Huawei",
        device_model="Mate 40 Pro",
    ),
    case(
        "infinix",
        "Mozilla/5.0 (Linux; Android 13; Infinix X6831) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_brand="Infinix",
        device_model="Hot 30",
    ),
    case(
        "tecno",
        "Mozilla/5.0 (Linux; Android 13; TECNO KI5q) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_brand="Tecno Mobile",
        device_model="Spark 10",
    ),
    case(
        "motorola",
        "Mozilla/5.0 (Linux; Android 13; moto g84 5G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_brand="Motorola",
        device_model="Moto G84 5G",
    ),
    case(
        "chrome-reduced-ua",
        # Chrome's reduced UA hides the model and freezes the release at "Android 10".
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        device_type="mobile",
        os="Android",
        os_version=None,
        browser="Chrome Mobile",
        device_brand=None,
        device_model=None,
    ),
    case(
        "opera-mobile-reduced-ua",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 OPR/82.0.0.0",
        device_type="mobile",
        browser="Opera Mobile",
        os_version=None,
    ),
    case(
        "firefox-android",
        "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0",
        device_type="mobile",
        os="Android",
        os_version="14",
        browser="Firefox Mobile",
        device_brand=None,
        device_model=None,
    ),
    # Android tablets
    case(
        "galaxy-tab-s8",
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Safari/537.36",
        device_type="tablet",
        browser="Chrome",
        device_brand="Samsung",
        device_model='Galaxy Tab S8 11.0" WiFi',
    ),
    case(
        "galaxy-tab-a7-lite",
        "Mozilla/5.0 (Linux; Android 12; SM-T225) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Safari/537.36",
        device_type="tablet",
        device_brand="Samsung",
        device_model='Galaxy Tab A7 Lite 8.7" (2021) LTE',
    ),
    case(
        "redmi-pad",
        "Mozilla/5.0 (Linux; Android 13; Redmi Pad SE) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        device_type="tablet",
        device_brand="Xiaomi",
        device_model="Redmi Pad SE",
    ),
    case(
        "lenovo-tab",
        "Mozilla/5.0 (Linux; Android 11; Lenovo TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Safari/537.36",
        device_type="tablet",
        device_brand="Lenovo",
        device_model="Tab P11",
    ),
    # Desktops
    case(
        "windows-chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        device_type="desktop",
        os="Windows",
        os_version="10",
        browser="Chrome",
        browser_version="126.0.0",
        device_brand=None,
        device_model=None,
        in_app=None,
    ),
    case(
        "windows-firefox",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
        device_type="desktop",
        os="Windows",
        browser="Firefox",
        browser_version="127.0",
    ),
    case(
        "windows-edge",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
        device_type="desktop",
        os="Windows",
        browser="Edge",
        browser_version="126.0.2592",
    ),
    case(
        "windows-opera",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
        device_type="desktop",
        browser="Opera",
        browser_version="111.0.0",
    ),
    case(
        "windows-vivaldi",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Vivaldi/6.8.3381.46",
        device_type="desktop",
        browser="Vivaldi",
    ),
    case(
        "windows-yandex",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
        device_type="desktop",
        browser="Yandex Browser",
    ),
    case(
        "windows-7-chrome",
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
        device_type="desktop",
        os="Windows",
        os_version="7",
        browser_version="109.0.0",
    ),
    case(
        "mac-safari",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        device_type="desktop",
        os="macOS",
        os_version="10.15.7",
        browser="Safari",
        browser_version="17.5",
        device_brand="Apple",
        device_model="Mac",
    ),
    case(
        "mac-apple-mail",
        # Apple Mail opens links in its own web view, with no browser token at all.
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        device_type="desktop",
        os="macOS",
        browser="Apple Mail",
    ),
    case(
        "mac-chrome",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        device_type="desktop",
        os="macOS",
        browser="Chrome",
    ),
    case(
        "mac-firefox",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
        device_type="desktop",
        os="macOS",
        os_version="14.5",
        browser="Firefox",
    ),
    case(
        "mac-edge",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        device_type="desktop",
        os="macOS",
        browser="Edge",
    ),
    case(
        "linux-chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        device_type="desktop",
        os="Linux",
        os_version=None,
        browser="Chrome",
    ),
    case(
        "ubuntu-firefox",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        device_type="desktop",
        os="Ubuntu",
        browser="Firefox",
    ),
    case(
        "chromebook",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        device_type="desktop",
        os="Chrome OS",
        browser="Chrome",
    ),
    # TVs, consoles, wearables: ua-parser calls most of them phones, PCs or nothing.
    case(
        "samsung-tizen-tv",
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
        device_type="tv",
        os="Tizen",
        device_brand="Samsung",
    ),
    case(
        "lg-webos-tv",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36 WebAppManager",
        device_type="tv",
        device_brand="LG",
    ),
    case(
        "fire-tv-stick",
        f"Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7624.3337N; wv) {ANDROID_WV}",
        device_type="tv",
        os="Android",
        device_model="Nebula Soundbar",
    ),
    case(
        "sony-bravia-android-tv",
        f"Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2 Build/STT1.211025.001.Z4; wv) {ANDROID_WV}",
        device_type="tv",
        device_model="Bravia 4K VH2",
    ),
    case(
        "nvidia-shield",
        f"Mozilla/5.0 (Linux; Android 9; SHIELD Android TV Build/PPR1.180610.011; wv) {ANDROID_WV}",
        device_type="tv",
    ),
    case(
        "chromecast-google-tv",
        "Mozilla/5.0 (Linux; Android 12; Chromecast) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
        device_type="tv",
    ),
    case(
        "chromecast-crkey",
        "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36 CrKey/1.56.500000 DeviceType/AndroidTV",
        device_type="tv",
        device_brand="Google",
    ),
    case("roku", "Roku/DVP-12.5 (12.5.0.4178-AE)", device_type="tv", os="Roku"),
    case(
        "playstation-5",
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
        device_type="console",
        os=None,
        device_brand="Sony",
        device_model="PlayStation 5",
    ),
    case(
        "playstation-4",
        # ua-parser names a bare AppleWebKit UA "Apple Mail": not on a console.
        "Mozilla/5.0 (PlayStation 4 11.00) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        device_type="console",
        browser=None,
        browser_version=None,
        device_brand="Sony",
        device_model="PlayStation 4",
    ),
    case(
        "xbox-one",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edge/44.18363.8131",
        device_type="console",
        device_brand="Microsoft",
        device_model="Xbox One",
    ),
    case(
        "nintendo-switch",
        "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
        device_type="console",
        device_brand="Nintendo",
        device_model="Switch",
    ),
    case(
        "apple-watch",
        "Mozilla/5.0 (Apple Watch; CPU WatchOS 10_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/10.0 Mobile/21T576 Safari/605.1",
        device_type="wearable",
        device_brand="Apple",
        device_model="Watch",
    ),
    case(
        "galaxy-watch",
        f"Mozilla/5.0 (Linux; Android 11; SM-R890 Build/RP1A.200720.012; wv) {ANDROID_WV}",
        device_type="mobile",
        device_brand="Samsung",
        device_model="SM-R890",
    ),
    case(
        "pixel-watch",
        f"Mozilla/5.0 (Linux; Android 14; Pixel Watch 2 Build/UWD1.231125.004; wv) {ANDROID_WV}",
        device_type="mobile",
        device_brand="Google",
        device_model="Pixel Watch 2",
    ),
    # In-app browsers
    case(
        "instagram-ios",
        f"{IPHONE} Instagram 337.0.3.23.54 (iPhone14,5; iOS 17_5_1; en_US; en; scale=3.00; 1170x2532; 614390436; IABMV/1)",
        device_type="mobile",
        os="iOS",
        browser="Instagram",
        device_brand="Apple",
        device_model="iPhone 13",
        in_app="instagram",
    ),
    case(
        "instagram-android",
        f"Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) {ANDROID_WV} Instagram 337.0.0.35.102 Android (34/14; 480dpi; 1080x2340; samsung; SM-S911B; dm1q; qcom; en_US; 614126543)",
        device_type="mobile",
        os="Android",
        device_brand="Samsung",
        device_model="Galaxy S23",
        in_app="instagram",
    ),
    case(
        "facebook-ios",
        f"{IPHONE} [FBAN/FBIOS;FBAV/470.0.0.39.106;FBBV/613587297;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/615372463]",
        device_type="mobile",
        browser="Facebook",
        device_model="iPhone 14 Pro",
        in_app="facebook",
    ),
    case(
        "facebook-android",
        f"Mozilla/5.0 (Linux; Android 13; 22101316G Build/TP1A.220624.014; wv) {ANDROID_WV} [FB_IAB/FB4A;FBAV/470.0.0.43.108;]",
        device_type="mobile",
        browser="Facebook",
        device_brand="Xiaomi",
        in_app="facebook",
    ),
    case(
        "messenger-ios",
        f"{IPHONE} LightSpeed [FBAN/MessengerLiteForiOS;FBAV/466.0.0.40.107;FBBV/613080425;FBDV/iPhone13,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/0]",
        device_type="mobile",
        in_app="messenger",
    ),
    case(
        "tiktok-ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_34.6.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US ByteFullLocale/en RevealType/Dialog isDarkMode/0 WKWebView/1 BytedanceWebview/d8a21c6 FalconTag/",
        device_type="mobile",
        os_version="17.4.1",
        browser="TikTok",
        in_app="tiktok",
    ),
    case(
        "tiktok-android",
        f"Mozilla/5.0 (Linux; Android 14; SM-A556E Build/UP1A.231005.007; wv) {ANDROID_WV} musical_ly_2023508030 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/35.8.3 ByteLocale/en ByteFullLocale/en Region/US AppId/1233 Spark/1.5.9.1 AppVersion/35.8.3 BytedanceWebview/d8a21c6",
        device_type="mobile",
        device_brand="Samsung",
        in_app="tiktok",
    ),
    case(
        "tiktok-asia-android",
        f"Mozilla/5.0 (Linux; Android 12; V2120 Build/SP1A.210812.003; wv) {ANDROID_WV} trill_350103 JsSdk/1.0 NetType/MOBILE Channel/googleplay AppName/trill app_version/35.1.3 ByteLocale/en ByteFullLocale/en Region/ID Spark/1.5.8.3-bugfix AppVersion/35.1.3 BytedanceWebview/d8a21c6",
        device_type="mobile",
        device_brand="Vivo",
        device_model="Y15s",
        in_app="tiktok",
    ),
    case(
        "line-ios",
        f"{IPHONE} Safari Line/14.9.0",
        device_type="mobile",
        browser="LINE",
        in_app="line",
    ),
    case(
        "line-android",
        f"Mozilla/5.0 (Linux; Android 13; SM-A546E Build/TP1A.220624.014; wv) {ANDROID_WV} Line/14.10.0/IAB",
        device_type="mobile",
        in_app="line",
    ),
    case(
        "linkedin-ios",
        f"{IPHONE} [LinkedInApp]/9.29.8963",
        device_type="mobile",
        os="iOS",
        in_app="linkedin",
    ),
    case(
        "linkedin-android",
        f"Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP1A.240505.005; wv) {ANDROID_WV} [LinkedInApp]/4.1.939",
        device_type="mobile",
        device_brand="Google",
        device_model="Pixel 7",
        in_app="linkedin",
    ),
    case(
        "snapchat-ios",
        f"{IPHONE} Snapchat/13.0.0.41 (like Safari/8618.2.12.10.5, panda)",
        device_type="mobile",
        browser="Snapchat",
        in_app="snapchat",
    ),
    case("pinterest-ios", f"{IPHONE} [Pinterest/iOS]", device_type="mobile", in_app="pinterest"),
    case(
        "pinterest-android",
        f"Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) {ANDROID_WV} [Pinterest/Android]",
        device_type="mobile",
        in_app="pinterest",
    ),
    case(
        "wechat-ios",
        f"{IPHONE} MicroMessenger/8.0.49(0x18003133) NetType/WIFI Language/zh_CN",
        device_type="mobile",
        browser="WeChat Browser",
        in_app="wechat",
    ),
    case(
        "wechat-android",
        "Mozilla/5.0 (Linux; Android 13; V2219 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160117 MMWEBSDK/20240404 MMWEBID/6311 MicroMessenger/8.0.49.2600(0x2800313B) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
        device_type="mobile",
        device_brand="Vivo",
        in_app="wechat",
    ),
    case(
        "twitter-ios",
        f"{IPHONE} Twitter for iPhone/10.48",
        device_type="mobile",
        browser="Twitter",
        in_app="twitter",
    ),
    case(
        "twitter-android",
        "Mozilla/5.0 (Linux; Android 14; Pixel 6 Build/AP1A.240505.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.164 Mobile Safari/537.36 TwitterAndroid",
        device_type="mobile",
        in_app="twitter",
    ),
    case(
        "threads-ios",
        f"{IPHONE} Barcelona 337.0.3.23.54 (iPhone15,3; iOS 17_5; en_US; en; scale=3.00; 1290x2796; 614390436)",
        device_type="mobile",
        in_app="threads",
    ),
    case(
        "threads-android",
        f"Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) {ANDROID_WV} Barcelona 337.0.0.29.109 Android (34/14; 450dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; en_US; 613869393)",
        device_type="mobile",
        device_model="Galaxy S23 Ultra",
        in_app="threads",
    ),
    case(
        "telegram-android",
        f"Mozilla/5.0 (Linux; Android 13; SM-A135F Build/TP1A.220624.014; wv) {ANDROID_WV} Telegram-Android/10.14.5 (Samsung SM-A135F; Android 13; SDK 33; AVERAGE)",
        device_type="mobile",
        browser="Telegram",
        in_app="telegram",
    ),
    case(
        "whatsapp-android-browser",
        f"Mozilla/5.0 (Linux; Android 12; M2101K6G Build/SKQ1.210908.001; wv) {ANDROID_WV} WhatsApp/2.24.13.80",
        device_type="mobile",
        device_brand="Xiaomi",
        in_app="whatsapp",
    ),
    case("kakaotalk-ios", f"{IPHONE} KAKAOTALK 10.8.5", device_type="mobile", in_app="kakaotalk"),
    case(
        "google-app-ios",
        f"{IPHONE} GSA/323.0.647062479 Mobile/15E148 Safari/604.1",
        device_type="mobile",
        browser="Google",
        in_app="google",
    ),
    # Bots: device_type "bot", and no device or in-app browser read from their disguise.
    case(
        "googlebot-smartphone",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        device_type="bot",
        browser="Googlebot",
        device_brand=None,
        device_model=None,
    ),
    case(
        "facebookexternalhit",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        device_type="bot",
        in_app=None,
    ),
    case("whatsapp-preview", "WhatsApp/2.23.20.0", device_type="bot", in_app=None),
    case(
        "redditbot-as-mac-firefox",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.11; rv:49.0) Gecko/20100101 Firefox/49.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
        device_type="bot",
        device_brand=None,
        device_model=None,
    ),
    case("curl", "curl/8.5.0", device_type="bot"),
    case("empty", "", device_type="bot", os=None, browser=None, device_brand=None, in_app=None),
]


@pytest.mark.parametrize(("ua", "expected"), CASES)
def test_parse_user_agent(ua: str, expected: dict[str, Any]) -> None:
    info = parse_user_agent(ua)
    assert {field: getattr(info, field) for field in expected} == expected


def test_there_are_enough_real_user_agents() -> None:
    assert len(CASES) >= 60


def test_an_8_kb_user_agent_is_cut_before_parsing() -> None:
    head = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36"
    info = parse_user_agent(head + " " + "x" * 8192)
    assert info.device_type == "mobile"
    assert info.device_model == "Pixel 8 Pro"


def test_result_is_frozen() -> None:
    info = parse_user_agent("curl/8.5.0")
    assert isinstance(info, UserAgentInfo)
    with pytest.raises(AttributeError):
        info.os = "Linux"  # type: ignore[misc]


def test_the_redirects_reading_agrees_with_ua_parsers() -> None:
    """A link's rules, in the redirect, read device type and OS without the crawler lists
    and maker tables: on real browsers' User-Agents they read what `_quick` reads (from
    which the writer starts), and these cases' expected fields."""
    browsers = [entry["useragent"] for entry in UserAgent().data_browsers][:2000]
    for ua in [*browsers, *(param.values[0] for param in CASES)]:
        quick = _quick(ua[:MAX_UA_LENGTH])
        if quick.device_type != "bot":
            assert device_and_os(ua) == (quick.device_type, quick.os), ua
    assert device_and_os("facebookexternalhit/1.1") == ("bot", None)
