//! The profile figure: the task timeline (one row per thread, one colour per kind) above
//! CPU % and RSS on one time axis, drawn with `plotters` as SVG.

use std::path::Path;

use plotters::prelude::*;

use super::{Sample, Task, TaskKind};
use crate::core::fmt::{base64, emit, escape_html, html_table};
use crate::error::Result;

/// A rendered profile: an SVG figure and a summary table.
#[derive(Debug, Clone)]
pub struct Figure {
    pub(super) svg: String,
    pub(super) title: String,
    pub(super) summary: Vec<(&'static str, String)>,
}

impl Figure {
    /// The SVG document.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// Writes the SVG document to `path`, atomically: a temporary file renamed into
    /// place once complete ([`write_atomic`](crate::raster::output::write_atomic)).
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::raster::output::write_atomic(path.as_ref(), self.svg.as_bytes())
    }

    /// HTML: the figure (as an `<img>`, which notebooks never sanitize away) and the
    /// summary table beside it.
    pub fn to_html(&self) -> String {
        format!(
            "<div class=\"rasterlab-profile\"><img alt=\"{}\" style=\"max-width:100%\" \
             src=\"data:image/svg+xml;base64,{}\"/>{}</div>",
            escape_html(&self.title),
            base64(self.svg.as_bytes()),
            html_table(&self.title, &self.summary)
        )
    }

    /// Renders inline in a notebook: one bundle holding `image/svg+xml` and `text/html`.
    pub fn evcxr_display(&self) {
        emit("image/svg+xml", &self.svg);
        emit("text/html", &self.to_html());
    }
}

const WIDTH: u32 = 900;
const PANEL: u32 = 170;

/// The figure: timeline (when `with_tasks`), CPU %, RSS, on one time axis in seconds.
pub(super) fn render_svg(tasks: &[Task], samples: &[Sample], with_tasks: bool) -> String {
    // One row per (rank, thread): ranks in order, the writer after a rank's workers.
    let mut rows: Vec<(usize, Option<usize>)> = tasks.iter().map(|t| (t.rank, t.thread)).collect();
    rows.sort_by_key(|&(rank, t)| (rank, t.unwrap_or(usize::MAX)));
    rows.dedup();
    let timeline_h = if with_tasks {
        (70 + 26 * rows.len() as u32).max(150)
    } else {
        0
    };
    let t_end = tasks
        .iter()
        .map(|t| t.end)
        .chain(samples.iter().map(|s| s.time))
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let t_start = tasks
        .iter()
        .map(|t| t.start)
        .chain(samples.iter().map(|s| s.time))
        .min()
        .unwrap_or_default()
        .as_secs_f64()
        .min(t_end);
    let x_range = t_start..(t_end.max(t_start + 1e-3));
    let mut svg = String::new();
    // Drawing into a String cannot fail for I/O reasons; a plotting error leaves a figure
    // with a message instead of failing the user's cell.
    let failure = draw_figure(&mut svg, tasks, samples, &rows, timeline_h, x_range)
        .err()
        .map(|e| e.to_string());
    if let Some(msg) = failure {
        svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"40\">\
             <text x=\"10\" y=\"25\">profile could not be drawn: {}</text></svg>",
            escape_html(&msg)
        );
    }
    svg
}

type DrawResult<'a> = std::result::Result<(), Box<dyn std::error::Error + 'a>>;

fn draw_figure<'a>(
    svg: &'a mut String,
    tasks: &[Task],
    samples: &[Sample],
    rows: &[(usize, Option<usize>)],
    timeline_h: u32,
    x_range: std::ops::Range<f64>,
) -> DrawResult<'a> {
    let height = timeline_h + 2 * PANEL;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(timeline_h);
    let (cpu_area, mem_area) = rest.split_vertically(PANEL);
    if timeline_h > 0 {
        draw_timeline(&top, tasks, rows, x_range.clone())?;
    }
    let cpu: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.time.as_secs_f64(), s.cpu_percent as f64))
        .collect();
    let cpu_max = cpu.iter().map(|p| p.1).fold(100.0, f64::max) * 1.1;
    draw_line(
        &cpu_area,
        "CPU (% of one core)",
        &cpu,
        x_range.clone(),
        cpu_max,
        RGBColor(214, 39, 40),
    )?;
    let mem: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.time.as_secs_f64(), s.rss_bytes as f64 / (1 << 20) as f64))
        .collect();
    let mem_max = mem.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    draw_line(
        &mem_area,
        "RSS (MiB)",
        &mem,
        x_range,
        mem_max,
        RGBColor(148, 103, 189),
    )?;
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_timeline<'a>(
    area: &Area<'a>,
    tasks: &[Task],
    rows: &[(usize, Option<usize>)],
    x_range: std::ops::Range<f64>,
) -> DrawResult<'a> {
    let n = rows.len().max(1);
    let ranked = rows.iter().any(|&(rank, _)| rank > 0);
    let labels: Vec<String> = rows
        .iter()
        .map(|&(rank, thread)| {
            let name = match thread {
                Some(i) => format!("worker {i}"),
                None => "writer".into(),
            };
            if ranked {
                format!("r{rank} {name}")
            } else {
                name
            }
        })
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption("Tasks per thread", ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, -0.5..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("seconds")
        .draw()?;
    for kind in TaskKind::ALL {
        let color = kind.color();
        chart.draw_series(tasks.iter().filter(|t| t.kind == kind).map(|t| {
            let row = rows
                .iter()
                .position(|r| *r == (t.rank, t.thread))
                .unwrap_or(0) as f64;
            Rectangle::new(
                [
                    (t.start.as_secs_f64(), row - 0.38),
                    (t.end.as_secs_f64(), row + 0.38),
                ],
                color.filled(),
            )
        }))?;
    }
    // The legend sits in the top margin, right of the caption, never over the tasks.
    let (w, _) = area.dim_in_pixel();
    let mut x = w as i32 - 250;
    for kind in TaskKind::ALL {
        area.draw(&Rectangle::new(
            [(x, 8), (x + 12, 18)],
            kind.color().filled(),
        ))?;
        area.draw(&Text::new(kind.name(), (x + 16, 7), ("sans-serif", 13)))?;
        x += 80;
    }
    Ok(())
}

fn draw_line<'a>(
    area: &Area<'a>,
    title: &str,
    points: &[(f64, f64)],
    x_range: std::ops::Range<f64>,
    y_max: f64,
    color: RGBColor,
) -> DrawResult<'a> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("seconds")
        .draw()?;
    if points.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "no samples",
            (chart.x_range().start, y_max / 2.0),
            ("sans-serif", 14),
        )))?;
    } else {
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?;
        // Points too, so that a run shorter than the interval still shows its sample.
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}
