//! Reports that lead with the verdict: the same verdict in the table, the
//! HTML page and the JSON as in the exit code; the open model shown where
//! it is measured; log axes; `gorgon compare`; tables that fit in 80
//! columns; control characters in labels escaped.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use scraper::{Html, Selector};
use serde_json::Value;

use crate::reports::svg_texts;
use crate::support::{Gorgon, Report};

/// `gorgon run` of the testkit writing the page to `page`.
fn run_with_page(page: &Path) -> Gorgon {
    Gorgon::testkit().arg("--html").arg(page)
}

fn page(path: &Path) -> Html {
    Html::parse_document(&std::fs::read_to_string(path).unwrap())
}

/// The text of the first element matching `selector`, whitespace folded.
fn text_of(page: &Html, selector: &str) -> String {
    let wanted = Selector::parse(selector).unwrap();
    let element = page
        .select(&wanted)
        .next()
        .unwrap_or_else(|| panic!("no {selector} in the page"));
    element
        .text()
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn count_of(page: &Html, selector: &str) -> usize {
    page.select(&Selector::parse(selector).unwrap()).count()
}

/// The verdict block's class, headline and exit code.
fn verdict_of(page: &Html) -> (String, String) {
    let selector = Selector::parse("#verdict").unwrap();
    let block = page.select(&selector).next().expect("a verdict block");
    let class = block.value().attr("class").unwrap().to_string();
    (class, text_of(page, "#verdict .headline"))
}

/// The verdict is the first thing in the page's main part: before any
/// table or chart.
fn assert_verdict_first(page: &Html) {
    let main = Selector::parse("main > *").unwrap();
    let order: Vec<String> = page
        .select(&main)
        .map(|e| {
            let id = e.value().attr("id").unwrap_or("");
            format!("{}#{id}", e.value().name())
        })
        .collect();
    assert_eq!(order[0], "h1#", "{order:?}");
    assert_eq!(order[1], "div#verdict", "{order:?}");
}

#[test]
fn a_passed_run_says_passed_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let saved = dir.path().join("r.json");
    let run = run_with_page(&html)
        .args(["-n", "200", "--save"])
        .arg(&saved)
        .output_format("table")
        .ok();
    assert!(
        run.stdout
            .starts_with("PASSED (exit 0): 200 calls, 0 errors"),
        "{}",
        run.stdout
    );
    let page = page(&html);
    assert_verdict_first(&page);
    let (class, headline) = verdict_of(&page);
    assert_eq!(
        (class.as_str(), headline.as_str()),
        ("verdict passed", "PASSED")
    );
    assert!(text_of(&page, "#verdict").contains("exit code 0"));
    assert!(
        text_of(&page, "#verdict").contains("Errors are panics and calls the plugin said failed")
    );
    let report = Report::read(&saved);
    assert_eq!(report.verdict.status, "passed");
    assert_eq!(report.verdict.exit_code, 0);
    assert_eq!(report.verdict.reasons, Vec::<String>::new());
    let command = report.command_line.as_deref().unwrap();
    assert!(
        command.starts_with("gorgon run --plugin ") && command.contains("-n 200"),
        "{command}"
    );
    assert!(text_of(&page, "dl.meta").contains("gorgon run --plugin"));
}

#[test]
fn a_failed_threshold_is_the_headline_with_its_measured_value() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let run = run_with_page(&html)
        .args([
            "-n",
            "300",
            "--threshold",
            "error_rate<5%",
            "--threshold",
            "p99<1h",
        ])
        .set("fail_every", 5)
        .expect_exit(1);
    let report = run.json();
    assert_eq!(report.verdict.status, "thresholds_failed");
    assert_eq!(report.verdict.exit_code, 1);
    let reason = &report.verdict.reasons[0];
    assert!(
        reason.contains("error_rate<5%") && reason.contains("20.00%"),
        "{reason}"
    );
    assert!(
        run.stderr
            .contains("threshold failed: error_rate<5% (measured 20.00%)"),
        "{}",
        run.stderr
    );

    let page = page(&html);
    assert_verdict_first(&page);
    let (class, headline) = verdict_of(&page);
    assert_eq!(class, "verdict thresholds_failed");
    assert_eq!(headline, "THRESHOLDS FAILED");
    let block = text_of(&page, "#verdict");
    assert!(
        block.contains("exit code 1") && block.contains("300 calls, 60 errors (20.00%)"),
        "{block}"
    );
    // Each threshold with its measured value and its result.
    let rows: Vec<String> = page
        .select(&Selector::parse("table.thresholds tbody tr").unwrap())
        .map(|tr| tr.text().collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("error_rate<5%") && rows[0].contains("20.00%") && rows[0].contains("FAIL"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("p99<1h") && rows[1].contains("pass"),
        "{rows:?}"
    );
    assert_eq!(count_of(&page, "td.fail"), 1);
}

#[test]
fn errors_with_no_threshold_fail_the_run_in_the_page_too() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let run = run_with_page(&html)
        .args(["-n", "100"])
        .set("fail_every", 5)
        .table()
        .with_failed_calls();
    assert!(
        run.stdout.starts_with("THRESHOLDS FAILED (exit 1)"),
        "{}",
        run.stdout
    );
    let (class, _) = verdict_of(&page(&html));
    assert_eq!(class, "verdict thresholds_failed", "never a green badge");
}

#[test]
fn an_interrupted_run_says_interrupted_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let mut run = run_with_page(&html)
        .args(["-n", "10000000"])
        .set("sleep_us", 1000)
        .spawn();
    run.wait_for_workers(1);
    // Interrupted once calls are counted: the first status line has some.
    run.wait_for_line(" of 10,000,000 ops (", Duration::from_secs(30));
    run.signal(Signal::SIGINT);
    let report = run.finish(Duration::from_secs(60)).expect_exit(130).json();
    assert_eq!(report.verdict.status, "interrupted");
    assert_eq!(report.verdict.exit_code, 130);
    assert!(report.run().operations > 0, "{report:#?}");
    let page = page(&html);
    let (class, headline) = verdict_of(&page);
    assert_eq!(
        (class.as_str(), headline.as_str()),
        ("verdict interrupted", "INTERRUPTED")
    );
    assert!(text_of(&page, "#verdict").contains("exit code 130"));
}

#[test]
fn an_open_model_run_shows_its_rates_starts_and_both_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let report = run_with_page(&html)
        .args(["--rate", "200/s", "--duration", "1s", "-t", "2"])
        .ok()
        .json();
    let open = report.run().open_model.as_ref().expect("an open model");
    let page = page(&html);
    assert_eq!(verdict_of(&page).1, "PASSED");
    assert_eq!(text_of(&page, "#open-model-1 dd.target"), "200/s");
    let achieved = text_of(&page, "#open-model-1 dd.achieved");
    assert!(achieved.ends_with("/s"), "{achieved}");
    assert!(text_of(&page, "#open-model-1 dd.late").contains("more than 1ms after they were due"));
    assert_eq!(
        text_of(&page, "#open-model-1 dd.dropped"),
        open.dropped.to_string()
    );
    let header = text_of(&page, "#open-model-1 table.latencies thead");
    assert!(
        header.contains("latency from the intended start") && header.contains("service time"),
        "{header}"
    );
    assert_eq!(count_of(&page, "#open-model-1 table.latencies tbody tr"), 5);
    assert!(text_of(&page, "#open-model-1").contains("coordinated omission"));
    // The terminal has them too.
    let table = run_with_page(&dir.path().join("t.html"))
        .args(["--rate", "100/s", "--duration", "1s"])
        .table()
        .ok();
    assert!(
        table.stdout.contains("Open model at 100/s: achieved "),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(" dropped."), "{}", table.stdout);
    assert!(
        table.stdout.contains("beside service time"),
        "{}",
        table.stdout
    );
}

/// A duration as the charts' ticks write it (`1ms`, `200µs`, `1.5s`).
fn tick_ns(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let value: f64 = text[..split].parse().ok()?;
    let unit = match &text[split..] {
        "ns" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    Some(value * unit)
}

#[test]
fn the_spectrum_has_a_logarithmic_latency_axis() {
    let dir = tempfile::tempdir().unwrap();
    let charts = dir.path().join("charts");
    Gorgon::testkit()
        .args(["-n", "2000", "--svg"])
        .arg(&charts)
        .set("stall_at", 1000)
        .set("stall_ms", 20)
        .ok();
    let path = charts.join("spectrum-run1.svg");
    let text = std::fs::read_to_string(&path).unwrap();
    let document = roxmltree::Document::parse(&text).unwrap();
    // The latency ticks: texts that read as durations, with their height.
    let mut ticks: Vec<(f64, f64)> = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| {
            let value = tick_ns(n.text()?.trim())?;
            let y: f64 = n.attribute("y")?.parse().ok()?;
            Some((value, y))
        })
        .collect();
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    ticks.dedup_by(|a, b| a.0 == b.0);
    assert!(ticks.len() >= 3, "too few latency ticks: {ticks:?}");
    let (low, high) = (ticks[0], ticks[ticks.len() - 1]);
    assert!(high.0 / low.0 >= 100.0, "the axis spans decades: {ticks:?}");
    // On a log axis the height is linear in log(latency), not in latency.
    let per_decade = (low.1 - high.1) / (high.0 / low.0).log10();
    for &(value, y) in &ticks {
        let expected = low.1 - per_decade * (value / low.0).log10();
        assert!(
            (y - expected).abs() < 4.0,
            "tick {value} at {y}, expected {expected}: {ticks:?}"
        );
    }
    let texts = svg_texts(&path);
    assert!(
        texts.iter().any(|t| t == "latency (log scale)"),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "99.9%"), "{texts:?}");
}

/// Saves a testkit run of `args` to `dir/name` and returns its path.
fn saved(dir: &Path, name: &str, gorgon: Gorgon) -> String {
    let path = dir.join(name).to_str().unwrap().to_string();
    gorgon.args(["--save", &path, "-q"]).ok();
    path
}

#[test]
fn compare_shows_the_changes_and_gates_them() {
    let dir = tempfile::tempdir().unwrap();
    let work = || Gorgon::testkit().args(["-n", "400"]).set("measure", "work");
    let base = saved(dir.path(), "base.json", work());
    let slow = saved(dir.path(), "slow.json", work().set("sleep_us", 2000));
    // The same result against itself: no change, the gates hold.
    let same = Gorgon::command(["compare", &base, &base])
        .args(["--threshold", "p99<+10%", "--threshold", "ops_per_sec>-5%"])
        .narrow()
        .ok();
    assert!(
        same.stdout.contains("Comparison thresholds: all passed"),
        "{}",
        same.stdout
    );
    for line in same.stdout.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line}");
    }
    // Two milliseconds a call more: the p99 gate fails, exit 1.
    let charts = dir.path().join("charts");
    let html = dir.path().join("compare.html");
    let worse = Gorgon::command(["compare", &base, &slow, "--threshold", "p99<+10%", "--svg"])
        .arg(&charts)
        .arg("--html")
        .arg(&html)
        .expect_exit(1);
    assert!(
        worse
            .stderr
            .contains("comparison threshold failed: p99<+10%"),
        "{}",
        worse.stderr
    );
    let p99 = worse
        .stdout
        .lines()
        .find(|l| l.contains(" p99 "))
        .unwrap_or_else(|| panic!("no p99 row:\n{}", worse.stdout));
    assert!(p99.contains('+') && p99.contains('%'), "{p99}");
    let texts = svg_texts(&charts.join("compare-spectrum-run1.svg"));
    for want in ["OK (base)", "OK (new)", "work< (base)", "work< (new)"] {
        assert!(texts.iter().any(|t| t == want), "{want} not in {texts:?}");
    }
    let page = page(&html);
    assert_eq!(count_of(&page, "svg"), 1);
    assert!(text_of(&page, "pre.compare").contains("p99<+10%"));
    let pre = page
        .select(&Selector::parse("pre.compare").unwrap())
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert!(
        pre.lines().filter(|l| l.starts_with("│ ")).count() >= 6,
        "the table, line by line: {pre}"
    );

    // A result of another plugin is refused in one sentence.
    let mut other: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    other["plugin"] = "libother.so".into();
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    Gorgon::command(["compare", &base])
        .arg(&other_path)
        .usage_error("different plugins");
    Gorgon::command(["compare", &base, &base, "--threshold", "p99<10%"])
        .usage_error("signed change in percent");
}

#[test]
fn control_characters_in_labels_are_escaped_but_kept_in_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let label = "red\u{1b}[31m\u{7}line\nbreak";
    let with_label = || Gorgon::testkit().args(["-n", "20"]).set("label", label);
    let run = with_label().arg("--html").arg(&html).table().ok();
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{7}'),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains(r"red\u{1b}[31m\u{7}line\nbreak"),
        "{}",
        run.stdout
    );
    let csv = with_label().output_format("csv").ok();
    assert!(!csv.stdout.contains('\u{1b}'), "{:?}", csv.stdout);
    assert_eq!(
        csv.stdout.lines().count(),
        3,
        "one line per row: {}",
        csv.stdout
    );
    let page_text = std::fs::read_to_string(&html).unwrap();
    assert!(!page_text.contains('\u{1b}') && !page_text.contains('\u{7}'));
    let report = with_label().ok().json();
    assert_eq!(
        report.run().labels(),
        [(label, 20)].into(),
        "the JSON keeps it"
    );
}

#[test]
fn tables_fit_in_80_columns_and_shorten_long_labels() {
    let run = Gorgon::testkit()
        .args(["-n", "200", "--threshold", "p99<1h"])
        .set("label", "a-very-long-result-label-".repeat(4))
        .output_format("table")
        .narrow()
        .ok();
    for line in run
        .stdout
        .lines()
        .filter(|l| l.starts_with(['┌', '│', '╞', '└']))
    {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 ({}): {line}",
            line.chars().count()
        );
    }
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("│ a-very-long-"))
        .unwrap_or_else(|| panic!("no row for the label:\n{}", run.stdout));
    assert!(row.contains('…') && !row.contains("label-a-very"), "{row}");
}
