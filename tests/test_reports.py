"""Reports from real runs: the TSan canary (a real race report) and a hand-made violation history
(a real checker verdict) go through signatures, deduplication and every report file.

Known-bad inputs: the canary must yield exactly one sanitizer signature; a report with another
function in a stack must get another signature; a report of another format version is refused.
"""
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from scenarios import catalog, report
from scenarios.checker import check
from scenarios.campaign import signatures
from scenarios.campaign.job import Job
from scenarios.report import summary
from scenarios.campaign.runner import Failure, RunResult
from scenarios.setup.source import SetupError
from tests.stress_env import REPO, stock_build, stock_tree

CANARY_SIGNATURE = "tsan data race: canary_main | canary_main"
VIOLATION_HISTORY = os.path.join(REPO, "tests", "histories", "violation_double_destroy.jsonl")


def canary_run(directory, seed=3):
    """A real run of the test driver with its racy canary; only its sanitizer findings are kept
    (these tests are about the race report, whatever else the run found)."""
    job = Job(catalog.get("volatile-churn"), seed, ops=200, canary=True).replace(threads=2)
    data = summary.run_json(job.run(stock_build("tsan"), str(directory)))
    data["failures"] = [f for f in data["failures"] if f["kind"] == "tsan"]
    data["check"] = None
    return data


def violation_run(directory):
    """A run whose history is the hand-made double-destroy violation."""
    verdict = check.check_file(VIOLATION_HISTORY)
    result = RunResult("volatile-churn", 77, "tsan", str(directory), ops=verdict.calls,
                       seconds=0.1, ops_per_sec=30, check=verdict.to_json())
    result.failures.append(Failure("violation", "double destroy", check.format_text(verdict)))
    result.params = Job(catalog.get("volatile-churn"), 77, ops=3).to_json()
    return summary.run_json(result)


def build(runs, known=frozenset(), shard=None):
    tree = stock_tree()
    meta = {"command": "test", "variant": "tsan", "budget_seconds": 1, "elapsed_seconds": 1.0,
            "mbedtls": {"path": tree.path, "version": tree.version, "origin": tree.origin,
                        "fingerprint": "0" * 16},
            "shards": [shard] if shard else []}
    return summary.build(meta, runs, {}, known)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return [canary_run(base / "canary1"), canary_run(base / "canary2", seed=4),
            violation_run(base / "violation")]


@pytest.fixture(scope="module")
def written(runs, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("report"))
    data = build(runs)
    report.write(directory, data)
    return directory, data


def test_canary_report_has_its_signature_and_two_stacks(runs):
    failure = runs[0]["failures"][0]
    assert failure["signature"] == CANARY_SIGNATURE
    stacks = signatures.access_stacks(failure["details"])
    assert len(stacks) == 2
    assert all(stack.frames[0].file.endswith("harness/driver/canary.c") for stack in stacks)


def test_signature_ignores_addresses_threads_and_lines_but_not_functions(runs):
    text = runs[0]["failures"][0]["details"]
    noisy = re.sub(r"T\d+", "T9", re.sub(r"0x[0-9a-f]+", "0x1234", text))
    noisy = re.sub(r"canary\.c:\d+", "canary.c:99", noisy)
    assert signatures.sanitizer_signature("data race", noisy) == \
        signatures.sanitizer_signature("data race", text)
    other = text.replace("#0 canary_main", "#0 psa_destroy_key", 1)
    assert signatures.sanitizer_signature("data race", other) != \
        signatures.sanitizer_signature("data race", text)


def test_two_identical_reports_are_one_signature_counted_twice(runs):
    entries = signatures.deduplicate(runs[:2])
    assert len(entries) == 1
    entry = entries[0].to_json()
    assert entry["count"] == 2 and entry["signature"] == CANARY_SIGNATURE
    assert entry["found_by"]["seed"] == 3 and entry["first_seen"] <= entry["last_seen"]
    assert len(entry["stacks"]) == 2


def test_known_signatures_mark_failures_known_and_the_run_clean(runs, tmp_path):
    known_file = tmp_path / "known-signatures.txt"
    known_file.write_text(f"# accepted\n{signatures.signature_id(CANARY_SIGNATURE)}  # canary\n")
    data = build(runs[:2], signatures.load_known(str(known_file)))
    assert data["verdict"] == "clean" and data["counts"]["known"] == 1
    assert build(runs[:2])["verdict"] == "failed"


def test_violation_signature_names_the_root_cause(runs):
    """The blamed call's operation and status and the model rule it breaks: one bug, one id."""
    assert runs[2]["failures"][0]["signature"] == \
        "violation linearizability: destroy -> SUCCESS breaks rule destroy (scenarios/model/key_store.py)"
    older = {"kind": "linearizability", "message": "t1#0 destroy(0x1) -> SUCCESS is impossible",
             "window": [{"text": "t1#0 destroy(0x1) -> SUCCESS", "op": "destroy",
                         "status": "SUCCESS"}]}
    assert signatures.violation_signature(older) == \
        "violation linearizability: destroy -> SUCCESS"


def test_junit_has_one_case_per_run_with_signature_and_repro(written):
    directory, data = written
    root = ET.parse(os.path.join(directory, "junit.xml")).getroot()
    cases = root.findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == [run["id"] for run in data["runs"]]
    failures = root.findall("./testsuite/testcase/failure")
    assert len(failures) == 3 and root.get("failures") == "3"
    assert all("repro: python3 run.py stress" in f.text for f in failures)
    assert signatures.signature_id(CANARY_SIGNATURE) in failures[0].get("message")


def test_sarif_has_one_result_per_sanitizer_signature_with_two_thread_flows(written):
    directory, _data = written
    with open(os.path.join(directory, "results.sarif"), encoding="utf-8") as handle:
        sarif = json.load(handle)
    assert sarif["version"] == "2.1.0" and "$schema" in sarif
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "psa-stress"
    (result,) = run["results"]
    assert result["ruleId"] in {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert result["message"]["text"] and result["partialFingerprints"]
    flows = result["codeFlows"][0]["threadFlows"]
    assert len(flows) == 2
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "harness/driver/canary.c", "uriBaseId": "PSA_STRESS_ROOT"}


def test_sarif_fingerprints_are_stable_across_runs(tmp_path):
    prints = []
    for index in range(2):
        data = build([canary_run(tmp_path / f"run{index}", seed=10 + index)])
        sarif = json.loads(report.sarif.render(data))
        prints.append([r["partialFingerprints"] for r in sarif["runs"][0]["results"]])
    assert prints[0] == prints[1] and len(prints[0]) == 1


def test_html_is_self_contained_with_a_timeline(written):
    directory, _data = written
    with open(os.path.join(directory, "index.html"), encoding="utf-8") as handle:
        page = handle.read()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page
    svg = page[page.index('<svg class="timeline"'):page.index("</svg>")]
    assert svg.count('<rect class="call"') == 3          # the double-destroy window
    assert "blamed" in svg and "thread 1" in svg
    assert "canary_main" in page and "python3 run.py stress" in page


BROWSER_REQUIRED = "PSA_STRESS_REQUIRE_BROWSER"   # set by .ci/run, which installs chromium


def chromium():
    """Debian's chromium; skips without it, except under CI (BROWSER_REQUIRED=1): fails there."""
    path = shutil.which("chromium")
    if path is None and os.environ.get(BROWSER_REQUIRED) == "1":
        pytest.fail(f"{BROWSER_REQUIRED}=1 but Debian's chromium is not installed")
    if path is None:
        pytest.skip("Debian's chromium not installed")
    return path


def test_without_the_browser_ci_fails_and_a_laptop_skips(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setenv(BROWSER_REQUIRED, "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        chromium()
    monkeypatch.delenv(BROWSER_REQUIRED)
    with pytest.raises(pytest.skip.Exception):
        chromium()


def test_a_real_browser_draws_the_timeline(written):
    directory, _data = written
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", "file://" + os.path.join(directory, "index.html")],
                         capture_output=True, text=True, timeout=120).stdout
    assert 'data-timeline-bars="3"' in dom


def test_summary_round_trip_and_version_check(written, tmp_path):
    directory, data = written
    assert summary.load(directory)["failures"] == data["failures"]
    old = dict(data, version=1)
    (tmp_path / "summary.json").write_text(json.dumps(old))
    with pytest.raises(SetupError, match="version 1"):
        summary.load(str(tmp_path))
    with pytest.raises(SetupError, match="not a psa-stress report"):
        summary.load(str(tmp_path / "missing"))


def test_merge_adds_shards_and_deduplicates(runs):
    shard1 = build([dict(runs[0], id="shard1of2/a")], shard={"index": 1, "count": 2})
    shard2 = build([dict(runs[1], id="shard2of2/b")], shard={"index": 2, "count": 2})
    merged = summary.merge([shard1, shard2])
    assert merged["counts"]["runs"] == 2 and len(merged["shards"]) == 2
    assert [f["count"] for f in merged["failures"]] == [2]
    other = dict(shard2, mbedtls=dict(shard2["mbedtls"], fingerprint="f" * 16))
    with pytest.raises(SetupError):
        summary.merge([shard1, other])
