"""Judge a test suite run with sparsecore.accelerate() on (a junit file):
against the same suite run plain (another junit file), every test that
passes plain must pass; against a list of known failures (a text file of
node ids, ``#`` comments), every test not in the list must pass or be
skipped. Prints the counts by outcome and the offending tests; exits 1 if
there are any, or if no product went through sparsecore.

usage: python scipy_suite_compare.py PLAIN.xml|KNOWN_FAILURES ACCEL.xml STATS.json
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


def known_failures(path):
    with open(path) as f:
        return {line.split("#")[0].strip() for line in f} - {""}


def main(baseline, accel_xml, stats_json):
    accel = outcomes(accel_xml)
    if baseline.endswith(".xml"):
        plain = outcomes(baseline)
        runs = (("plain", plain), ("accelerated", accel))
        regressions = sorted(k for k, v in plain.items()
                             if v == "passed" and accel.get(k) != "passed")
    else:
        known = known_failures(baseline)
        runs = (("accelerated", accel),)
        regressions = sorted(k for k, v in accel.items() if v == "failed" and k not in known)
    for label, res in runs:
        counts = Counter(res.values())
        print(f"  {label:12s} passed {counts['passed']:6d}  failed {counts['failed']:4d}  "
              f"skipped/xfailed {counts['skipped']:5d}")
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
