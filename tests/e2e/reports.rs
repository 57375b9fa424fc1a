//! Reports: JSON that matches docs/json-schema.md, CSV, SVG charts, the
//! offline HTML page, `gorgon report`, snapshots, and what an interrupted
//! run leaves (a partial report, exit 130, no worker left behind).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::support::{
    is_worker, numbers_seen, numbers_written, plugin, threads_in_setup, workspace, Gorgon, Report,
    Run,
};

/// Stdout as untyped JSON: for the tests of the format itself (which
/// fields it has), where the typed [`Report`] would ignore any extra.
fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

/// The fields docs/json-schema.md lists for each object: the table rows
/// under each "## `Name`" heading.
pub(crate) fn documented_fields() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(workspace().join("docs/json-schema.md")).unwrap();
    let mut objects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## `") {
            current = Some(name.trim_end_matches('`').to_string());
        } else if line.starts_with("## ") {
            current = None;
        } else if let (Some(object), Some(row)) = (&current, line.strip_prefix("| `")) {
            let field = row.split('`').next().unwrap().to_string();
            objects.entry(object.clone()).or_default().insert(field);
        }
    }
    objects
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("expected an object, got {value}"))
        .keys()
        .cloned()
        .collect()
}

#[track_caller]
fn assert_documented(what: &str, value: &Value, fields: &BTreeSet<String>) {
    assert_eq!(
        &keys(value),
        fields,
        "{what}: the JSON fields (left) differ from docs/json-schema.md (right)"
    );
}

#[test]
fn json_output_matches_the_documented_schema() {
    let run = Gorgon::testkit()
        .args(["-n", "300", "-p", "2", "-t", "2"])
        .set("measure", "work")
        .set("panic_every", 10)
        .with_failed_calls();
    let report = json_of(&run);
    let docs = documented_fields();
    for object in [
        "Report",
        "Run",
        "Summary",
        "NamedSummary",
        "PanicSample",
        "TimelinePoint",
        "Node",
        "LoadSettings",
        "OpenModel",
        "Threshold",
        "ThresholdRun",
    ] {
        assert!(docs.contains_key(object), "docs lack {object}: {docs:?}");
    }
    let named: BTreeSet<String> = docs["Summary"]
        .union(&docs["NamedSummary"])
        .cloned()
        .collect();

    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["interrupted"], false);
    assert_documented("report", &report, &docs["Report"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let first = &runs[0];
    assert_documented("run", first, &docs["Run"]);
    assert_documented("all", &first["all"], &docs["Summary"]);
    for list in ["results", "measurements"] {
        for entry in first[list].as_array().unwrap() {
            assert_documented(list, entry, &named);
        }
    }
    for entry in first["panics"].as_array().unwrap() {
        assert_documented("panic", entry, &docs["PanicSample"]);
    }
    let timeline = first["timeline"].as_array().unwrap();
    assert!(!timeline.is_empty());
    for point in timeline {
        assert_documented("timeline point", point, &docs["TimelinePoint"]);
    }

    assert_documented("load", &report["load"], &docs["LoadSettings"]);
    assert!(
        first["open_model"].is_null(),
        "closed model: {}",
        first["open_model"]
    );

    // The open model and thresholds, in a short run at a fixed rate.
    let open = json_of(
        &Gorgon::testkit()
            .args(["--rate", "200/s", "--duration", "500ms"])
            .args(["--threshold", "p99<10s", "--threshold", "never:p99<1ms"])
            // Nothing is named `never`: that threshold fails.
            .expect_exit(1),
    );
    let model = &open["runs"][0]["open_model"];
    assert_documented("open_model", model, &docs["OpenModel"]);
    assert_documented("service", &model["service"], &docs["Summary"]);
    for entry in model["service_results"].as_array().unwrap() {
        assert_documented("service_results", entry, &named);
    }
    let thresholds = open["thresholds"].as_array().unwrap();
    assert_eq!(thresholds.len(), 2);
    for threshold in thresholds {
        assert_documented("threshold", threshold, &docs["Threshold"]);
        for run in threshold["runs"].as_array().unwrap() {
            assert_documented("threshold run", run, &docs["ThresholdRun"]);
        }
    }

    // And the figures are the run's.
    let typed = run.json();
    let figures = typed.run();
    assert_eq!((figures.processes, figures.threads), (2, 2));
    assert_eq!(figures.operations, 300);
    assert_eq!(figures.operations_planned, Some(300));
    assert_eq!(figures.all.count, 300);
    assert_eq!(
        figures.labels(),
        BTreeMap::from([("OK", 270), ("panic", 30)])
    );
    assert_eq!(figures.measured_names(), BTreeMap::from([("work", 270)]));
    let in_timeline: u64 = figures.timeline_calls().iter().map(|(_, c)| c).sum();
    assert_eq!(in_timeline, 300);
    assert!(!run.stdout.contains('┆'), "no table with --output json");
}

#[test]
fn csv_has_one_row_per_run_and_group() {
    let run = Gorgon::testkit()
        .args(["-n", "200", "--runs", "1x1,2x1"])
        .set("measure", "work")
        .set("panic_every", 10)
        .output_format("csv")
        .with_failed_calls();
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "run",
            "processes",
            "threads",
            "run_elapsed_ns",
            "run_complete",
            "kind",
            "name",
            "count",
            "ops_per_sec",
            "avg_ns",
            "min_ns",
            "max_ns",
            "p50_ns",
            "p90_ns",
            "p95_ns",
            "p99_ns",
            "p999_ns"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let seen: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r[0].into(), r[5].into(), r[6].into(), r[7].into()))
        .collect();
    let expected: Vec<(String, String, String, String)> = ["1", "2"]
        .iter()
        .flat_map(|run| {
            [
                ("all", "all", "200"),
                ("result", "OK", "180"),
                ("result", "panic", "20"),
                ("measurement", "work", "180"),
            ]
            .map(|(kind, name, count)| (run.to_string(), kind.into(), name.into(), count.into()))
        })
        .collect();
    assert_eq!(seen, expected);
    for row in &rows {
        for (column, value) in header.iter().zip(row.iter()) {
            if column.ends_with("_ns") || column == "count" {
                value
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{column} = {value:?} is not a number"));
            }
        }
        assert!(row[8].parse::<f64>().unwrap() > 0.0);
    }
}

/// The text of every `<text>` element of an SVG, which must be well-formed.
pub(crate) fn svg_texts(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let document = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

#[test]
fn svg_charts_are_well_formed_and_show_their_series() {
    let dir = tempfile::tempdir().unwrap();
    let charts = dir.path().join("charts");
    let run = Gorgon::testkit()
        .args(["-n", "400", "--runs", "1x1,1x2"])
        .set("measure", "work")
        .set("panic_every", 4)
        .arg("--svg")
        .arg(&charts)
        .table()
        .with_failed_calls();
    assert!(
        run.stdout
            .starts_with("THRESHOLDS FAILED (exit 1): 800 calls, 200 errors"),
        "the table goes to stdout, the verdict first: {}",
        run.stdout
    );
    let mut files: Vec<String> = std::fs::read_dir(&charts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "latency-run1.svg",
            "latency-run2.svg",
            "latency.svg",
            "spectrum-run1.svg",
            "spectrum-run2.svg",
            "throughput.svg",
            "timeline-run1.svg",
            "timeline-run2.svg"
        ]
    );
    let expect = |file: &str, wanted: &[&str]| {
        let texts = svg_texts(&charts.join(file));
        for want in wanted {
            assert!(
                texts.iter().any(|t| t == want),
                "{file} lacks the text {want:?}; it has {texts:?}"
            );
        }
    };
    expect(
        "throughput.svg",
        &[
            "Throughput per run",
            "throughput (ops/s)",
            "run (processes × threads)",
            "1: 1×1",
            "2: 1×2",
        ],
    );
    expect(
        "latency.svg",
        &[
            "Latency per run (all calls)",
            "avg",
            "p50",
            "p90",
            "p99",
            "max",
        ],
    );
    for run in ["1", "2"] {
        expect(
            &format!("spectrum-run{run}.svg"),
            &["OK", "panic", "work< (measurement)", "90%", "99%"],
        );
        expect(
            &format!("timeline-run{run}.svg"),
            &[
                "all calls",
                "OK",
                "panic",
                "time since the start (s)",
                "throughput (ops/s)",
            ],
        );
        expect(
            &format!("latency-run{run}.svg"),
            &[
                "p50",
                "p90",
                "p99",
                "errors/s (right axis)",
                "latency (log scale)",
            ],
        );
    }
    expect("latency.svg", &["latency (log scale)"]);
}

#[test]
fn html_page_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    Gorgon::testkit()
        .args(["-n", "200", "-p", "2"])
        .set("measure", "work")
        // A URL among the parameters must not become a link or a resource.
        .set("target", "https://example.invalid/a?b=<c>")
        .arg("--html")
        .arg(&page)
        .table()
        .ok();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in [
        "http://", "https://", "<script", "<link", "<img", "src=", "href=", "url(",
    ] {
        assert!(!html.contains(banned), "the page contains {banned:?}");
    }
    assert!(
        html.contains("&lt;c&gt;"),
        "text from the report is escaped"
    );
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "a single run's three charts inline (no one-bar charts)"
    );
    assert!(html.contains("<td>OK</td>") && html.contains("<td>work</td>"));
    assert!(html.contains("<td>200</td>"), "the count of all calls");
}

#[test]
fn gorgon_report_round_trips_a_saved_file() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("result.json");
    let run = Gorgon::testkit()
        .args(["-n", "500", "--runs", "1x2,2x1"])
        .set("panic_every", 5)
        .arg("--save")
        .arg(&saved)
        .output_format("table")
        .with_failed_calls();
    assert!(
        run.stdout.starts_with("THRESHOLDS FAILED"),
        "the table still goes to stdout, verdict first"
    );
    let file = saved.to_str().unwrap();
    let again = Gorgon::command(["report", file]).ok();
    assert_eq!(again.rows("OK"), run.rows("OK"));
    assert_eq!(again.rows("panic"), run.rows("panic"));
    assert_eq!(again.rows("all"), run.rows("all"));
    assert_eq!(again.stdout, run.stdout, "the same table");

    let original: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let as_json = Gorgon::command(["report", file, "--output", "json"]).ok();
    assert_eq!(
        json_of(&as_json),
        original,
        "JSON survives a round trip unchanged"
    );

    let charts = dir.path().join("charts");
    let page = dir.path().join("page.html");
    Gorgon::command(["report", file, "--output", "csv", "--svg"])
        .arg(&charts)
        .arg("--html")
        .arg(&page)
        .ok();
    assert!(charts.join("spectrum-run2.svg").exists());
    assert!(page.exists());
}

/// Runs `-n 10M` of a 1 ms operation on 2×2 (hours), stops it with
/// `signal` once the workers have reported, and checks what is left.
fn interrupted_run(signal: Signal, quiet: bool) {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("live.json");
    let mut gorgon = Gorgon::testkit()
        .args(["-n", "10000000", "-p", "2", "-t", "2"])
        .set("sleep_us", 1000);
    if quiet {
        // Snapshots tell how far the run has gone by its own clock.
        gorgon = gorgon
            .args(["--quiet", "--snapshot-every", "1s", "--save"])
            .arg(&snapshot);
    }
    let mut run = gorgon.spawn();
    let workers = run.wait_for_workers(2);
    if quiet {
        // Long enough for several status lines, which --quiet must not
        // print: a snapshot of three seconds of calls.
        run.wait_for("three seconds of calls", Duration::from_secs(60), || {
            read_snapshot(&snapshot).is_some_and(|r| r.run().elapsed_ns >= 3_000_000_000)
        });
    } else {
        // Not a terminal: status lines (every second at first) instead of a bar.
        let line = run.wait_for_line("gorgon: run (2×2): ", Duration::from_secs(30));
        assert!(line.contains(" of 10,000,000 ops ("), "{line}");
        assert!(line.contains(" ops/s, 0 errors, p99 "), "{line}");
        assert!(line.contains("ETA"), "{line}");
    }
    run.signal(signal);
    let result = run.finish(Duration::from_secs(30)).expect_exit(130);
    assert!(
        result.stderr.contains("interrupted"),
        "stderr says so: {}",
        result.stderr
    );
    if quiet {
        assert!(
            !result.stderr.contains("gorgon: run"),
            "no progress with --quiet: {}",
            result.stderr
        );
    }
    let report = result.json();
    assert!(report.interrupted);
    assert!(!report.in_progress);
    let first = report.run();
    assert!(!first.complete);
    assert_eq!(first.failures, Vec::<String>::new(), "a clean stop");
    let done = first.operations;
    assert!(done > 100 && done < 10_000_000, "{done} operations");
    assert_eq!(first.all.count, done);
    let left: Vec<u32> = workers.into_iter().filter(|&w| is_worker(w)).collect();
    assert!(left.is_empty(), "workers left behind: {left:?}");
}

/// The snapshot at `path`, once there is one.
fn read_snapshot(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a snapshot is not a report ({e}): {text}")),
    )
}

#[test]
fn sigint_gives_a_partial_report_and_leaves_no_worker() {
    interrupted_run(Signal::SIGINT, false);
}

#[test]
fn sigterm_does_the_same_quietly() {
    interrupted_run(Signal::SIGTERM, true);
}

#[test]
fn a_snapshot_is_valid_json_while_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("live.json");
    let mut run = Gorgon::testkit()
        .args(["-n", "10000000"])
        .set("sleep_us", 1000)
        .arg("--save")
        .arg(&saved)
        .args(["--snapshot-every", "1s", "--quiet"])
        .spawn();
    // A snapshot that already counts calls (the first may come before any).
    let counted = || read_snapshot(&saved).filter(|r| r.run().operations > 0);
    run.wait_for("a snapshot with calls", Duration::from_secs(30), || {
        counted().is_some()
    });
    let snapshot = counted().unwrap();
    assert!(run.is_running(), "still running");
    assert!(snapshot.in_progress);
    assert_eq!(snapshot.verdict.status, "in_progress");
    assert_eq!(snapshot.schema_version, 1);
    assert!(!snapshot.run().complete);
    assert_eq!(snapshot.run().operations_planned, Some(10_000_000));
    // Written atomically: no temporary file is left beside it.
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(
        files <= 2,
        "at most the file and one temporary being written"
    );
    // `gorgon report` reads a snapshot.
    let shown = Gorgon::command(["report"]).arg(&saved).ok();
    assert!(shown.stdout.contains("(in progress)"), "{}", shown.stdout);

    run.signal(Signal::SIGINT);
    run.finish(Duration::from_secs(30)).expect_exit(130);
    let last = Report::read(&saved);
    assert!(!last.in_progress);
    assert!(last.interrupted);
    assert!(last.run().operations >= snapshot.run().operations);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unwritable_outputs_are_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let numbers = dir.path().join("numbers");
    std::fs::create_dir(&numbers).unwrap();
    let missing = dir.path().join("no/such/dir/r.json");
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let inside_a_file = blocked.join("charts");
    let cases: [(&str, &Path, &str); 4] = [
        ("--save", &missing, "does not exist"),
        ("--html", &missing, "does not exist"),
        ("--svg", &inside_a_file, "cannot create the directory"),
        ("--save", dir.path(), "is a directory"),
    ];
    for (flag, path, why) in cases {
        Gorgon::testkit()
            .args(["-n", "1000"])
            .set("numbers_dir", numbers.display())
            .arg(flag)
            .arg(path)
            .usage_error(why);
        assert!(
            numbers_seen(&numbers).is_empty(),
            "{flag} {}: calls were made",
            path.display()
        );
    }
    Gorgon::testkit()
        .args(["-n", "10", "--snapshot-every", "1s"])
        .usage_error("--save");
    Gorgon::testkit()
        .args(["--debug", "--output", "json"])
        .usage_error("--debug prints each call");
    Gorgon::testkit()
        .args(["-n", "10", "--save"])
        .arg(&blocked)
        .args(["--snapshot-every", "soon"])
        .usage_error("soon");
}

#[test]
fn gorgon_report_refuses_what_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let cases = [
        (
            write("corrupt.json", "{\"schema_version\": 1, \"runs\": ["),
            "not valid JSON",
        ),
        (
            write(
                "package.json",
                r#"{"name": "left-pad", "version": "1.3.0"}"#,
            ),
            "is not a gorgon report",
        ),
        (write("list.json", "[1, 2, 3]"), "is not a gorgon report"),
        (
            write("future.json", r#"{"schema_version": 2, "runs": []}"#),
            "schema version 2",
        ),
        (
            write("partial.json", r#"{"schema_version": 1, "runs": []}"#),
            "missing field",
        ),
        (
            dir.path().join("absent.json").display().to_string(),
            "cannot read",
        ),
    ];
    for (path, why) in cases {
        let run = Gorgon::command(["report", &path]).usage_error(why);
        assert!(run.stdout.is_empty(), "{path}: {}", run.stdout);
    }
}

#[test]
fn an_interrupt_while_a_setup_is_stuck_ends_gorgon_and_its_workers() {
    let mut run = Gorgon::testkit()
        .args(["-n", "10", "-p", "2", "-q"])
        .set("setup_sleep_ms", 600000)
        .spawn();
    let workers = run.wait_for_workers(2);
    run.wait_for(
        "both workers in their setup",
        Duration::from_secs(30),
        || workers.iter().all(|&w| threads_in_setup(w) == 1),
    );
    run.signal(Signal::SIGINT);
    // One signal is enough: the workers have not started, so they are ended.
    run.finish(Duration::from_secs(10)).expect_exit(130);
    let left: Vec<u32> = workers.into_iter().filter(|&w| is_worker(w)).collect();
    assert!(left.is_empty(), "workers left behind: {left:?}");
}

#[test]
fn a_worker_told_to_stop_during_its_setup_exits_at_once() {
    // A `stop` (or the end of input) before `go` ends the worker without
    // waiting for its threads' setup, which may never return.
    use std::io::Write as _;
    let lib = plugin("gorgon-test-testkit");
    let mut worker = Gorgon::command(crate::support::worker_args(&serde_json::json!({
        "plugin": lib,
        "threads": 2,
        "share": {"offset": 0, "stride": 1, "count": 10},
        "interval_ms": 1000,
        "params": [{"key": "setup_sleep_ms", "value": "600000"}],
    })))
    .spawn_with_stdin();
    let pid = worker.pid();
    worker.wait_for(
        "both threads in their setup",
        Duration::from_secs(30),
        || threads_in_setup(pid) == 2,
    );
    writeln!(worker.stdin(), "stop").unwrap();
    worker.finish(Duration::from_secs(10)).ok();
}

#[test]
fn the_timeline_places_each_call_in_the_second_it_ended() {
    // At 4/s calls are due at 0, 0.25, 0.5 … s: four end in each second.
    let report = Gorgon::testkit()
        .args(["--rate", "4/s", "--duration", "3s", "-t", "2", "-q"])
        .ok()
        .json();
    let points = crate::support::per_second(&report.run().timeline_calls());
    assert_eq!(points, [(0, 4), (1000, 4), (2000, 4)]);
}

#[test]
fn the_status_line_counts_errors_as_the_report_does() {
    // Every fifth hash call returns FAIL, an error once --ok names SUCCESS.
    let run = Gorgon::run(plugin("gorgon-hash"))
        .args(["--duration", "6s", "--ok", "SUCCESS"])
        .with_failed_calls();
    let line = run
        .stderr
        .lines()
        // The first line with calls in it: the first second's line may come
        // before any result has arrived.
        .find(|l| l.starts_with("gorgon: run (1×1): ") && !l.contains(" 0 ops,"))
        .unwrap_or_else(|| panic!("no status line: {}", run.stderr));
    let errors: u64 = line
        .split(", ")
        .find_map(|part| part.strip_suffix(" errors"))
        .unwrap_or_else(|| panic!("{line}"))
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(errors > 0, "{line}");
    assert!(run.json().run().errors > errors);
}

#[test]
fn a_report_that_cannot_be_written_after_the_run_still_tells_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let numbers = dir.path().join("numbers");
    std::fs::create_dir(&numbers).unwrap();
    let mut run = Gorgon::testkit()
        .args(["--duration", "2s", "--threshold", "p99<1ns", "-q"])
        .set("sleep_us", 1000)
        .set("numbers_dir", numbers.display())
        .arg("--save")
        .arg(gone.join("result.json"))
        .output_format("table")
        .spawn();
    // The outputs were checked before the first call: once calls are
    // made, the directory goes.
    run.wait_for("a call", Duration::from_secs(30), || {
        numbers_written(&numbers) > 0
    });
    std::fs::remove_dir(&gone).unwrap();
    let result = run.finish(Duration::from_secs(30)).expect_exit(3);
    assert!(result.stderr.contains("cannot write"), "{}", result.stderr);
    assert!(
        result.stderr.contains("threshold failed: p99<1ns"),
        "{}",
        result.stderr
    );
    assert!(
        result.stdout.contains("Run 1"),
        "the table still went to stdout"
    );
}
