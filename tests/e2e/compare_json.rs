//! `gorgon compare --output json|csv`: the comparison as data for a CI
//! script, read back here with serde and checked against the two saved
//! results it compares, with its exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::support::Gorgon;

/// The comparison as docs/reports.md documents it.
#[derive(Debug, Deserialize)]
struct Comparison {
    base: Input,
    new: Input,
    note: Option<String>,
    rows: Vec<Row>,
    gates: Vec<Gate>,
    verdict: Verdict,
}

#[derive(Debug, Deserialize)]
struct Input {
    path: String,
    plugin: String,
    params: BTreeMap<String, String>,
    shape: Shape,
}

#[derive(Debug, Deserialize)]
struct Shape {
    load_model: String,
    rate_per_sec: Option<f64>,
    runs: Vec<RunShape>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct RunShape {
    run: usize,
    processes: u32,
    threads: u32,
    operations: u64,
}

#[derive(Debug, Deserialize)]
struct Row {
    run: usize,
    kind: String,
    name: String,
    figures: BTreeMap<String, Change>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
struct Change {
    base: Option<f64>,
    new: Option<f64>,
    delta: Option<f64>,
    change: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Gate {
    expression: String,
    scope: String,
    metric: String,
    bound: String,
    limit: f64,
    unit: String,
    passed: bool,
    runs: Vec<GateRun>,
}

#[derive(Debug, Deserialize)]
struct GateRun {
    run: usize,
    #[serde(flatten)]
    value: Change,
    passed: bool,
}

#[derive(Debug, Deserialize)]
struct Verdict {
    status: String,
    exit_code: i32,
    reasons: Vec<String>,
}

impl Comparison {
    fn parse(stdout: &str, stderr: &str) -> Comparison {
        serde_json::from_str(stdout)
            .unwrap_or_else(|e| panic!("stdout is no comparison ({e}):\n{stdout}\n{stderr}"))
    }

    fn row(&self, kind: &str, name: &str) -> &Row {
        let found: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.kind == kind && r.name == name)
            .collect();
        assert_eq!(found.len(), 1, "one {kind} row {name:?}: {:#?}", self.rows);
        found[0]
    }
}

/// A testkit run of 200 calls with a measurement `work`, to be saved as
/// `dir/name`: the path, and the command to finish and run.
fn to_save(dir: &Path, name: &str) -> (PathBuf, Gorgon) {
    let path = dir.join(name);
    let run = Gorgon::testkit()
        .args(["-n", "200", "-q", "--save"])
        .arg(&path)
        .set("measure", "work");
    (path, run)
}

/// The saved group `kind`/`name` of the first run of a report file.
fn saved_group(report: &Value, kind: &str, name: &str) -> Value {
    let run = &report["runs"][0];
    match kind {
        "all" => run["all"].clone(),
        _ => {
            let list = if kind == "result" {
                "results"
            } else {
                "measurements"
            };
            run[list]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["name"] == name)
                .unwrap_or_else(|| panic!("no {kind} {name} in the saved report"))
                .clone()
        }
    }
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Every figure of `row` that the report also has (the latencies and the
/// throughput) is the saved value on each side, and its delta and change
/// follow from them.
fn assert_figures_match(row: &Row, base: &Value, new: &Value) {
    let (b, n) = (
        saved_group(base, &row.kind, &row.name),
        saved_group(new, &row.kind, &row.name),
    );
    for key in [
        "ops_per_sec",
        "p50_ns",
        "p90_ns",
        "p95_ns",
        "p99_ns",
        "p999_ns",
        "avg_ns",
        "max_ns",
    ] {
        let figure = row.figures[key];
        let (bv, nv) = (b[key].as_f64().unwrap(), n[key].as_f64().unwrap());
        assert_eq!(
            (figure.base, figure.new),
            (Some(bv), Some(nv)),
            "{} {key}",
            row.name
        );
        assert!(close(figure.delta.unwrap(), nv - bv), "{key}: {figure:?}");
        assert!(
            close(figure.change.unwrap(), (nv - bv) / bv * 100.0),
            "{key}: {figure:?}"
        );
    }
}

#[test]
fn a_passing_gate_is_told_with_its_value_and_the_figures_are_the_saved_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (base_path, run) = to_save(dir.path(), "base.json");
    run.ok();
    // A millisecond's sleep in every call: its median is far above the
    // base's, whatever the machine's load.
    let (new_path, run) = to_save(dir.path(), "slow.json");
    run.set("sleep_us", 1000).ok();
    let (base, new) = (read(&base_path), read(&new_path));

    let compared = Gorgon::command(["compare"])
        .arg(&base_path)
        .arg(&new_path)
        .args(["--output", "json"])
        .args(["--threshold", "p50>+0%", "--threshold", "error_rate<+1%"])
        .ok();
    let comparison = Comparison::parse(&compared.stdout, &compared.stderr);
    assert_eq!(comparison.verdict.status, "passed");
    assert_eq!(comparison.verdict.exit_code, 0);
    assert!(comparison.verdict.reasons.is_empty());
    assert!(
        !compared.stderr.contains("threshold failed"),
        "{}",
        compared.stderr
    );

    // The inputs, as given and as saved.
    assert_eq!(comparison.base.path, base_path.display().to_string());
    assert_eq!(comparison.new.path, new_path.display().to_string());
    assert_eq!(comparison.base.plugin, base["plugin"].as_str().unwrap());
    assert!(comparison.new.plugin.ends_with("libgorgon_test_testkit.so"));
    assert_eq!(comparison.new.params["sleep_us"], "1000");
    assert!(!comparison.base.params.contains_key("sleep_us"));
    for input in [&comparison.base, &comparison.new] {
        assert_eq!(input.shape.load_model, "closed");
        assert_eq!(input.shape.rate_per_sec, None);
        assert_eq!(
            input.shape.runs,
            [RunShape {
                run: 1,
                processes: 1,
                threads: 1,
                operations: 200
            }]
        );
    }
    assert!(
        comparison
            .note
            .as_deref()
            .is_some_and(|n| n.contains("parameters differ")),
        "{:?}",
        comparison.note
    );

    // One row per group, each figure the saved one on each side.
    let names: Vec<(&str, &str)> = comparison
        .rows
        .iter()
        .map(|r| (r.kind.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("all", "all"), ("result", "OK"), ("measurement", "work")]
    );
    for row in &comparison.rows {
        assert_eq!(row.run, 1);
        assert_figures_match(row, &base, &new);
        assert_eq!(
            row.figures["error_rate"],
            Change {
                base: Some(0.0),
                new: Some(0.0),
                delta: Some(0.0),
                change: Some(0.0)
            }
        );
    }

    // The gates, with what they measured: the row's change.
    let p50 = comparison.row("all", "all").figures["p50_ns"];
    assert!(p50.change.unwrap() > 0.0, "{p50:?}");
    let [median, errors] = &comparison.gates[..] else {
        panic!("two gates: {:#?}", comparison.gates)
    };
    assert_eq!(
        (
            median.expression.as_str(),
            median.scope.as_str(),
            median.metric.as_str(),
            median.bound.as_str(),
            median.limit,
            median.unit.as_str()
        ),
        ("p50>+0%", "all", "p50_ns", "above", 0.0, "%")
    );
    assert!(median.passed && median.runs.len() == 1 && median.runs[0].passed);
    assert_eq!((median.runs[0].run, median.runs[0].value), (1, p50));
    assert_eq!(
        (errors.metric.as_str(), errors.unit.as_str()),
        ("error_rate", "points")
    );
    assert!(errors.passed);
    assert_eq!(errors.runs[0].value.change, Some(0.0));

    // The CSV carries the same rows, one line per group and figure.
    let csv_run = Gorgon::command(["compare"])
        .arg(&base_path)
        .arg(&new_path)
        .args(["--output", "csv"])
        .ok();
    let mut reader = csv::Reader::from_reader(csv_run.stdout.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["run", "kind", "name", "metric", "base", "new", "delta", "change"]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3 * 9, "{}", csv_run.stdout);
    let p50_line = records
        .iter()
        .find(|r| &r[1] == "all" && &r[3] == "p50_ns")
        .expect("a p50 line for all calls");
    let cell = |i: usize| p50_line[i].parse::<f64>().unwrap();
    assert_eq!((cell(4), cell(5)), (p50.base.unwrap(), p50.new.unwrap()));
    // The change is a quotient: the same to the last digits, not the last bit.
    let change = p50.change.unwrap();
    assert!(
        (cell(7) - change).abs() <= change.abs() * 1e-12,
        "{} vs {change}",
        cell(7)
    );
}

#[test]
fn a_failing_gate_exits_1_and_the_json_names_it_with_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let (base_path, run) = to_save(dir.path(), "base.json");
    run.ok();
    // Every fourth call of 200 fails: the error rate is exactly 25 %.
    let (new_path, run) = to_save(dir.path(), "failing.json");
    run.set("fail_every", 4).with_failed_calls();

    let compared = Gorgon::command(["compare"])
        .arg(&base_path)
        .arg(&new_path)
        .args(["--output", "json"])
        .args(["--threshold", "error_rate<+1%"])
        .args(["--threshold", "OK:error_rate<+1%"])
        .expect_exit(1);
    let comparison = Comparison::parse(&compared.stdout, &compared.stderr);
    assert_eq!(
        (
            comparison.verdict.status.as_str(),
            comparison.verdict.exit_code
        ),
        ("thresholds_failed", 1)
    );
    assert_eq!(
        comparison.verdict.reasons,
        ["comparison threshold failed: error_rate<+1% (measured +25.0 pts)"]
    );
    assert!(
        compared
            .stderr
            .contains("gorgon: comparison threshold failed: error_rate<+1% (measured +25.0 pts)"),
        "{}",
        compared.stderr
    );

    let [all, ok] = &comparison.gates[..] else {
        panic!("two gates: {:#?}", comparison.gates)
    };
    assert_eq!(
        (all.expression.as_str(), all.passed),
        ("error_rate<+1%", false)
    );
    assert_eq!(all.runs.len(), 1);
    assert!(!all.runs[0].passed);
    assert_eq!(
        all.runs[0].value,
        Change {
            base: Some(0.0),
            new: Some(0.25),
            delta: Some(0.25),
            change: Some(25.0)
        }
    );
    // The successful calls' own error rate did not move.
    assert_eq!((ok.scope.as_str(), ok.passed), ("OK", true));
    assert_eq!(ok.runs[0].value.change, Some(0.0));

    // A label only the new result has: nothing on the base side.
    let failed = comparison.row("result", "failed").figures["error_rate"];
    assert_eq!(
        failed,
        Change {
            base: None,
            new: Some(1.0),
            delta: None,
            change: None
        }
    );
}

#[test]
fn a_bad_output_format_is_refused_as_gorgon_run_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (base, new) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let refused = Gorgon::command(["compare"])
        .arg(&base)
        .arg(&new)
        .args(["--output", "xml"])
        .usage_error("invalid value 'xml' for '--output <FORMAT>'");
    assert!(
        refused.stderr.contains("possible values: table, json, csv"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    let run = Gorgon::command(["run", "--output", "xml", "--plugin", "noop"])
        .usage_error("invalid value 'xml' for '--output <FORMAT>'");
    assert_eq!(
        run.stderr, refused.stderr,
        "the same sentence as gorgon run's"
    );
}

#[test]
fn a_full_stdout_exits_3_in_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let (base_path, run) = to_save(dir.path(), "base.json");
    run.ok();
    let output = Gorgon::command(["compare"])
        .arg(&base_path)
        .arg(&base_path)
        .args(["--output", "json"])
        .with_full_stdout();
    let stderr = &output.stderr;
    assert_eq!(output.code, 3, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "gorgon: cannot write the comparison to stdout: No space left on device (os error 28)"
    );
}
