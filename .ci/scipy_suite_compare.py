"""Compare two junit files of one test suite, run plain and with
sparsecore.accelerate() on: print the counts by outcome, list the tests that
pass plain but not accelerated, and exit 1 if there are any or if no product
went through sparsecore.

usage: python scipy_suite_compare.py PLAIN.xml ACCEL.xml STATS.json
"""
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter


def outcomes(path):
    result = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds or "error" in kinds:
            outcome = "failed"
        elif "skipped" in kinds:
            outcome = "skipped"   # skips and xfails
        else:
            outcome = "passed"
        # a test can appear twice (an error in teardown): the worst one counts
        if result.get(key) != "failed":
            result[key] = outcome
    return result


def main(plain_xml, accel_xml, stats_json):
    plain, accel = outcomes(plain_xml), outcomes(accel_xml)
    for label, res in (("plain", plain), ("accelerated", accel)):
        counts = Counter(res.values())
        print(f"  {label:12s} passed {counts['passed']:6d}  failed {counts['failed']:4d}  "
              f"skipped/xfailed {counts['skipped']:5d}")
    regressions = sorted(k for k, v in plain.items()
                         if v == "passed" and accel.get(k) != "passed")
    for key in regressions:
        print(f"  REGRESSION: {key} ({accel.get(key, 'not run')})")
    try:
        with open(stats_json) as f:
            stats = json.load(f)
    except (OSError, ValueError):
        stats = None
    if stats is not None:
        print(f"  products through sparsecore: {stats}")
    through = stats and stats["sparse"] + stats["vector"] + stats["multivector"]
    if not through:
        print("  no product went through sparsecore: the accelerator did not take")
    return 1 if regressions or not through else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
