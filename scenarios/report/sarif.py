"""results.sarif (SARIF 2.1.0): one result per distinct sanitizer signature, for code scanning.

Each result is located at the signature's top frame of the first stack; both stacks are its code
flow (one thread flow each); ``partialFingerprints`` holds the signature, so the same race found
again is the same alert. Files inside the Mbed TLS tree are relative to it (``uriBaseId``
MBEDTLS_ROOT), the harness's files relative to this repository (PSA_STRESS_ROOT); anything else
(system headers) keeps its absolute path.
"""
import json
import os

from scenarios.campaign.signatures import Frame, Stack, top_frame
from scenarios.setup.source import REPO

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT = "psaStressSignature/v1"


def render(data):
    tree = data["mbedtls"]["path"]
    results, rules = [], {}
    for failure in data["failures"]:
        if failure["kind"] not in ("tsan", "asan") or not failure["stacks"]:
            continue
        rule = _rule_id(failure)
        rules.setdefault(rule, {"id": rule, "name": rule.split("/")[1],
                                "shortDescription": {"text": f"{failure['kind'].upper()}: "
                                                     f"{rule.split('/')[1].replace('-', ' ')}"}})
        results.append(_result(failure, rule, tree))
    run = {"tool": {"driver": {"name": "psa-stress", "rules": list(rules.values()),
                               "informationUri": "https://github.com/Mbed-TLS/mbedtls"}},
           "originalUriBaseIds": {
               "MBEDTLS_ROOT": {"uri": _directory_uri(tree)},
               "PSA_STRESS_ROOT": {"uri": _directory_uri(REPO)}},
           "results": results}
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def _rule_id(failure):
    kind = failure["signature"].split(":", 1)[0].split(" ", 1)[1]
    return f"{failure['kind']}/{kind.replace(' ', '-')}"


def _result(failure, rule, tree):
    stacks = [_stack(stack) for stack in failure["stacks"]]
    flows = [{"message": {"text": stack.title or "stack"},
              "locations": [{"location": _location(frame, tree, frame.function),
                             "nestingLevel": 0, "executionOrder": order}
                            for order, frame in enumerate(stack.frames)]}
             for stack in stacks]
    state = "known" if failure["known"] else "new"
    return {"ruleId": rule, "level": "note" if failure["known"] else "error",
            "message": {"text": f"{failure['signature']} ({state}; seen {failure['count']} "
                                f"times; repro: {failure['repro']})"},
            "locations": [_location(top_frame(stacks[0]), tree, None)],
            "partialFingerprints": {FINGERPRINT: failure["signature"]},
            "codeFlows": [{"threadFlows": flows}],
            "properties": {"id": failure["id"], "count": failure["count"],
                           "known": failure["known"], "repro": failure["repro"],
                           "foundBy": failure["found_by"]}}


def _stack(data):
    return Stack(data["title"], [Frame(f["function"], f["file"], f["line"], f["column"])
                                 for f in data["frames"]])


def _location(frame, tree, message):
    physical = {"artifactLocation": _artifact(frame.file, tree)}
    if frame.line:
        physical["region"] = {"startLine": frame.line, "startColumn": frame.column or 1}
    location = {"physicalLocation": physical,
                "logicalLocations": [{"name": frame.function, "kind": "function"}]}
    if message:
        location["message"] = {"text": message}
    return location


def _artifact(path, tree):
    for base_id, base in (("MBEDTLS_ROOT", tree), ("PSA_STRESS_ROOT", REPO)):
        if path and os.path.commonpath([os.path.abspath(path), base]) == base:
            return {"uri": os.path.relpath(path, base), "uriBaseId": base_id}
    return {"uri": f"file://{path}" if path.startswith("/") else (path or "unknown")}


def _directory_uri(path):
    return "file://" + path.rstrip("/") + "/"
