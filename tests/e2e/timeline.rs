//! The timeline of a run in the JSON report and its charts: points a fifth
//! of a second long over the first 2 s and a second long after, each with
//! its own start and length, and the calls in flight as each ended.

use crate::support::{Gorgon, TimelinePoint};

/// The length of the first intervals, and how long they last (2 s).
const FIRST_MS: u64 = 200;
const FIRST_SPAN_MS: u64 = 2_000;

/// Asserts that the points follow one another without gap or overlap from
/// the start, each rate per second of its own length, and that together
/// they last the run (give or take a call past its end).
fn assert_covers_the_run(points: &[TimelinePoint], elapsed_ns: u64) {
    let mut next_ms = 0;
    for point in points {
        assert_eq!(point.start_ms, next_ms, "{points:#?}");
        assert!(point.duration_ms > 0, "{points:#?}");
        // The length is in whole ms, the rate over the exact length.
        let calls = point.calls as f64 * 1000.0;
        let (low, high) = (
            calls / (point.duration_ms + 1) as f64,
            calls / point.duration_ms as f64,
        );
        assert!(
            (low * 0.999..=high * 1.001).contains(&point.ops_per_sec),
            "{point:?}: a rate per second of its own length"
        );
        next_ms += point.duration_ms;
    }
    let elapsed_ms = elapsed_ns / 1_000_000;
    assert!(
        next_ms.abs_diff(elapsed_ms) <= 100,
        "the points last {next_ms} ms, the run {elapsed_ms} ms: {points:#?}"
    );
}

/// The calls in flight of the points that have them, but the first and
/// the last (the run starting and winding down).
fn middle_in_flight(points: &[TimelinePoint]) -> Vec<u64> {
    let sampled: Vec<u64> = points.iter().filter_map(|p| p.in_flight).collect();
    assert!(sampled.len() >= 4, "{points:#?}");
    sampled[1..sampled.len() - 1].to_vec()
}

/// Asserts that the calls in flight were `lanes` as most intervals ended,
/// and never more: each lane is in a call but for an instant between two.
fn assert_in_flight(points: &[TimelinePoint], lanes: u64) {
    let middle = middle_in_flight(points);
    assert!(middle.iter().all(|&n| n <= lanes), "{middle:?}");
    let full = middle.iter().filter(|&&n| n == lanes).count();
    assert!(full * 2 >= middle.len(), "{lanes} in flight: {middle:?}");
    // The run's last interval ended with the run: nothing was sampled.
    assert_eq!(points.last().unwrap().in_flight, None, "{points:#?}");
}

#[test]
fn a_two_second_run_has_a_point_every_fifth_of_a_second() {
    let report = Gorgon::testkit()
        .args(["--duration", "2s", "-t", "2", "-q"])
        .set("sleep_us", 1000)
        .ok()
        .json();
    let run = report.run();
    let points = &run.timeline;
    assert!(points.len() >= 10, "{points:#?}");
    for (i, point) in points.iter().take(10).enumerate() {
        assert_eq!(point.start_ms, i as u64 * FIRST_MS, "{points:#?}");
        assert_eq!(point.duration_ms, FIRST_MS, "{points:#?}");
        assert!(point.calls > 0, "{points:#?}");
    }
    assert_covers_the_run(points, run.elapsed_ns);
    let calls: u64 = points.iter().map(|p| p.calls).sum();
    assert_eq!(calls, run.operations);
}

#[test]
fn a_count_run_of_about_a_second_has_several_points() {
    // 1,500 calls of at least 1 ms on 2 threads: 750 ms at the least.
    let report = Gorgon::testkit()
        .args(["-n", "1500", "-t", "2", "-q"])
        .set("sleep_us", 1000)
        .ok()
        .json();
    let run = report.run();
    assert!(run.elapsed_ns >= 750_000_000, "{}", run.elapsed_ns);
    assert!(run.timeline.len() >= 4, "{:#?}", run.timeline);
    assert_covers_the_run(&run.timeline, run.elapsed_ns);
    let calls: u64 = run.timeline.iter().map(|p| p.calls).sum();
    assert_eq!(calls, 1500);
}

#[test]
fn past_the_first_two_seconds_points_are_a_second_long() {
    let report = Gorgon::testkit()
        .args(["--duration", "4s", "-q"])
        .set("sleep_us", 2000)
        .ok()
        .json();
    let run = report.run();
    let points = &run.timeline;
    assert_covers_the_run(points, run.elapsed_ns);
    let lengths: Vec<(u64, u64)> = points.iter().map(|p| (p.start_ms, p.duration_ms)).collect();
    let (first, later): (Vec<_>, Vec<_>) = lengths
        .iter()
        .partition(|(start, _)| *start < FIRST_SPAN_MS);
    assert!(first.iter().all(|(_, ms)| *ms == FIRST_MS), "{lengths:?}");
    assert_eq!(first.len(), 10, "{lengths:?}");
    // 2-3 s and 3-4 s, then perhaps the end of a call past the 4 s.
    assert!(later.len() >= 2, "{lengths:?}");
    assert_eq!(later[0], (2_000, 1_000), "{lengths:?}");
    assert_eq!(later[1], (3_000, 1_000), "{lengths:?}");
}

#[test]
fn calls_in_flight_add_up_over_the_threads_of_every_worker() {
    // 23 ms sleeps do not line up with the interval ends, so that the
    // instants between two calls fall anywhere.
    let report = Gorgon::testkit()
        .args(["--duration", "2s", "-p", "2", "-t", "3", "-q"])
        .set("sleep_us", 23_000)
        .ok()
        .json();
    assert_in_flight(&report.run().timeline, 6);
}

#[test]
fn calls_in_flight_count_every_fiber() {
    // One thread a worker, four fibers each waiting in its call.
    let report = Gorgon::testkit()
        .args([
            "--duration",
            "2s",
            "-p",
            "2",
            "-t",
            "1",
            "--fibers",
            "4",
            "-q",
        ])
        .set("wait_us", 23_000)
        .ok()
        .json();
    assert_in_flight(&report.run().timeline, 8);
}

#[test]
fn the_throughput_chart_and_the_page_show_the_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("charts");
    let html = dir.path().join("report.html");
    Gorgon::testkit()
        .args(["--duration", "1s", "-t", "2", "-q"])
        .set("sleep_us", 5_000)
        .arg("--svg")
        .arg(&svg)
        .arg("--html")
        .arg(&html)
        .ok();
    let chart = std::fs::read_to_string(svg.join("timeline-run1.svg")).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    for text in [&chart, &page] {
        assert!(text.contains("calls in flight"), "the panel's axis");
        assert!(text.contains("in flight (below)"), "its legend entry");
    }
}
