"""Self-tests of report.py's aggregation and done-when verdicts (no calls; matplotlib not needed).

Run: python3 -m unittest bench/quality/test_report.py (or discover -s bench/quality).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402


def row(path, profile, side, mos, delay, run=1, **kw):
    s = {"mos_median": mos, "delay_ms_p50": delay, "dropouts_per_min": kw.pop("drops", 0.0),
         "delay_track_ms": kw.pop("track", [delay])}
    if "recovery" in kw:
        r = kw.pop("recovery")
        s.update({"recovered": r is not None, "recovery_ms": r})
    rec = kw.pop("receiver", {"played_ms": 60000, "underruns": 0, "fec": 0, "concealed_ms": 0})
    return {"path": path, "profile": profile, "run": run, "side": side, "ok": True, "score": s, "receiver": rec, **kw}


class Aggregate(unittest.TestCase):
    def test_median_and_worst_of_runs(self):
        rows = [row("wt-wt", "loss3", "sender", m, 80, run=i) for i, m in enumerate([3.0, 3.6, 3.3])]
        agg, _ = report.aggregate(rows)
        c = agg[("loss3", "wt-wt", "sender")]
        self.assertEqual(c["runs"], 3)
        self.assertAlmostEqual(c["mos_median"], 3.3)
        self.assertAlmostEqual(c["mos_worst"], 3.0)

    def test_delay_percentiles_pool_the_tracks(self):
        rows = [row("moq-moq", "clean", "sender", 4, 0, track=list(range(0, 50))),
                row("moq-moq", "clean", "sender", 4, 0, run=2, track=list(range(50, 101)))]
        c = report.aggregate(rows)[0][("clean", "moq-moq", "sender")]
        self.assertAlmostEqual(c["m2e_p50"], 50.0)
        self.assertAlmostEqual(c["m2e_p95"], 95.0)

    def test_counters_per_minute(self):
        rec = {"played_ms": 30000, "underruns": 2, "fec": 10, "concealed_ms": 600}
        c = report.aggregate([row("moq-moq", "loss3", "listener", 3, 70, receiver=rec)])[0][("loss3", "moq-moq", "listener")]
        self.assertAlmostEqual(c["underruns_min"], 4.0)
        self.assertAlmostEqual(c["fec_min"], 20.0)
        self.assertAlmostEqual(c["concealed_s_min"], 1.2)

    def test_failures_are_kept_with_their_reason(self):
        rows = [{"path": "ref-rtc", "profile": "clean", "run": 1, "ok": False, "error": "the call: timed out after 75 s"}]
        agg, failures = report.aggregate(rows)
        self.assertEqual(agg, {})
        self.assertEqual(failures[("clean", "ref-rtc")], ["the call: timed out after 75 s"])
        md = report.markdown(rows, {"options": {"profiles": ["clean"]}}, agg, failures, [])
        self.assertIn("timed out after 75 s", md)

    def test_failure_reasons_fit_a_cell(self):
        self.assertEqual(report.reason("page.click: \x1b[2m- waiting\x1b[22m\n for | x"), "page.click: - waiting for / x")
        self.assertEqual(len(report.reason("x" * 500)), 300)

    def test_recovery_never_if_one_run_did_not_recover(self):
        rows = [row("wt-wt", "outage2s", "sender", 2, 80, recovery=120.0),
                row("wt-wt", "outage2s", "sender", 2, 80, run=2, recovery=None)]
        self.assertEqual(report.aggregate(rows)[0][("outage2s", "wt-wt", "sender")]["recovery_ms"], "never")


class Verdicts(unittest.TestCase):
    def checks(self, rows, profile):
        agg, _ = report.aggregate(rows)
        return {(p, path, side, name): v for p, path, side, name, _, _, v in report.verdicts(agg, [profile])}

    def test_ours_against_the_reference(self):
        rows = [row("wt-wt", "loss5", "sender", 3.5, 90), row("ref-rtc", "loss5", "sender", 3.2, 120)]
        v = self.checks(rows, "loss5")
        self.assertEqual(v[("loss5", "wt-wt", "sender", "MOS ≥ ref")], "pass")
        self.assertEqual(v[("loss5", "wt-wt", "sender", "m2e p50 < ref")], "pass")
        rows = [row("wt-wt", "loss5", "sender", 3.0, 130), row("ref-rtc", "loss5", "sender", 3.2, 120)]
        v = self.checks(rows, "loss5")
        self.assertEqual(v[("loss5", "wt-wt", "sender", "MOS ≥ ref")], "FAIL")
        self.assertEqual(v[("loss5", "wt-wt", "sender", "m2e p50 < ref")], "FAIL")

    def test_no_reference_is_not_measurable(self):
        v = self.checks([row("moq-moq", "loss5", "listener", 3.5, 90)], "loss5")
        self.assertEqual(v[("loss5", "moq-moq", "listener", "MOS ≥ ref")], "n/a")

    def test_absolute_checks(self):
        self.assertEqual(self.checks([row("wt-wt", "clean", "sender", 3.9, 80)], "clean")[("clean", "wt-wt", "sender", "MOS ≥ 4.0")], "FAIL")
        rec = {"played_ms": 60000, "underruns": 1, "fec": 0, "concealed_ms": 0}
        v = self.checks([row("moq-moq", "loss2-jitter20", "sender", 3, 80, receiver=rec)], "loss2-jitter20")
        self.assertEqual(v[("loss2-jitter20", "moq-moq", "sender", "underruns ≤ 1/min")], "pass")
        rows = [row("wt-wt", "outage2s", "sender", 2, 80, recovery=250.0), row("ref-rtc", "outage2s", "sender", 2, 80, recovery=200.0)]
        v = self.checks(rows, "outage2s")
        self.assertEqual(v[("outage2s", "wt-wt", "sender", "recovery ≤ 300 ms")], "pass")
        self.assertEqual(v[("outage2s", "wt-wt", "sender", "recovery ≤ ref")], "FAIL")


if __name__ == "__main__":
    unittest.main()
