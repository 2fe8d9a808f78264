"""junit.xml: one test case per scenario x seed (the run id, shard-aware), one test suite per
shard; a failing run carries each failure's signature and repro command. A failure whose
signature is known (known-signatures.txt) is reported as skipped, with the reason."""
import xml.etree.ElementTree as ET


def render(data):
    by_signature = {failure["signature"]: failure for failure in data["failures"]}
    root = ET.Element("testsuites", name="psa-stress", tests=str(len(data["runs"])),
                      failures=str(sum(_failed(run, by_signature) for run in data["runs"])),
                      time=str(data["elapsed_seconds"]))
    for shard, runs in _by_shard(data["runs"]).items():
        suite = ET.SubElement(root, "testsuite", name=f"psa-stress{shard}", tests=str(len(runs)),
                              failures=str(sum(_failed(run, by_signature) for run in runs)),
                              errors="0", skipped=str(sum(_skipped(run, by_signature)
                                                          for run in runs)),
                              time=str(round(sum(run["seconds"] for run in runs), 1)),
                              timestamp=data["created"])
        for run in runs:
            _testcase(suite, run, by_signature)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _by_shard(runs):
    groups = {}
    for run in runs:
        shard = run.get("shard")
        name = f".shard{shard['index']}of{shard['count']}" if shard else ""
        groups.setdefault(name, []).append(run)
    return groups


def _failed(run, by_signature):
    return any(not by_signature[f["signature"]]["known"] for f in run["failures"])


def _skipped(run, by_signature):
    return bool(run["failures"]) and not _failed(run, by_signature)


def _testcase(suite, run, by_signature):
    case = ET.SubElement(suite, "testcase", classname=f"psa-stress.{run['scenario']}",
                         name=run["id"], time=str(run["seconds"]))
    failures = [by_signature[f["signature"]] for f in run["failures"]]
    new = [failure for failure in failures if not failure["known"]]
    if new:
        first = new[0]
        element = ET.SubElement(case, "failure", type=first["kind"],
                                message=f"{first['id']}: {first['signature']}")
        element.text = "\n\n".join(_describe(failure) for failure in new)
    elif failures:
        ET.SubElement(case, "skipped", message="known failure: " +
                      "; ".join(f"{f['id']} {f['signature']}" for f in failures))
    ET.SubElement(case, "system-out").text = (f"{run['ops']} calls, {run['ops_per_sec']} "
                                              f"calls/s, seed {run['seed']}")


def _describe(failure):
    return (f"signature {failure['id']}: {failure['signature']}\n{failure['message']}\n"
            f"repro: {failure['repro']}")
