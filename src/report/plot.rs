//! The report's PNG: train loss, eval loss, the tracked eval metric and the learning rate
//! against steps, one coloured line per run, in a 2×2 grid.

use super::Run;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";

/// What one panel shows: a title, the y-axis label, and how to read its points from a run.
struct Panel {
    title: String,
    y_label: &'static str,
    points: Box<dyn Fn(&Run) -> Vec<(f64, f64)>>,
}

fn panels(runs: &[Run]) -> Vec<Panel> {
    // The metric panel shows what the runs tracked as best, unless that is the loss (already
    // plotted): then exact match.
    let metric = match runs.first().map(Run::best_metric) {
        Some(m) if m != "eval_loss" => m,
        _ => "eval_exact_match".to_string(),
    };
    let metric_key = metric.clone();
    vec![
        Panel { title: "train loss".into(), y_label: "loss", points: Box::new(|r| r.series("log", "loss")) },
        Panel { title: "eval loss".into(), y_label: "loss", points: Box::new(|r| r.series("eval", "eval_loss")) },
        Panel {
            title: metric.trim_start_matches("eval_").replace('_', " "),
            y_label: "metric",
            points: Box::new(move |r| r.series("eval", &metric_key)),
        },
        Panel { title: "learning rate".into(), y_label: "lr", points: Box::new(|r| r.series("log", "learning_rate")) },
    ]
}

fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| anyhow!("the embedded DejaVu Sans font did not load"));
    });
    result
}

/// Draws the runs' curves into `path` (PNG, 1600×1000).
pub fn write_png(runs: &[Run], path: &Path) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1600, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    for (area, panel) in root.split_evenly((2, 2)).iter().zip(panels(runs)) {
        draw_panel(area, &panel, runs)?;
    }
    root.present().map_err(draw_error)?;
    Ok(())
}

fn draw_panel(area: &DrawingArea<BitMapBackend, plotters::coord::Shift>, panel: &Panel, runs: &[Run]) -> Result<()> {
    let lines: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| (panel.points)(r)).collect();
    let all = lines.iter().flatten();
    let (x_max, mut y_min, mut y_max) = all
        .fold((1.0f64, f64::INFINITY, f64::NEG_INFINITY), |(x, lo, hi), &(px, py)| (x.max(px), lo.min(py), hi.max(py)));
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = match y_max - y_min {
        range if range > 0.0 => range * 0.05,
        _ => (y_max.abs() * 0.1).max(0.05),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 26))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(panel.y_label)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .y_label_formatter(&|v| if v.abs() < 1e-2 && *v != 0.0 { format!("{v:.1e}") } else { format!("{v:.3}") })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(draw_error)?;
    for (i, (run, points)) in runs.iter().zip(lines).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = color.stroke_width(2);
        // Dots on sparse curves (evaluations), so that a single one still shows.
        if points.len() <= 30 {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(draw_error)?;
        }
        let series = chart.draw_series(LineSeries::new(points.iter().copied(), style)).map_err(draw_error)?;
        series.label(run.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    if runs.len() > 1 || runs.iter().any(|r| !r.name.is_empty()) {
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_error)?;
    }
    Ok(())
}

fn draw_error<E: std::error::Error + Send + Sync + 'static>(error: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing the report: {error}")
}
