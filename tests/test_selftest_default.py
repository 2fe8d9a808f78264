"""run.py mutants measures the default job as a user runs it (scenarios/selftest/mutants.py
measure_default_job): a detection is a NEW FAILURE line and exit 1, timed from the build's end;
a run that reports but exits after its budget + 10 s is counted late; stock's row is the false
positive row. The outcomes of run.py are faked here (the real job runs in bench and in
test_oracles_e2e)."""
from scenarios.selftest import mutants


def _fake(monkeypatch, outcomes):
    seen = []

    def default_job(budget, seed, directory, stop_at_first=False):
        seen.append((seed, stop_at_first) if stop_at_first else seed)
        return outcomes[len(seen) - 1]
    monkeypatch.setattr(mutants, "_default_job", default_job)
    monkeypatch.setattr(mutants, "apply", lambda mutant, stock: None)
    return seen


def test_detections_are_timed_and_late_exits_counted(monkeypatch):
    seeds = _fake(monkeypatch, [
        {"exit": 1, "first_failure": 12.5, "wall": 40, "found": [("invariant", "a")]},
        {"exit": 0, "first_failure": None, "wall": 61, "found": []},
        {"exit": 1, "first_failure": 30.0, "wall": 75, "found": [("tsan", "b")]}])
    (mutant,) = mutants.select("unlocked-reserve")
    row = mutants.measure_default_job(mutant, None, 3, 60, "/nonexistent", log=lambda _m: None)
    data = row.to_json()
    assert seeds == [1000, 2000, 3000]
    assert data["detected"] == 2 and data["runs"] == 3 and data["median_seconds"] == 21.2
    assert data["late_seconds"] == [75] and data["oracles"] == {"invariant": 1, "tsan": 1}


def test_a_report_without_exit_1_is_not_a_detection(monkeypatch):
    _fake(monkeypatch, [{"exit": 2, "first_failure": 3.0, "wall": 5, "found": []}])
    row = mutants.measure_default_job(None, None, 1, 60, "/nonexistent", log=lambda _m: None)
    assert row.mutant == "stock" and not row.detected


def test_runs_past_full_runs_stop_at_their_first_report(monkeypatch):
    seeds = _fake(monkeypatch, [
        {"exit": 1, "first_failure": 10.0, "wall": 58, "found": [("tsan", "a")]},
        {"exit": 130, "first_failure": 4.0, "wall": 5, "found": [("tsan", "a")]},
        {"exit": 130, "first_failure": 70.0, "wall": 71, "found": [("tsan", "a")]}])
    (mutant,) = mutants.select("unlocked-reserve")
    row = mutants.measure_default_job(mutant, None, 3, 60, "/nonexistent", log=lambda _m: None,
                                      full_runs=1)
    data = row.to_json()
    assert seeds == [1000, (2000, True), (3000, True)]
    assert data["detected"] == 2 and data["seconds"] == [4.0, 10.0]   # 70 s: past the budget
    assert data["full_runs"] == 1 and data["late_seconds"] == []


def test_stock_runs_only_its_full_runs(monkeypatch):
    seeds = _fake(monkeypatch, [{"exit": 0, "first_failure": None, "wall": 60, "found": []}] * 2)
    row = mutants.measure_default_job(None, None, 10, 60, "/nonexistent", log=lambda _m: None,
                                      full_runs=2)
    assert seeds == [1000, 2000] and row.runs == 2 and not row.detected
