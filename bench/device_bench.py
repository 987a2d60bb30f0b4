"""Device truth: how the writer's device fields agree with the reference device database's
own published fixtures, what a never-seen User-Agent costs, and what a flood of random
ones does to memory.

    .venv/bin/python -m bench.device_bench                 # 1,500 fixtures, 100,000 random UAs
    .venv/bin/python -m bench.device_bench --sample 100 --flood 2000   # a quick check

Agreement is measured through `Enricher.device`, the function the click writer calls,
with the fixture's client hints when it has them. Fixtures come from the `device-detector`
package (Matomo's Device Detector test fixtures): a fixed random sample of the device
files; every bot fixture; every instance of the crawler-user-agents list; and the browsers
of fake-useragent, which must not be taken for bots. The baseline for cost is the package
itself (no index), on the same never-seen User-Agents, in the same run.
"""

import argparse
import glob
import json
import os
import random
import statistics
import time
from typing import Any

import yaml
from crawleruseragents import CRAWLER_USER_AGENTS_DATA
from device_detector import DeviceDetector, yaml_loader

from app.clicks.enrich.enricher import DEVICE_BUDGET_S_PER_CLICK, Enricher
from app.config import Settings

FIXTURES = os.path.join(os.path.dirname(yaml_loader.__file__), "tests", "fixtures", "upstream")
TYPES = {"smartphone": "mobile", "phablet": "mobile", "feature phone": "mobile"}
COUNTED_TYPES = {"mobile", "tablet", "desktop", "tv", "console", "wearable"}
TARGETS = {"brand": 0.95, "model": 0.90, "type": 0.95, "bots (reference)": 0.97}
TARGETS |= {"bots (crawler-user-agents)": 0.97}


def load(path: str) -> list[dict[str, Any]]:
    with open(path) as file:
        return yaml.load(file, Loader=yaml.CSafeLoader) or []


def hints_of(case: dict[str, Any]) -> str:
    return "\n".join(f"{k.lower()}: {v}" for k, v in (case.get("headers") or {}).items())


def agreement(enricher: Enricher, cases: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    agree = {"brand": 0, "model": 0, "type": 0}
    counted = {"brand": 0, "model": 0, "type": 0}
    for case in cases:
        enricher.start_batch(1000)  # each case on its own: no budget cut
        got = enricher.device(case["user_agent"], hints_of(case))
        device = case.get("device") or {}
        expected_type = TYPES.get(device.get("type"), device.get("type"))
        if expected_type in COUNTED_TYPES:
            counted["type"] += 1
            agree["type"] += got["device_type"] == expected_type
        for field in ("brand", "model"):
            if device.get(field):
                counted[field] += 1
                agree[field] += got[f"device_{field}"] == str(device[field])
    return {field: (agree[field], counted[field]) for field in agree}


def bots_found(enricher: Enricher, uas: list[str]) -> tuple[int, int]:
    found = 0
    for ua in uas:
        enricher.start_batch(1000)  # each on its own: no budget cut
        found += bool(enricher.device(ua)["is_bot"])
    return found, len(uas)


def human_browsers(limit: int) -> list[str]:
    """fake-useragent's browser strings (real browsers seen in the field)."""
    import fake_useragent

    data = os.path.join(os.path.dirname(fake_useragent.__file__), "data", "browsers.jsonl")
    with open(data) as file:
        return [json.loads(line)["useragent"] for line in file][:limit]


def cost(uas: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Seconds per never-seen User-Agent: the writer's device fields (reference indexed),
    and the package alone without the index, on the same strings."""
    times: dict[str, list[float]] = {"indexed (Enricher.device)": [], "package, no index": []}
    enricher = Enricher(Settings())
    indexed = yaml_loader.RegexLoader.regex_list
    plain = property(lambda parser: yaml_loader.regex_list(parser.fixture_files))
    for ua, hints in uas:
        enricher.start_batch(1000)
        started = time.perf_counter()
        enricher.device(ua, hints)
        times["indexed (Enricher.device)"].append(time.perf_counter() - started)
        yaml_loader.RegexLoader.regex_list = plain  # type: ignore[method-assign,assignment]
        started = time.perf_counter()
        headers = dict(line.split(": ", 1) for line in hints.splitlines()) or None
        DeviceDetector(ua, headers=headers, check_cache=False).parse()
        times["package, no index"].append(time.perf_counter() - started)
        yaml_loader.RegexLoader.regex_list = indexed  # type: ignore[method-assign]
    return times


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def flood(count: int, r: random.Random) -> tuple[float, float, int, float]:
    """RSS before and after `count` distinct random 1 KB User-Agents through the writer's
    device memo, in batches of 1,000; fallbacks; writer seconds per 1,000 clicks."""
    enricher = Enricher(Settings())
    enricher.device("warm-up")
    before = rss_mb()
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ;/()._-"
    started = time.perf_counter()
    for n in range(count):
        if n % 1000 == 0:
            enricher.start_batch(1000)
        head = f"Mozilla/5.0 (Linux; Android 14; {r.choice(['SM-A546E', 'CPH2581', 'V2207'])}) "
        enricher.device(head + "".join(r.choices(alphabet, k=1024 - len(head))))
    per_batch = (time.perf_counter() - started) / max(count / 1000, 1)
    return before, rss_mb(), enricher.device_fallbacks, per_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=1500, help="device fixtures sampled")
    parser.add_argument("--flood", type=int, default=100_000, help="random 1 KB User-Agents")
    parser.add_argument("--humans", type=int, default=10_000, help="fake-useragent browsers")
    parser.add_argument("--warm", type=int, default=5000, help="fixtures parsed before timing")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    r = random.Random(args.seed)

    devices = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.yml"))):
        if not path.endswith("bots.yml"):
            devices += load(path)
    sample = r.sample(devices, min(args.sample, len(devices)))
    enricher = Enricher(Settings())
    print(
        f"Agreement with the reference ({len(sample):,} of {len(devices):,} device fixtures, seed {args.seed}):"
    )
    rows = agreement(enricher, sample)
    bot_uas = [case["user_agent"] for case in load(os.path.join(FIXTURES, "bots.yml"))]
    rows["bots (reference)"] = bots_found(enricher, bot_uas)
    instances = [ua for entry in CRAWLER_USER_AGENTS_DATA for ua in entry.get("instances", [])]
    rows["bots (crawler-user-agents)"] = bots_found(enricher, instances)
    humans = human_browsers(args.humans)
    taken, total = bots_found(enricher, humans)
    for field, (agree, counted) in rows.items():
        share = agree / max(counted, 1)
        verdict = "PASS" if share >= TARGETS[field] else "FAIL"
        print(
            f"  {field:28} {share:.3f} ({agree:,}/{counted:,})  target >= {TARGETS[field]}  {verdict}"
        )
    share = taken / max(total, 1)
    print(
        f"  {'humans taken for bots':28} {share:.4f} ({taken:,}/{total:,})  target <= 0.005  {'PASS' if share <= 0.005 else 'FAIL'}"
    )

    # The package compiles each regex at its first use: a process warms up over its first
    # few thousand User-Agents. Measured warm, as a writer runs for days.
    seen = {case["user_agent"] for case in sample}
    rest = [case for case in devices if case["user_agent"] not in seen]
    r.shuffle(rest)
    warm, fresh = rest[: args.warm], rest[args.warm : args.warm + args.sample]
    warming = Enricher(Settings())
    for case in warm:
        warming.start_batch(1000)
        warming.device(case["user_agent"], hints_of(case))
    unseen = [(case["user_agent"], hints_of(case)) for case in fresh]
    print(
        f"\nCost per never-seen User-Agent ({len(unseen):,}, after {len(warm):,} others "
        "warmed the regexes):"
    )
    times = cost(unseen)
    for name, values in times.items():
        values.sort()
        p99 = values[int(len(values) * 0.99)] if values else 0.0
        print(f"  {name:28} mean {statistics.mean(values) * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms")
    ratio = statistics.mean(times["package, no index"]) / statistics.mean(
        times["indexed (Enricher.device)"]
    )
    print(
        f"  the index makes a new User-Agent {ratio:.1f}x cheaper (target: mean <= 0.2 ms, p99 <= 2 ms)"
    )

    before, after, fallbacks, per_batch = flood(args.flood, r)
    print(
        f"\nA flood of {args.flood:,} distinct random 1 KB User-Agents (batches of 1,000, device budget {DEVICE_BUDGET_S_PER_CLICK * 1000 * 1000:.0f} ms/batch):"
    )
    print(
        f"  RSS {before:.0f} MB -> {after:.0f} MB; {fallbacks:,} quick answers (tautan_device_fallbacks_total); {per_batch * 1000:.0f} ms of device work per batch"
    )


if __name__ == "__main__":
    main()
