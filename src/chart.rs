//! The benchmark's chart: one small bar chart per line of the table, Linux's
//! bar beside NeoOS's on the line's own scale, with the goal drawn as a
//! dashed line. Drawn with `plotters` into an SVG file (its SVG backend
//! writes text as SVG `<text>`, so no font files are needed to draw it).

use std::path::Path;

use plotters::prelude::*;

use crate::{Result, ToolError};

/// One panel of the chart.
pub struct ChartLine {
    /// The operation, as the table names it.
    pub title: String,
    pub linux: Option<f64>,
    pub neoos: Option<f64>,
    /// Where NeoOS's goal lies on this panel's scale.
    pub goal: Option<f64>,
    /// The figures are ratios (shown with two decimals), not counts.
    pub ratio: bool,
}

/// Panels side by side per row of the chart.
const COLUMNS: usize = 2;
const PANEL_WIDTH: u32 = 560;
const PANEL_HEIGHT: u32 = 250;
const LINUX_COLOUR: RGBColor = RGBColor(0x9a, 0x9a, 0x9a);
const NEOOS_COLOUR: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const GOAL_COLOUR: RGBColor = RGBColor(0xc0, 0x30, 0x30);
/// Longest panel title before it is cut (an SVG has no text wrapping).
const TITLE_CHARS: usize = 78;

/// Draws `lines` into the SVG file `path`, with `heading` on top.
pub fn draw(path: &Path, heading: &str, lines: &[ChartLine]) -> Result<()> {
    let rows = lines.len().div_ceil(COLUMNS).max(1);
    let size = (
        PANEL_WIDTH * COLUMNS as u32,
        PANEL_HEIGHT * rows as u32 + 60,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let (top, body) = root.split_vertically(60);
    top.draw_text(
        heading,
        &("sans-serif", 20).into_font().color(&BLACK),
        (12, 8),
    )
    .map_err(chart_error)?;
    let legend = ("sans-serif", 15).into_font();
    for (i, (name, colour)) in [
        ("Linux", LINUX_COLOUR),
        ("NeoOS", NEOOS_COLOUR),
        ("goal", GOAL_COLOUR),
    ]
    .into_iter()
    .enumerate()
    {
        let x = 12 + 110 * i as i32;
        top.draw(&Rectangle::new([(x, 38), (x + 14, 52)], colour.filled()))
            .map_err(chart_error)?;
        top.draw_text(name, &legend.color(&BLACK), (x + 20, 37))
            .map_err(chart_error)?;
    }
    let panels = body.split_evenly((rows, COLUMNS));
    for (line, area) in lines.iter().zip(panels.iter()) {
        panel(area, line)?;
    }
    root.present().map_err(chart_error)
}

/// One line of the table: two bars and the goal.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    line: &ChartLine,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let values = [line.linux, line.neoos, line.goal];
    let top = values.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(short(&line.title), ("sans-serif", 13))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(62)
        .build_cartesian_2d(0.0..2.0, 0.0..top)
        .map_err(chart_error)?;
    let ratio = line.ratio;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(5)
        .y_label_formatter(&|v| figure(*v, ratio))
        .label_style(("sans-serif", 11))
        .draw()
        .map_err(chart_error)?;
    let bars = [
        (0, "Linux", line.linux, LINUX_COLOUR),
        (1, "NeoOS", line.neoos, NEOOS_COLOUR),
    ];
    for (slot, name, value, colour) in bars {
        let left = slot as f64 + 0.2;
        let right = slot as f64 + 0.8;
        let label = match value {
            Some(v) => format!("{name}: {}", figure(v, ratio)),
            None => format!("{name}: not measured"),
        };
        let height = value.unwrap_or(0.0);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(left, 0.0), (right, height)],
                colour.filled(),
            )))
            .map_err(chart_error)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (left, height + top * 0.09),
                ("sans-serif", 12).into_font(),
            )))
            .map_err(chart_error)?;
    }
    if let Some(goal) = line.goal {
        let dashes = (0..20).map(|i| {
            let x = i as f64 * 0.1;
            PathElement::new(
                vec![(x, goal), (x + 0.06, goal)],
                GOAL_COLOUR.stroke_width(2),
            )
        });
        chart.draw_series(dashes).map_err(chart_error)?;
    }
    Ok(())
}

/// A figure as the chart shows it: instructions with thousands separators,
/// or a ratio with two decimals.
fn figure(v: f64, ratio: bool) -> String {
    if ratio {
        format!("{v:.2}x")
    } else {
        crate::bench::thousands(v.round().max(0.0) as u64)
    }
}

/// A title cut to fit a panel.
fn short(title: &str) -> String {
    if title.chars().count() <= TITLE_CHARS {
        return title.to_string();
    }
    let cut: String = title.chars().take(TITLE_CHARS - 1).collect();
    format!("{cut}…")
}

fn chart_error<E: std::fmt::Debug>(e: E) -> ToolError {
    ToolError(format!("drawing the chart: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_both_bars_and_its_goal() {
        let path = std::env::temp_dir().join(format!("neoos-chart-{}.svg", std::process::id()));
        let lines = [
            ChartLine {
                title: "first-touch anonymous fault".into(),
                linux: Some(3293.0),
                neoos: Some(1539.0),
                goal: Some(1646.5),
                ratio: false,
            },
            ChartLine {
                title: "pair with 100,000 over 10".into(),
                linux: Some(1.66),
                neoos: None,
                goal: Some(1.3),
                ratio: true,
            },
        ];
        draw(&path, "NeoOS against Linux", &lines).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in [
            "first-touch anonymous fault",
            "Linux: 3,293",
            "NeoOS: 1,539",
            "Linux: 1.66x",
            "NeoOS: not measured",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn long_titles_are_cut() {
        let long = "x".repeat(200);
        assert_eq!(short(&long).chars().count(), TITLE_CHARS);
        assert_eq!(short("short"), "short");
    }
}
