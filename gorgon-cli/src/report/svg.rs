//! SVG charts drawn with plotters' SVG backend only: no system fonts, no
//! fontconfig, so they are drawn the same on a laptop and in CI, and text
//! stays `<text>` that any browser renders.
//!
//! For a suite of two runs or more: throughput per run and latency (avg,
//! p50, p90, p99, max) per run. For each run: the latency percentile
//! spectrum of each result label and measurement (both axes logarithmic,
//! as HdrHistogram plots show it), latency (p50, p90, p99) and errors over
//! time, and throughput over time per label. A label has one colour in
//! every chart of a report, and every legend sits beside the plot, never
//! over the data.

use hdrhistogram::Histogram;
use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use std::collections::BTreeMap;

use super::model::{Report, RunReport};
use super::text::{escape_control, shorten, trimmed};
use crate::outcome::TimelinePoint;
use crate::shape::Success;
use crate::stats::histogram_map;
use crate::units::rate;

/// One chart, ready to be written to a file or inlined in a page.
pub struct Chart {
    /// The run it shows (its index), or `None` for a chart of the suite.
    pub run: Option<usize>,
    pub file_name: String,
    pub title: String,
    pub svg: String,
}

const SIZE: (u32, u32) = (960, 540);
const FONT: &str = "sans-serif";

/// Tableau 10: distinct, and readable for most colour-blind people.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Every chart of the report, in the order a page shows them. The charts
/// that compare runs are left out of a single run: one bar compares
/// nothing.
pub fn render(report: &Report) -> Result<Vec<Chart>, String> {
    let mut charts = Vec::new();
    if report.runs.len() > 1 {
        charts.push(throughput(report)?);
        charts.push(latency(report)?);
    }
    let colors = Colors::of(report);
    for run in &report.runs {
        charts.push(spectrum(run, &colors)?);
        charts.push(latency_over_time(run, report)?);
        charts.push(timeline(run, &colors)?);
    }
    Ok(charts)
}

/// One colour per result label and measurement across all the charts of
/// a report, in the order they first appear.
pub struct Colors(BTreeMap<String, RGBColor>);

impl Colors {
    pub fn of(report: &Report) -> Colors {
        Colors::of_names(report.runs.iter().flat_map(|run| {
            run.results
                .iter()
                .map(|r| r.name.clone())
                .chain(run.measurements.iter().map(|m| format!("{}<", m.name)))
        }))
    }

    pub fn of_names(names: impl IntoIterator<Item = String>) -> Colors {
        let mut map = BTreeMap::new();
        for name in names {
            let next = map.len();
            map.entry(name).or_insert_with(|| color(next));
        }
        Colors(map)
    }

    /// The colour of a label, or of a measurement written `name<`.
    pub fn get(&self, name: &str) -> RGBColor {
        self.0.get(name).copied().unwrap_or(BLACK)
    }
}

/// Draws on a fresh SVG canvas and returns its text.
fn draw(
    paint: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        paint(&root)?;
        root.present().map_err(chart_error)?;
    }
    Ok(text)
}

fn chart_error(error: impl std::fmt::Display) -> String {
    format!("cannot draw a chart: {error}")
}

/// A number for an axis label: no trailing zeros, k/M for big ones.
fn short(value: f64) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e4 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = format!("{scaled:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// `1: 2×4`: how the axes name a run.
fn run_name(run: &RunReport) -> String {
    format!("{}: {}×{}", run.index, run.processes, run.threads)
}

/// `run 1 (2 × 4)` for titles.
fn run_title(run: &RunReport) -> String {
    format!(
        "run {} ({} process{} × {} thread{})",
        run.index,
        run.processes,
        if run.processes == 1 { "" } else { "es" },
        run.threads,
        if run.threads == 1 { "" } else { "s" }
    )
}

fn title_style() -> TextStyle<'static> {
    (FONT, 24).into_font().into()
}

fn label_style() -> TextStyle<'static> {
    (FONT, 15).into_font().into()
}

fn axis_style() -> TextStyle<'static> {
    (FONT, 17).into_font().into()
}

/// A chart on `area` titled `title`, with the margins and label areas
/// every chart of a report shares.
fn chart_on<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, title_style())
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(80);
    builder
}

/// A latency axis over `low..high` ns: logarithmic, so a long tail does
/// not flatten the body, with 1-2-5 ticks per decade.
fn latency_axis(low: f64, high: f64) -> WithKeyPoints<LogCoord<f64>> {
    (low..high)
        .log_scale()
        .with_key_points(log_ticks(low, high))
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub enum Mark {
    Line,
    Dashed,
    Bar,
}

/// The width of the strip beside the plot where the legend goes.
const LEGEND_WIDTH: u32 = 210;

/// Splits the canvas into the plot and the legend strip at its right, so
/// that no legend ever covers data.
fn with_legend<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> (
    DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) {
    root.split_horizontally(SIZE.0 - LEGEND_WIDTH)
}

/// Draws the legend entries down the strip, beside the plot. Long names
/// are shortened with an ellipsis (the tables have them in full).
fn side_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    entries: &[(String, RGBColor, Mark)],
) -> Result<(), String> {
    let top = 70;
    for (i, (name, color, mark)) in entries.iter().enumerate() {
        let y = top + i as i32 * 24;
        let style = color.stroke_width(3);
        match mark {
            Mark::Line => area
                .draw(&PathElement::new(vec![(4, y), (28, y)], style))
                .map_err(chart_error)?,
            Mark::Dashed => {
                for x in [4, 14, 24] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 6, y)], style))
                        .map_err(chart_error)?;
                }
            }
            Mark::Bar => area
                .draw(&Rectangle::new([(8, y - 7), (24, y + 7)], color.filled()))
                .map_err(chart_error)?,
        }
        let text = shorten(&escape_control(name), 22).into_owned();
        let centred = label_style().pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw(&Text::new(text, (36, y), centred))
            .map_err(chart_error)?;
    }
    Ok(())
}

/// Readable ticks for a log axis over `low..high`: 1, 2 and 5 of each
/// decade, or only the powers of ten when that would be too many.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    let low = low.max(f64::MIN_POSITIVE);
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let within = |v: &f64| *v >= low && *v <= high;
    let mut ticks: Vec<f64> = (first..=last)
        .flat_map(|d| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(d)))
        .filter(within)
        .collect();
    if ticks.len() > 12 {
        ticks.retain(|v| (v.log10() - v.log10().round()).abs() < 1e-9);
    }
    if ticks.len() < 2 {
        ticks = vec![low, (low * high).sqrt(), high];
    }
    ticks
}

/// A latency tick without needless zeros: `1ms`, `200µs`, `1.5s`.
fn latency_tick(ns: f64) -> String {
    trimmed(ns.round().max(0.0) as u64)
}

/// The x axis of the per-run charts: continuous, so that a run's bars can
/// sit around its whole number, with ticks at the whole numbers only.
struct RunsAxis {
    inner: RangedCoordf64,
    runs: usize,
}

/// The look every chart's grid and axis texts share.
trait HouseStyle {
    fn house_style(&mut self) -> &mut Self;
}

impl<'a, X, Y, DB> HouseStyle for plotters::chart::MeshStyle<'a, '_, X, Y, DB>
where
    X: Ranged,
    Y: Ranged,
    DB: DrawingBackend,
{
    fn house_style(&mut self) -> &mut Self {
        self.axis_desc_style(axis_style())
            .label_style(label_style())
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12))
    }
}

/// The grid and axis labels of a chart whose x axis is the runs of a suite.
fn draw_runs_mesh<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RunsAxis, Y>>,
    report: &Report,
    y_desc: &str,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let name = |x: &f64| run_at(report, *x).map(run_name).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("run (processes × threads)")
        .y_desc(y_desc)
        .x_label_formatter(&name)
        .y_label_formatter(&|v| short(*v))
        .house_style()
        .draw()
        .map_err(chart_error)
}

fn runs_axis(runs: usize) -> RunsAxis {
    RunsAxis {
        inner: (0.5..runs.max(1) as f64 + 0.5).into(),
        runs,
    }
}

impl Ranged for RunsAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (1..=self.runs).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

fn run_at(report: &Report, x: f64) -> Option<&RunReport> {
    let index = x.round();
    if (x - index).abs() > 1e-6 || index < 1.0 {
        return None;
    }
    report.runs.get(index as usize - 1)
}

/// Throughput (ops/s) of each run of the suite. One series, named by the
/// axis: no legend.
fn throughput(report: &Report) -> Result<Chart, String> {
    let title = "Throughput per run".to_string();
    let top = report
        .runs
        .iter()
        .map(|r| r.all.ops_per_sec)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let svg = draw(|root| {
        let mut chart = chart_on(root, &title)
            .margin_right(40)
            .build_cartesian_2d(runs_axis(report.runs.len()), 0.0..top)
            .map_err(chart_error)?;
        draw_runs_mesh(&mut chart, report, "throughput (ops/s)")?;
        let fill = color(0);
        chart
            .draw_series(report.runs.iter().map(|run| {
                let x = run.index as f64;
                Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, run.all.ops_per_sec)],
                    fill.filled(),
                )
            }))
            .map_err(chart_error)?;
        chart
            .draw_series(report.runs.iter().map(|run| {
                Text::new(
                    rate(run.all.ops_per_sec),
                    (run.index as f64, run.all.ops_per_sec + top * 0.01),
                    label_style().pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    )),
                )
            }))
            .map_err(chart_error)?;
        Ok(())
    })?;
    Ok(Chart {
        run: None,
        file_name: "throughput.svg".to_string(),
        title,
        svg,
    })
}

/// The latency figures the per-run chart compares, with their names.
const LATENCY_SERIES: [&str; 5] = ["avg", "p50", "p90", "p99", "max"];

fn latency_figures(run: &RunReport) -> [u64; 5] {
    let s = &run.all;
    [s.avg_ns, s.p50_ns, s.p90_ns, s.p99_ns, s.max_ns]
}

/// A log range in ns around `values`, with room below the lowest.
fn log_range(values: impl Iterator<Item = u64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|&v| v > 0)
        .fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if high == 0 {
        return (1.0, 1_000.0);
    }
    let low = low as f64 / 1.6;
    let high = (high as f64 * 1.6).max(low * 10.0);
    (low, high)
}

/// Latency (avg, p50, p90, p99, max) of each run of the suite, on a log
/// axis so that a long max does not flatten the rest.
fn latency(report: &Report) -> Result<Chart, String> {
    let title = "Latency per run (all calls)".to_string();
    let (bottom, top) = log_range(report.runs.iter().flat_map(latency_figures));
    let svg = draw(|root| {
        let (plot, legend_area) = with_legend(root);
        let mut chart = chart_on(&plot, &title)
            .build_cartesian_2d(runs_axis(report.runs.len()), latency_axis(bottom, top))
            .map_err(chart_error)?;
        let name = |x: &f64| run_at(report, *x).map(run_name).unwrap_or_default();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("run (processes × threads)")
            .y_desc("latency (log scale)")
            .x_label_formatter(&name)
            .y_label_formatter(&|v| latency_tick(*v))
            .house_style()
            .draw()
            .map_err(chart_error)?;
        let width = 0.8 / LATENCY_SERIES.len() as f64;
        let mut entries = Vec::new();
        for (k, series) in LATENCY_SERIES.iter().enumerate() {
            let fill = color(k);
            chart
                .draw_series(report.runs.iter().map(|run| {
                    let left = run.index as f64 - 0.4 + width * k as f64;
                    let value = (latency_figures(run)[k] as f64).max(bottom);
                    Rectangle::new([(left, bottom), (left + width * 0.9, value)], fill.filled())
                }))
                .map_err(chart_error)?;
            entries.push((series.to_string(), fill, Mark::Bar));
        }
        side_legend(&legend_area, &entries)
    })?;
    Ok(Chart {
        run: None,
        file_name: "latency.svg".to_string(),
        title,
        svg,
    })
}

/// One line of a spectrum chart.
pub struct Spectrum {
    pub name: String,
    pub color: RGBColor,
    pub mark: Mark,
    /// (1 / (1 - quantile), latency in ns), by increasing quantile.
    pub points: Vec<(f64, u64)>,
}

impl Spectrum {
    pub fn of(
        name: String,
        color: RGBColor,
        mark: Mark,
        histogram: &Histogram<u64>,
        x_max: f64,
    ) -> Spectrum {
        let points = histogram
            .iter_quantiles(5)
            .map(|step| {
                let q = step.quantile_iterated_to();
                let x = if q >= 1.0 {
                    x_max
                } else {
                    (1.0 / (1.0 - q)).min(x_max)
                };
                (x, step.value_iterated_to().max(1))
            })
            .collect();
        Spectrum {
            name,
            color,
            mark,
            points,
        }
    }
}

/// `90%`, `99.9%`: the percentile at x = 1 / (1 - q).
fn percentile_label(x: f64) -> String {
    let percent = (1.0 - 1.0 / x) * 100.0;
    let text = format!("{percent:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The x axis' end for `calls` calls: beyond 1 - 1/count the percentiles
/// repeat the max. Returns the decades and 10^decades.
pub fn spectrum_extent(calls: u64) -> (i32, f64) {
    let decades = (calls.max(1) as f64).log10().ceil().clamp(2.0, 6.0) as i32;
    (decades, 10f64.powi(decades))
}

/// Latency by percentile for each result label and measurement of a run.
fn spectrum(run: &RunReport, colors: &Colors) -> Result<Chart, String> {
    let title = format!("Latency by percentile, {}", run_title(run));
    let (decades, x_max) = spectrum_extent(run.all.count);
    let mut lines = Vec::new();
    for (named, measurement) in run
        .results
        .iter()
        .map(|r| (r, false))
        .chain(run.measurements.iter().map(|m| (m, true)))
    {
        let histogram = histogram_map::decode(&named.histogram).map_err(|e| {
            format!(
                "the histogram of {:?} in run {} is unreadable: {e}",
                named.name, run.index
            )
        })?;
        if histogram.is_empty() {
            continue;
        }
        let (name, key) = if measurement {
            (
                format!("{}< (measurement)", named.name),
                format!("{}<", named.name),
            )
        } else {
            (named.name.clone(), named.name.clone())
        };
        let mark = if measurement {
            Mark::Dashed
        } else {
            Mark::Line
        };
        lines.push(Spectrum::of(
            name,
            colors.get(&key),
            mark,
            &histogram,
            x_max,
        ));
    }
    let svg = spectrum_svg(&title, &lines, decades, x_max)?;
    Ok(Chart {
        run: Some(run.index),
        file_name: format!("spectrum-run{}.svg", run.index),
        title,
        svg,
    })
}

/// A percentile spectrum: the x axis spreads the tail (90%, 99%, 99.9%…)
/// evenly as 1/(1 − q) on a log scale, the latency axis is logarithmic
/// too, so the body and the tail both read, as HdrHistogram plots them.
pub fn spectrum_svg(
    title: &str,
    lines: &[Spectrum],
    decades: i32,
    x_max: f64,
) -> Result<String, String> {
    let (low, high) = log_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    draw(|root| {
        let (plot, legend_area) = with_legend(root);
        let x_axis = (1.0..x_max)
            .log_scale()
            .with_key_points((0..=decades).map(|d| 10f64.powi(d)).collect());
        let mut chart = chart_on(&plot, title)
            .build_cartesian_2d(x_axis, latency_axis(low, high))
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale of 1/(1 − q))")
            .y_desc("latency (log scale)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| latency_tick(*v))
            .house_style()
            .draw()
            .map_err(chart_error)?;
        let mut entries = Vec::new();
        for line in lines {
            let points: Vec<(f64, f64)> =
                line.points.iter().map(|&(x, ns)| (x, ns as f64)).collect();
            let stroke = line.color.stroke_width(2);
            match line.mark {
                Mark::Dashed => {
                    chart
                        .draw_series(DashedLineSeries::new(points, 8, 5, stroke))
                        .map_err(chart_error)?;
                }
                _ => {
                    chart
                        .draw_series(LineSeries::new(points, stroke))
                        .map_err(chart_error)?;
                }
            }
            entries.push((line.name.clone(), line.color, line.mark));
        }
        if lines.is_empty() {
            entries.push(("no calls".to_string(), BLACK, Mark::Line));
        }
        side_legend(&legend_area, &entries)
    })
}

/// Seconds from the start to the middle of each interval of a run.
fn middles(run: &RunReport) -> Vec<f64> {
    run.timeline
        .iter()
        .map(|p| (p.start_ms as f64 + p.duration_ms as f64 / 2.0) / 1000.0)
        .collect()
}

/// The end of the time axis: the run's end (a sub-second run keeps its
/// own scale rather than sitting in a corner of a one-second axis).
fn time_end(run: &RunReport, middles: &[f64]) -> f64 {
    let last = run
        .timeline
        .last()
        .map_or(0.0, |p| (p.start_ms + p.duration_ms) as f64 / 1000.0);
    (run.elapsed_ns as f64 / 1e9)
        .max(last)
        .max(middles.last().copied().unwrap_or(0.0) * 1.1)
        .max(0.01)
        * 1.02
}

/// The errors of each interval: panics and, with `--ok`, labels not
/// listed; without it the calls the plugin said failed, shared out over
/// the intervals as the label's calls were (the timeline counts labels,
/// not failures).
fn errors_per_interval(run: &RunReport, report: &Report) -> Vec<f64> {
    let success = Success {
        ok: report.load.ok.clone(),
    };
    let failed_share: BTreeMap<&str, f64> = run
        .results
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.failed as f64 / r.summary.count.max(1) as f64,
            )
        })
        .collect();
    run.timeline
        .iter()
        .map(|point| {
            let errors: u64 = point
                .results
                .iter()
                .map(|(label, &calls)| {
                    let share = failed_share.get(label.as_str()).copied().unwrap_or(0.0);
                    let failed = (calls as f64 * share).round() as u64;
                    success.errors_among(label, calls, failed)
                })
                .sum();
            errors as f64 * 1000.0 / point.duration_ms.max(1) as f64
        })
        .collect()
}

/// A short run has a few points: they are drawn as dots with their value
/// written beside them rather than as a line that says nothing.
const FEW_POINTS: usize = 6;

/// Draws one line through `points`, a dot at each; with few points, each
/// value written beside its dot in the line's colour.
fn draw_line<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    few: bool,
    label: impl Fn(f64) -> String,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64>,
{
    let stroke = color.stroke_width(2);
    chart
        .draw_series(LineSeries::new(points.clone(), stroke).point_size(3))
        .map_err(chart_error)?;
    if few {
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|(t, v)| Text::new(label(v), (t, v), label_style().color(&color))),
            )
            .map_err(chart_error)?;
    }
    Ok(())
}

/// (seconds from the start, latency in ns) per interval.
type Line = Vec<(f64, u64)>;

/// The span of a point on the time axis, in seconds, narrowed so that
/// neighbouring bars stand apart.
fn bar_span(point: &TimelinePoint) -> (f64, f64) {
    let start = point.start_ms as f64 / 1000.0;
    let length = point.duration_ms as f64 / 1000.0;
    (start + length * 0.1, start + length * 0.9)
}

/// p50, p90 and p99 per interval (log axis) and errors per second (right
/// axis) of a run. An interval in which no call ended has no latency: the
/// lines skip it rather than dip to the axis.
fn latency_over_time(run: &RunReport, report: &Report) -> Result<Chart, String> {
    let title = format!("Latency and errors over time, {}", run_title(run));
    let x = middles(run);
    let end = time_end(run, &x);
    let measured: Vec<(f64, &TimelinePoint)> = x
        .iter()
        .copied()
        .zip(&run.timeline)
        .filter(|(_, p)| p.calls > 0)
        .collect();
    let percentile = |pick: fn(&TimelinePoint) -> u64| -> Line {
        measured.iter().map(|&(t, p)| (t, pick(p))).collect()
    };
    let series: [(&str, Line, RGBColor); 3] = [
        ("p50", percentile(|p| p.p50_ns), color(0)),
        ("p90", percentile(|p| p.p90_ns), color(1)),
        ("p99", percentile(|p| p.p99_ns), color(2)),
    ];
    let errors = errors_per_interval(run, report);
    let errors_top = errors.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
    let (low, high) = log_range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
    let few = measured.len() <= FEW_POINTS;
    let svg = draw(|root| {
        let (plot, legend_area) = with_legend(root);
        let mut chart = chart_on(&plot, &title)
            .right_y_label_area_size(70)
            .build_cartesian_2d(0.0..end, latency_axis(low, high))
            .map_err(chart_error)?
            .set_secondary_coord::<RangedCoordf64, RangedCoordf64>(
                (0.0..end).into(),
                (0.0..errors_top).into(),
            );
        chart
            .configure_mesh()
            .x_desc("time since the start (s)")
            .y_desc("latency (log scale)")
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| latency_tick(*v))
            .house_style()
            .draw()
            .map_err(chart_error)?;
        chart
            .configure_secondary_axes()
            .y_desc("errors per second")
            .y_label_formatter(&|v| short(*v))
            .axis_desc_style(axis_style())
            .label_style(label_style())
            .draw()
            .map_err(chart_error)?;
        let mut entries = Vec::new();
        // Errors as bars under the lines, on the right axis, each as wide
        // as its interval. The red of the page's failed verdict,
        // lightened so the lines stay readable over it.
        let bar = RGBColor(0xf7, 0xcd, 0xd0);
        chart
            .draw_secondary_series(
                run.timeline
                    .iter()
                    .zip(&errors)
                    .filter(|(_, &e)| e > 0.0)
                    .map(|(point, &e)| {
                        let (from, to) = bar_span(point);
                        Rectangle::new([(from, 0.0), (to, e)], bar.filled())
                    }),
            )
            .map_err(chart_error)?;
        entries.push(("errors/s (right axis)".to_string(), bar, Mark::Bar));
        for (name, values, stroke_color) in &series {
            let points = values
                .iter()
                .map(|&(t, ns)| (t, (ns as f64).max(low)))
                .collect();
            draw_line(&mut chart, points, *stroke_color, few, latency_tick)?;
            entries.push((name.to_string(), *stroke_color, Mark::Line));
        }
        side_legend(&legend_area, &entries)
    })?;
    Ok(Chart {
        run: Some(run.index),
        file_name: format!("latency-run{}.svg", run.index),
        title,
        svg,
    })
}

/// The colour of the calls in flight: apart from the palette the labels
/// take their colours from.
const IN_FLIGHT: RGBColor = RGBColor(0x6a, 0x3d, 0x9a);

/// The height of the calls-in-flight panel under the throughput.
const PANEL_HEIGHT: u32 = 170;

/// Throughput per interval of a run: all calls, and each result label in
/// its colour when there are several; under it, in a panel of its own on
/// the same time axis, the calls in flight as each interval ended.
fn timeline(run: &RunReport, colors: &Colors) -> Result<Chart, String> {
    let title = format!("Throughput over time, {}", run_title(run));
    let x = middles(run);
    let end = time_end(run, &x);
    let mut series: Vec<(String, Vec<f64>, RGBColor)> = vec![(
        "all calls".to_string(),
        run.timeline.iter().map(|p| p.ops_per_sec).collect(),
        RGBColor(0x33, 0x33, 0x33),
    )];
    if run.results.len() > 1 {
        for result in &run.results {
            let per_sec = run
                .timeline
                .iter()
                .map(|p| {
                    p.results.get(&result.name).copied().unwrap_or(0) as f64 * 1000.0
                        / p.duration_ms.max(1) as f64
                })
                .collect();
            series.push((result.name.clone(), per_sec, colors.get(&result.name)));
        }
    }
    let top = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    // Sampled as each interval ended: drawn at its end.
    let in_flight: Vec<(f64, f64)> = run
        .timeline
        .iter()
        .filter_map(|p| {
            let n = p.in_flight?;
            Some(((p.start_ms + p.duration_ms) as f64 / 1000.0, n as f64))
        })
        .collect();
    let few = x.len() <= FEW_POINTS;
    let svg = draw(|root| {
        let (plot, legend_area) = with_legend(root);
        let (upper, panel) = if in_flight.is_empty() {
            (plot, None)
        } else {
            let (upper, lower) = plot.split_vertically(SIZE.1 - PANEL_HEIGHT);
            (upper, Some(lower))
        };
        let mut chart = chart_on(&upper, &title)
            .build_cartesian_2d(0.0..end, 0.0..top)
            .map_err(chart_error)?;
        // With the panel, the time axis is named once, under it.
        let x_desc = match panel {
            Some(_) => "",
            None => "time since the start (s)",
        };
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("throughput (ops/s)")
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .house_style()
            .draw()
            .map_err(chart_error)?;
        let mut entries = Vec::new();
        for (name, values, stroke_color) in &series {
            let points = x.iter().copied().zip(values.iter().copied()).collect();
            draw_line(&mut chart, points, *stroke_color, few, rate)?;
            entries.push((name.clone(), *stroke_color, Mark::Line));
        }
        if let Some(panel) = panel {
            in_flight_panel(&panel, &in_flight, end, few)?;
            entries.push(("in flight (below)".to_string(), IN_FLIGHT, Mark::Line));
        }
        side_legend(&legend_area, &entries)
    })?;
    Ok(Chart {
        run: Some(run.index),
        file_name: format!("timeline-run{}.svg", run.index),
        title,
        svg,
    })
}

/// The calls in flight over `0..end` s, in the panel under the throughput.
fn in_flight_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    in_flight: &[(f64, f64)],
    end: f64,
    few: bool,
) -> Result<(), String> {
    let top = in_flight.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .margin_top(4)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("time since the start (s)")
        .y_desc("calls in flight")
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .y_labels(4)
        .house_style()
        .draw()
        .map_err(chart_error)?;
    draw_line(&mut chart, in_flight.to_vec(), IN_FLIGHT, few, short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_read_well() {
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(12.0), "12");
        assert_eq!(short(25_000.0), "25k");
        assert_eq!(short(1_500_000.0), "1.5M");
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
    }
}
