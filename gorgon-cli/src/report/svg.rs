//! SVG charts drawn with plotters' SVG backend only: no system fonts, no
//! fontconfig, so they are drawn the same on a laptop and in CI, and text
//! stays `<text>` that any browser renders.
//!
//! For a suite: throughput per run and latency (avg, p50, p90, p99, max) per
//! run. For each run: the latency percentile spectrum of each result label
//! and measurement (log axis, as HdrHistogram plots show it), and the
//! timeline of ops/s and p99 per second.

use hdrhistogram::Histogram;
use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::model::{Report, RunReport};
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

/// Every chart of the report, in the order a page shows them.
pub fn render(report: &Report) -> Result<Vec<Chart>, String> {
    let mut charts = vec![throughput(report)?, latency(report)?];
    for run in &report.runs {
        charts.push(spectrum(run)?);
        charts.push(timeline(run)?);
    }
    Ok(charts)
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

/// A latency unit for an axis: values are divided by `ns`.
#[derive(Clone, Copy)]
struct Unit {
    name: &'static str,
    ns: f64,
}

impl Unit {
    /// The largest unit in which `max_ns` is at least 1.
    fn for_max(max_ns: u64) -> Unit {
        let (name, ns) = match max_ns {
            n if n >= 1_000_000_000 => ("s", 1e9),
            n if n >= 1_000_000 => ("ms", 1e6),
            n if n >= 1_000 => ("µs", 1e3),
            _ => ("ns", 1.0),
        };
        Unit { name, ns }
    }

    fn of(self, ns: u64) -> f64 {
        ns as f64 / self.ns
    }
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

/// A legend entry. plotters sizes the legend box from an estimate of the
/// text's width (it knows no font metrics without system fonts); two
/// trailing spaces, which SVG does not render, keep wide capitals inside.
fn legend_text(name: &str) -> String {
    format!("{name}  ")
}

/// The legend box, drawn the same way on every chart.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .label_font(label_style())
        .margin(12)
        .draw()
        .map_err(chart_error)
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

/// Throughput (ops/s) of each run of the suite.
fn throughput(report: &Report) -> Result<Chart, String> {
    let title = "Throughput per run".to_string();
    let top = report
        .runs
        .iter()
        .map(|r| r.all.ops_per_sec)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.3;
    let svg = draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, title_style())
            .margin(16)
            .margin_right(40)
            .x_label_area_size(56)
            .y_label_area_size(80)
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
            .map_err(chart_error)?
            .label(legend_text("ops/s"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], fill.filled()));
        chart
            .draw_series(report.runs.iter().map(|run| {
                Text::new(
                    rate(run.all.ops_per_sec),
                    (run.index as f64, run.all.ops_per_sec + top * 0.02),
                    label_style().pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    )),
                )
            }))
            .map_err(chart_error)?;
        legend(&mut chart, SeriesLabelPosition::UpperRight)
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

/// Latency (avg, p50, p90, p99, max) of each run of the suite, on a log
/// axis so that a long max does not flatten the rest.
fn latency(report: &Report) -> Result<Chart, String> {
    let title = "Latency per run (all calls)".to_string();
    let max_ns = report.runs.iter().map(|r| r.all.max_ns).max().unwrap_or(0);
    let min_ns = report
        .runs
        .iter()
        .flat_map(latency_figures)
        .filter(|&v| v > 0)
        .min()
        .unwrap_or(1);
    let unit = Unit::for_max(max_ns.max(1));
    let bottom = unit.of(min_ns) / 2.0;
    // A decade above the highest bar keeps the legend clear of the bars.
    let top = (unit.of(max_ns) * 10.0).max(bottom * 100.0);
    let svg = draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, title_style())
            .margin(16)
            .margin_right(40)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(runs_axis(report.runs.len()), (bottom..top).log_scale())
            .map_err(chart_error)?;
        draw_runs_mesh(
            &mut chart,
            report,
            &format!("latency ({}, log scale)", unit.name),
        )?;
        let width = 0.8 / LATENCY_SERIES.len() as f64;
        for (k, series) in LATENCY_SERIES.iter().enumerate() {
            let fill = color(k);
            chart
                .draw_series(report.runs.iter().map(|run| {
                    let left = run.index as f64 - 0.4 + width * k as f64;
                    let value = unit.of(latency_figures(run)[k]).max(bottom);
                    Rectangle::new([(left, bottom), (left + width * 0.9, value)], fill.filled())
                }))
                .map_err(chart_error)?
                .label(legend_text(series))
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], fill.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })?;
    Ok(Chart {
        run: None,
        file_name: "latency.svg".to_string(),
        title,
        svg,
    })
}

/// One line of a spectrum chart.
struct Spectrum {
    name: String,
    /// (1 / (1 - quantile), latency in ns), by increasing quantile.
    points: Vec<(f64, u64)>,
}

impl Spectrum {
    fn of(name: String, histogram: &Histogram<u64>, x_max: f64) -> Spectrum {
        let points = histogram
            .iter_quantiles(5)
            .map(|step| {
                let q = step.quantile_iterated_to();
                let x = if q >= 1.0 {
                    x_max
                } else {
                    (1.0 / (1.0 - q)).min(x_max)
                };
                (x, step.value_iterated_to())
            })
            .collect();
        Spectrum { name, points }
    }
}

/// `90%`, `99.9%`: the percentile at x = 1 / (1 - q).
fn percentile_label(x: f64) -> String {
    let percent = (1.0 - 1.0 / x) * 100.0;
    let text = format!("{percent:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Latency by percentile for each result label and measurement of a run:
/// the x axis spreads the tail (90%, 99%, 99.9%…) evenly, as HdrHistogram
/// plots do, so the tail is visible rather than squeezed into the right edge.
fn spectrum(run: &RunReport) -> Result<Chart, String> {
    let title = format!("Latency by percentile, {}", run_title(run));
    let count = run.all.count.max(1);
    // Beyond 1 - 1/count the percentiles repeat the max: stop there.
    let decades = (count as f64).log10().ceil().clamp(2.0, 6.0) as i32;
    let x_max = 10f64.powi(decades);
    let mut lines = Vec::new();
    for (named, suffix) in run
        .results
        .iter()
        .map(|r| (r, ""))
        .chain(run.measurements.iter().map(|m| (m, " (measurement)")))
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
        lines.push(Spectrum::of(
            format!("{}{suffix}", named.name),
            &histogram,
            x_max,
        ));
    }
    let max_ns = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .max()
        .unwrap_or(1);
    let unit = Unit::for_max(max_ns.max(1));
    let top = unit.of(max_ns).max(f64::MIN_POSITIVE) * 1.1;
    let svg = draw(|root| {
        let x_axis = (1.0..x_max)
            .log_scale()
            .with_key_points((0..=decades).map(|d| 10f64.powi(d)).collect());
        let mut chart = ChartBuilder::on(root)
            .caption(&title, title_style())
            .margin(16)
            .margin_right(40)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(x_axis, 0.0..top)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale of 1/(1 − q))")
            .y_desc(format!("latency ({})", unit.name))
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| short(*v))
            .house_style()
            .draw()
            .map_err(chart_error)?;
        for (k, line) in lines.iter().enumerate() {
            let stroke = color(k).stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().map(|&(x, ns)| (x, unit.of(ns))),
                    stroke,
                ))
                .map_err(chart_error)?
                .label(legend_text(&line.name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], stroke));
        }
        if lines.is_empty() {
            // Still a legend, saying why the chart is empty.
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
                .map_err(chart_error)?
                .label(legend_text("no calls"))
                .legend(|(x, y)| Circle::new((x + 8, y), 4, BLACK.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })?;
    Ok(Chart {
        run: Some(run.index),
        file_name: format!("spectrum-run{}.svg", run.index),
        title,
        svg,
    })
}

/// Ops/s (left axis) and p99 (right axis) for each interval of a run.
fn timeline(run: &RunReport) -> Result<Chart, String> {
    let title = format!("Throughput and p99 per second, {}", run_title(run));
    let points: Vec<(f64, f64, u64)> = run
        .timeline
        .iter()
        .map(|p| {
            let middle = (p.start_ms as f64 + p.duration_ms as f64 / 2.0) / 1000.0;
            (middle, p.ops_per_sec, p.p99_ns)
        })
        .collect();
    let end = (run.elapsed_ns as f64 / 1e9)
        .max(points.last().map_or(0.0, |p| p.0))
        .max(1.0);
    let ops_top = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.3;
    let p99_max = points.iter().map(|p| p.2).max().unwrap_or(1).max(1);
    // Markers help read a short run; on a long one they would be a smear.
    let marker = if points.len() <= 120 { 3 } else { 0 };
    let unit = Unit::for_max(p99_max);
    let p99_top = unit.of(p99_max) * 1.3;
    let svg = draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, title_style())
            .margin(16)
            .margin_right(40)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .right_y_label_area_size(80)
            .build_cartesian_2d(0.0..end, 0.0..ops_top)
            .map_err(chart_error)?
            .set_secondary_coord::<RangedCoordf64, RangedCoordf64>(
                (0.0..end).into(),
                (0.0..p99_top).into(),
            );
        chart
            .configure_mesh()
            .x_desc("time since the start (s)")
            .y_desc("throughput (ops/s)")
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .house_style()
            .draw()
            .map_err(chart_error)?;
        chart
            .configure_secondary_axes()
            .y_desc(format!("p99 latency ({})", unit.name))
            .y_label_formatter(&|v| short(*v))
            .axis_desc_style(axis_style())
            .label_style(label_style())
            .draw()
            .map_err(chart_error)?;
        let ops = color(0).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), ops).point_size(marker))
            .map_err(chart_error)?
            .label(legend_text("ops/s (left axis)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ops));
        let p99 = color(2).stroke_width(2);
        chart
            .draw_secondary_series(
                LineSeries::new(points.iter().map(|p| (p.0, unit.of(p.2))), p99).point_size(marker),
            )
            .map_err(chart_error)?
            .label(legend_text("p99 (right axis)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], p99));
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })?;
    Ok(Chart {
        run: Some(run.index),
        file_name: format!("timeline-run{}.svg", run.index),
        title,
        svg,
    })
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
