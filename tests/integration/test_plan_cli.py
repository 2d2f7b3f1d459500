"""`ladder plan` end to end: every output format, --bench with a sample
report, the USL fit and the M/M/c sizing subcommands, --help, and exit code 2
with a message naming the field for bad inputs.

Pure computation: no server, no network. The binary is $LADDER_BIN.
"""

import json
import math
import os
import re
import subprocess
from pathlib import Path

import pytest

import browser

REPO = Path(__file__).resolve().parents[2]
LADDER_BIN = os.environ.get("LADDER_BIN") or str(REPO / "build" / "rel" / "ladder")
if not os.path.isabs(LADDER_BIN):
    LADDER_BIN = str(REPO / LADDER_BIN)
EXAMPLE = REPO / "examples" / "assumptions.ini"

USL_POINTS = [(1, 65), (18, 996), (36, 1652), (72, 1853), (108, 1829), (144, 1775), (216, 1702)]

# A `ladder bench` report of the ladder scenario (schema ladder-bench/1): a
# mixed run at full load plus a breakpoint search.
SAMPLE_BENCH = {
    "schema": "ladder-bench/1",
    "config": {"connections": 64, "rate": "max", "mode": "closed", "duration_s": 30},
    "machine": {"cores": 8},
    "results": {
        "requests": 900000,
        "duration_s": 30.0,
        "target_rps": 0,
        "achieved_rps": 30000.0,
        "errors": 0,
        "error_rate": 0.0,
        "latency_us": {"min": 90, "mean": 2100, "p50": 1800, "p90": 3000, "p95": 4000,
                       "p99": 9000, "p999": 20000, "p9999": 40000, "max": 50000,
                       "stddev": 800},
        "service_time_us": {"min": 80, "mean": 2000, "p50": 1700, "p90": 2900, "p95": 3900,
                            "p99": 8800, "p999": 19000, "p9999": 39000, "max": 49000,
                            "stddev": 790},
    },
    "mix": {
        "read": {"requests": 810000, "achieved_rps": 27000.0, "latency_us": {"p99": 8000}},
        "write": {"requests": 90000, "achieved_rps": 3000.0, "latency_us": {"p99": 12000}},
    },
    "breakpoint": {"max_rate_held": 36000.0, "steps": [{"rate": 30000}, {"rate": 36000}]},
}  # fmt: skip


def plan(*args, check=True):
    """Runs `ladder plan ARGS`; returns the completed process."""
    p = subprocess.run([LADDER_BIN, "plan", *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr}")
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def plan_json(*args):
    return json.loads(plan(*args, "--format", "json").stdout)


def bad(*args):
    """Runs a plan that must be refused; returns stderr."""
    p = plan(*args, check=False)
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], p.stderr)
    assert p.stderr.strip(), "no message"
    return p.stderr


# --- help ---


@pytest.mark.parametrize("sub", [[], ["fit"], ["queue"]])
def test_help(sub):
    p = plan(*sub, "--help")
    assert p.stdout.startswith(" ".join(["ladder plan", *sub]) + ": ")
    assert "\n\nusage: " + " ".join(["ladder plan", *sub]) + " " in p.stdout
    assert "example" in p.stdout
    assert p.stderr == ""


# Every subcommand of the binary; `--help` is printed verbatim, so a printf
# escape such as '%%' left in a text shows up as is.
ALL_SUBCOMMANDS = [["serve"], ["migrate"], ["worker"], ["bench"], ["plan"], ["plan", "fit"],
                   ["plan", "queue"], ["plan", "fields"]]


@pytest.mark.parametrize("sub", ALL_SUBCOMMANDS, ids=" ".join)
def test_every_help_exits_0_with_examples_and_no_printf_escapes(sub):
    p = subprocess.run([LADDER_BIN, *sub, "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert p.stdout.startswith("usage: ladder " + " ".join(sub)) or \
        p.stdout.startswith("ladder " + " ".join(sub) + ":"), p.stdout[:200]
    assert "%%" not in p.stdout
    assert re.search(r"^examples?:\n  ladder " + " ".join(sub), p.stdout, re.M), p.stdout


def test_plan_help_spells_percentages():
    out = plan("--help").stdout
    assert "50ms, 2s, 20%, 3x;" in out
    assert "--growth 5% --format html" in out
    assert "(default 99%)" in plan("queue", "--help").stdout


def test_fields_lists_every_input_and_example_file_documents_each():
    out = plan("fields").stdout
    keys = re.findall(r"^([a-z_]+)\s+=", out, re.M)
    assert len(keys) > 40 and "users" in keys and "price_cdn_gb" in keys
    example = EXAMPLE.read_text()
    for k in keys:
        line = re.search(rf"^{k}\s*=.*#", example, re.M)
        assert line, f"{k} is not set and commented in examples/assumptions.ini"
    assert "EXAMPLE PRICES ONLY" in example


# --- the source design's arithmetic, through the CLI ---


def test_defaults_json_is_the_source_design():
    doc = plan_json()
    assert doc["schema"] == "ladder-plan/1"
    assert doc["prices_are_examples"] is True
    months = doc["months"]
    assert len(months) == 36
    assert months[0]["writes_avg"] == pytest.approx(400)
    assert months[0]["reads_avg"] == pytest.approx(40000)
    assert months[0]["data_new"] == pytest.approx(1e12)
    assert months[35]["data_raw"] == pytest.approx(36e12)
    assert [m["month"] for m in months] == list(range(1, 37))
    # The timeline is in month order and names rungs.
    tl = doc["timeline"]
    assert tl and all(a["month"] <= b["month"] for a, b in zip(tl, tl[1:]))
    assert all(e["rung_name"].startswith(f"rung {e['rung']}") for e in tl)
    assert any(e["what"] == "shard-data" for e in tl)


def test_example_file_equals_defaults():
    assert plan_json("--assumptions", EXAMPLE) == plan_json()


def test_instagram_example():
    doc = plan_json("--users", "500M", "--writes", "0", "--reads", "0",
                    "--media-uploads", "50M/day", "--media-bytes", "5MB",
                    "--media-views", "20B/day", "--media-served-bytes", "0.5MB",
                    "--cdn-hit-ratio", "0", "--seconds-per-month", "30.4375d",
                    "--months", "12")  # fmt: skip
    m1, m12 = doc["months"][0], doc["months"][11]
    assert m1["uploads_avg"] * 86400 * 5e6 == pytest.approx(250e12)  # 250 TB/day
    assert m12["media_stored"] == pytest.approx(91.3e15, rel=1e-3)  # about 90 PB a year
    assert m1["views_avg"] == pytest.approx(231481, rel=1e-5)  # about 230,000/s
    assert m1["egress_avg"] == pytest.approx(115.7e9, rel=1e-3)  # about 115 GB/s


def test_node_formula():
    doc = plan_json("--reads", "10000/s", "--writes", "0", "--peak-ratio", "1",
                    "--request-time", "50ms", "--target-utilisation", "70%",
                    "--node-cores", "1", "--slo-latency", "1s", "--months", "1")  # fmt: skip
    m = doc["months"][0]
    assert m["servers_util"] == pytest.approx(714.2857, rel=1e-6)
    assert m["nodes_util"] == 715


def test_overrides_later_wins(tmp_path):
    f = tmp_path / "a.ini"
    f.write_text("users = 20M\nmonths = 6\n")
    doc = plan_json("--assumptions", f, "--months", "3", "--set", "months=4")
    assert len(doc["months"]) == 4
    assert doc["assumptions"]["users"] == 20e6
    doc = plan_json("--assumptions", f, "--months=5")
    assert len(doc["months"]) == 5


# --- formats ---


def test_text():
    out = plan("--every", "12").stdout
    assert "What breaks first, and when" in out
    assert "EXAMPLE" in out
    assert "36.0 TB" in out  # stored content at month 36
    rows = re.findall(r"^\s+(\d+)\s+\d\s", out, re.M)
    assert rows[:4] == ["1", "12", "24", "36"]


def test_markdown():
    out = plan("--format", "markdown", "--every", "6").stdout
    assert out.startswith("# Capacity plan")
    assert "## What breaks first, and when" in out
    assert "| month | rung |" in out
    assert re.search(r"^\| 36 \| \d \|", out, re.M)


def test_html_self_contained(tmp_path):
    out = tmp_path / "plan.html"
    p = plan("--format", "html", "--out", out)
    assert p.stdout == ""
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") >= 4
    assert "<script" not in html and "src=" not in html and "@import" not in html
    # The only URL is the SVG namespace, which is never fetched.
    assert set(re.findall(r"https?://[^\"' ]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert "EXAMPLE" in html
    assert html.rstrip().endswith("</html>")


def test_html_escapes_file_names(tmp_path):
    report = tmp_path / "a<b>&c.json"
    report.write_text(json.dumps(SAMPLE_BENCH))
    html = plan("--format", "html", "--bench", report).stdout
    assert "a&lt;b&gt;&amp;c.json" in html
    assert "a<b>" not in html


# --- --bench ---


def test_bench_report_sets_capacities(tmp_path):
    report = tmp_path / "bench.json"
    report.write_text(json.dumps(SAMPLE_BENCH))
    doc = plan_json("--bench", report)
    a = doc["assumptions"]
    # The breakpoint (36,000/s held) split 27:3 as measured in the mix.
    assert a["node_read_capacity"] == pytest.approx(32400)
    assert a["node_write_capacity"] == pytest.approx(3600)
    assert "bench.json" in doc["capacity_source"]
    # Flags still win over the report.
    doc = plan_json("--bench", report, "--node-read-capacity", "5000")
    assert doc["assumptions"]["node_read_capacity"] == 5000
    # Measured capacities change the measured node count.
    m = plan_json("--bench", report, "--months", "1")["months"][0]
    assert m["nodes_measured"] == math.ceil(max(120000 / 32400, 1200 / 3600) / 0.7)


MEASURED = "measured by make bench on a 2-core Debian 12 machine, 2026-11-23, commit 184cae4"
SMALL = ["--users", "300", "--reads", "900/day", "--writes", "37.5M/month", "--months", "1"]


def test_default_capacities_are_the_measured_ones():
    doc = plan_json("--months", "1")
    a = doc["assumptions"]
    assert a["core_read_capacity"] == 174969  # GET /v1/items/{id}, one core
    assert a["node_read_capacity"] == 0  # = core_read_capacity x node_cores
    assert a["node_write_capacity"] == 59359  # durable POST /v1/items, 64 clients
    assert doc["capacity_source"] == ("174969 reads/s per app core, 59359 writes/s of the "
                                      "single-box store, " + MEASURED +
                                      " (no ladder bench report given)")
    # 120K reads/s over 8 cores x 174,969/s, 1.2K writes/s over 59,359/s, at 70%.
    assert doc["months"][0]["nodes_measured"] == math.ceil((120000 / (8 * 174969) +
                                                            1200 / 59359) / 0.7)
    assert MEASURED in plan("--help").stdout
    assert MEASURED in plan("fields").stdout
    # A capacity given as an input is said to be one.
    doc = plan_json("--months", "1", "--node-write-capacity", "1000")
    assert doc["capacity_source"].endswith("; given as inputs: write capacity")


def test_small_service_fits_one_box_and_only_redundancy_asks_for_two():
    doc = plan_json(*SMALL)
    first = doc["timeline"][0]
    assert first["what"] == "box-spare"
    assert first["text"] == (
        "the load fits one box with SQLite (peak 45 writes/s against the 59.4K/s it holds, "
        "0.03 reads/s on 1 node); only redundancy 1 (N+1) asks for a second box: "
        "--redundancy 0 (redundancy = 0 in an assumptions file) accepts a single box")
    assert doc["months"][0]["box_fits"] is True and doc["months"][0]["box_holds"] is False
    assert "does not hold" not in plan(*SMALL).stdout
    # Accepting a single box: it holds, rung 1.
    doc = plan_json(*SMALL, "--redundancy", "0")
    assert doc["timeline"][0] == {
        "month": 1, "rung": 1, "rung_name": "rung 1: single box (ladder serve + embedded SQLite)",
        "what": "box-holds",
        "text": "one box with SQLite holds the load: peak 45 writes/s against the 59.4K/s it "
                "holds, 0.03 reads/s on 1 node"}
    assert doc["months"][0]["rung"] == 1


def test_load_that_does_not_fit_one_box_says_why():
    doc = plan_json("--months", "1", "--writes", "100K/s")
    first = doc["timeline"][0]
    assert first["what"] == "box-fails" and first["rung"] == 2
    assert first["text"] == (
        "one box with SQLite does not hold the load: peak 300K writes/s pass the 59.4K/s it "
        "holds, peak 120K reads/s and 300K writes/s need 38 app nodes, the data (390 TB with "
        "indexes) passes the 4.00 TB it holds")
    doc = plan_json("--months", "1")
    assert doc["timeline"][0]["text"] == (
        "one box with SQLite does not hold the load: peak 120K reads/s and 1.20K writes/s "
        "need 11 app nodes")


def test_bench_report_minimal(tmp_path):
    report = tmp_path / "min.json"
    report.write_text(json.dumps({"schema": "ladder-bench/1", "results": {"achieved_rps": 5000}}))
    doc = plan_json("--bench", report)
    assert doc["assumptions"]["node_read_capacity"] == 5000
    # The default, measured by make bench; the report says it did not measure it.
    assert doc["assumptions"]["node_write_capacity"] == 59359
    assert "write capacity 59.4K/s not in the report" in doc["capacity_source"]


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["results"].__setitem__("achieved_rps", "fast"), "results.achieved_rps"),
    (lambda d: d.pop("results"), "results"),
    (lambda d: d.__setitem__("schema", "other/9"), "schema"),
    (lambda d: d["config"].__setitem__("connections", -3), "config.connections"),
    (lambda d: d["mix"]["write"].__setitem__("achieved_rps", None), "mix.write.achieved_rps"),
    (lambda d: d["breakpoint"].__setitem__("max_rate_held", [1]), "breakpoint.max_rate_held"),
])  # fmt: skip
def test_bench_report_errors_name_file_and_field(tmp_path, mutate, field):
    d = json.loads(json.dumps(SAMPLE_BENCH))
    mutate(d)
    report = tmp_path / "broken.json"
    report.write_text(json.dumps(d))
    err = bad("--bench", report)
    assert "broken.json" in err and field in err


def test_bench_report_not_json(tmp_path):
    report = tmp_path / "x.json"
    report.write_text("{nope")
    assert "invalid JSON" in bad("--bench", report)
    assert "missing.json" in bad("--bench", tmp_path / "missing.json")


# --- input validation ---


@pytest.mark.parametrize("args,field", [
    (["--users", "-5"], "users"),
    (["--users", "abc"], "users"),
    (["--users"], "users"),
    (["--target-utilisation", "1.5"], "--target-utilisation: 1.5 is absurd"),
    (["--target-utilisation", "150%"], "--target-utilisation: 1.5 is absurd"),
    (["--set", "target_utilisation=1.5"], "--set: target_utilisation: 1.5 is absurd"),
    (["--target_utilisation", "0.5", "--peak_ratio", "0"], "--peak_ratio: 0 is below"),
    (["--users", "0"], "users"),
    (["--months", "0"], "months"),
    (["--months", "10000"], "months"),
    (["--growth", "500%"], "growth"),
    (["--write-bytes", "1KB/s"], "--write-bytes: expected a size like 1KB, 5MB or 1GiB, got '1KB/s'"),
    (["--writes", "1B/fortnight"], "writes"),
    (["--peak-ratio", "0.5"], "--peak-ratio: 0.5 is below the minimum 1"),
    (["--redundancy", "5"], "redundancy"),
    (["--slo-latency", "100us"], "slo_latency"),
    (["--set", "nonsense=1"], "nonsense"),
    (["--set", "users"], "--set"),
    (["--no-such-flag", "1"], "--no-such-flag"),
    (["--format", "pdf"], "--format"),
    (["--every", "0"], "--every"),
    (["stray"], "stray"),
])  # fmt: skip
def test_bad_inputs_exit_2_naming_the_field(args, field):
    err = bad(*args)
    assert field in err, err
    assert err.startswith("ladder plan")


def test_bad_assumptions_file_names_file_line_and_field(tmp_path):
    f = tmp_path / "mine.ini"
    f.write_text("# fine\nusers = 10M\n\nreads = lots\n")
    err = bad("--assumptions", f)
    assert f"{f}:4:" in err and "reads" in err
    f.write_text("[workload]\ncache_hit_ratio = 2\n")
    err = bad("--assumptions", f)
    assert f"{f}:2:" in err and "cache_hit_ratio" in err
    assert "nowhere.ini" in bad("--assumptions", tmp_path / "nowhere.ini")


def test_out_unwritable(tmp_path):
    p = plan("--out", tmp_path / "no" / "such" / "dir.txt", check=False)
    assert p.returncode == 1
    assert "dir.txt" in p.stderr


# --- fit ---


def fit_args():
    args = []
    for n, x in USL_POINTS:
        args += ["--point", f"{n},{x}"]
    return args


def test_fit_published_example():
    out = plan("fit", *fit_args()).stdout
    assert "contention" in out
    doc = json.loads(plan("fit", *fit_args(), "--format", "json").stdout)
    assert doc["sigma"] == pytest.approx(0.02773, abs=5e-5)
    assert doc["kappa"] == pytest.approx(0.0001043, abs=5e-7)
    assert doc["lambda"] == pytest.approx(89.99, abs=0.05)
    assert doc["peak_n"] == pytest.approx(96, abs=1)
    assert doc["peak_x"] == pytest.approx(1884, abs=1)
    assert doc["limit"] == "contention"
    assert len(doc["points"]) == 7


def test_fit_from_csv_and_bench_reports(tmp_path):
    csv = tmp_path / "points.csv"
    csv.write_text("concurrency,throughput\n" + "".join(f"{n},{x}\n" for n, x in USL_POINTS))
    a = json.loads(plan("fit", csv, "--format", "json").stdout)
    reports = []
    for n, x in USL_POINTS:
        d = json.loads(json.dumps(SAMPLE_BENCH))
        d["config"]["connections"] = n
        d["results"]["achieved_rps"] = x
        r = tmp_path / f"run-{n}.json"
        r.write_text(json.dumps(d))
        reports.append(r)
    b = json.loads(plan("fit", *reports, "--format", "json").stdout)
    assert a["sigma"] == pytest.approx(b["sigma"])
    assert a["kappa"] == pytest.approx(b["kappa"])


@pytest.mark.parametrize("args,word", [
    (["--point", "1,65", "--point", "2,100"], "at least 3"),
    (["--point", "1,abc"], "throughput"),
    (["--point", "0,5", "--point", "2,9", "--point", "3,12"], "concurrency"),
    (["--bogus"], "--bogus"),
])  # fmt: skip
def test_fit_bad_points(args, word):
    p = plan("fit", *args, check=False)
    assert p.returncode == 2
    assert word in p.stderr


def test_fit_bad_file_names_line(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("1,65\n2,x\n")
    p = plan("fit", f, check=False)
    assert p.returncode == 2 and f"{f}:2:" in p.stderr


# --- queue ---


def test_queue_textbook():
    doc = json.loads(plan("queue", "--rate", "100", "--service-time", "10ms", "--servers", "2",
                          "--format", "json").stdout)  # fmt: skip
    assert doc["p_wait"] == pytest.approx(1 / 3)  # C(2, A=1)
    assert doc["mean_wait_s"] == pytest.approx(1 / 300)  # C / (c mu - lambda)
    assert doc["little_in_system"] == pytest.approx(100 * doc["mean_response_s"])


def test_queue_sizing():
    doc = json.loads(plan("queue", "--rate", "10000", "--service-time", "50ms", "--slo",
                          "250ms", "--cores-per-node", "8", "--format", "json").stdout)  # fmt: skip
    assert doc["servers"] > 500 and doc["quantile_s"] <= 0.25
    assert doc["nodes"] * 8 > 500
    text = plan("queue", "--rate", "10000", "--service-time", "50ms", "--slo", "250ms").stdout
    assert "Erlang C" in text and "<-" in text


@pytest.mark.parametrize("args,word", [
    (["--service-time", "50ms", "--slo", "1s"], "--rate"),
    (["--rate", "-4", "--service-time", "50ms", "--slo", "1s"], "--rate"),
    (["--rate", "10", "--slo", "1s"], "--service-time"),
    (["--rate", "10", "--service-time", "50ms"], "--slo"),
    (["--rate", "10000", "--service-time", "50ms", "--slo", "200ms"], "slo"),
    (["--rate", "10000", "--service-time", "50ms", "--servers", "400"], "servers"),
    (["--rate", "1M/month", "--service-time", "5ms", "--slo", "1s"], "--rate"),
])  # fmt: skip
def test_queue_bad_inputs(args, word):
    p = plan("queue", *args, check=False)
    assert p.returncode == 2, p.stdout
    assert word in p.stderr



@pytest.mark.skipif(browser.CHROMIUM is None, reason="chromium is not installed (scripts/deps.sh test)")
def test_html_report_renders_offline_with_chart_data(tmp_path):
    html = tmp_path / "plan.html"
    plan("--format", "html", "--out", html, "--growth", "5%", "--months", "24")
    text = html.read_text()
    # Self-contained: nothing is fetched (the SVG namespace is a name, not a fetch).
    assert not re.search(r'(src|href)\s*=\s*"https?://', text)
    shot = tmp_path / "plan.png"
    dom = browser.render(html, shot, size="900,1600")
    # The browser built the charts: five SVGs whose lines carry many points,
    # and growth makes at least one line rise.
    assert dom.count("<svg") >= 5, dom[:500]
    lines = re.findall(r' points="([0-9., ]+)"', dom)
    assert len(lines) >= 5
    assert all(len(x.split()) >= 24 for x in lines[:5])
    ys = [[float(p.split(",")[1]) for p in x.split()] for x in lines]
    assert any(y[0] != y[-1] for y in ys)
    assert shot.exists() and shot.stat().st_size > 5000
