//! Charts of a query result: in the terminal (`\chart`) and as PNG or SVG (`--chart FILE`,
//! the report).
//!
//! The first column is the x axis: a line chart when it is a time (timestamp or date),
//! bars otherwise. The series are the numeric columns after it, one each; or, when the
//! result is (x, a text column, one number), one series per value of the text column —
//! the shape of `SELECT hour, severity, count(*) … GROUP BY 1, 2`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::output::{Display, prepare};

/// Size of PNG and SVG charts, in pixels.
pub const CHART_SIZE: (u32, u32) = (1200, 600);

/// The x values of a chart.
#[derive(Debug, Clone, PartialEq)]
pub enum Xs {
    /// Microseconds since the epoch (UTC), with their display text.
    Time(Vec<i64>, Vec<String>),
    /// Category labels.
    Labels(Vec<String>),
}

impl Xs {
    pub fn len(&self) -> usize {
        match self {
            Self::Time(t, _) => t.len(),
            Self::Labels(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A result shaped for drawing: x values and named series of the same length.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub x_name: String,
    pub xs: Xs,
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
}

fn is_time(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    )
}

fn strings(array: &dyn Array) -> Result<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let f = ArrayFormatter::try_new(array, &options)?;
    (0..array.len())
        .map(|i| Ok(f.value(i).try_to_string()?))
        .collect()
}

fn floats(array: &dyn Array) -> Result<Vec<Option<f64>>> {
    let a = cast(&array.slice(0, array.len()), &DataType::Float64)?;
    let a = a.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect())
}

fn micros(array: &dyn Array) -> Result<Vec<Option<i64>>> {
    let target = DataType::Timestamp(TimeUnit::Microsecond, None);
    let a = cast(&array.slice(0, array.len()), &target)?;
    let a = a.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
    Ok((0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect())
}

impl ChartData {
    /// Shapes a result; fails with the reason when it cannot be drawn.
    pub fn from_batches(batches: &[RecordBatch], display: &Display) -> Result<Self> {
        let Some(first) = batches.first() else {
            bail!("nothing to chart: no result yet");
        };
        let schema = first.schema();
        if schema.fields().len() < 2 {
            bail!("a chart needs an x column and at least one numeric column");
        }
        let batch = datafusion::arrow::compute::concat_batches(&schema, batches)?;
        if batch.num_rows() == 0 {
            bail!("nothing to chart: the result has no rows");
        }
        let shown = prepare(&batch, true, display)?;
        let x_field = schema.field(0);
        let x_labels = strings(shown.column(0).as_ref())?;
        let rest: Vec<usize> = (1..schema.fields().len()).collect();
        let numeric: Vec<usize> = rest
            .iter()
            .copied()
            .filter(|&i| is_numeric(schema.field(i).data_type()))
            .collect();
        let text: Vec<usize> = rest
            .iter()
            .copied()
            .filter(|&i| !is_numeric(schema.field(i).data_type()))
            .collect();
        if numeric.is_empty() {
            bail!(
                "a chart needs a numeric column after {}; the result has none",
                x_field.name()
            );
        }
        let time = is_time(x_field.data_type());
        let raw_x: Vec<Option<i64>> = if time {
            micros(batch.column(0).as_ref())?
        } else {
            Vec::new()
        };
        let x_key = |i: usize| -> String { x_labels[i].clone() };

        if text.len() == 1 && numeric.len() == 1 {
            // (x, group, value): one series per group, x values in first-seen order.
            let groups = strings(shown.column(text[0]).as_ref())?;
            let values = floats(batch.column(numeric[0]).as_ref())?;
            let mut order: Vec<usize> = Vec::new();
            let mut index: BTreeMap<String, usize> = BTreeMap::new();
            for i in 0..batch.num_rows() {
                if let std::collections::btree_map::Entry::Vacant(e) = index.entry(x_key(i)) {
                    e.insert(order.len());
                    order.push(i);
                }
            }
            if time {
                order.sort_by_key(|&i| raw_x[i]);
                for (pos, &i) in order.iter().enumerate() {
                    index.insert(x_key(i), pos);
                }
            }
            let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
            for i in 0..batch.num_rows() {
                let pos = index[&x_key(i)];
                let s = series
                    .entry(groups[i].clone())
                    .or_insert_with(|| vec![None; order.len()]);
                s[pos] = Some(s[pos].unwrap_or(0.0) + values[i].unwrap_or(0.0));
            }
            let xs = Self::xs(time, &order, &raw_x, &x_labels);
            return Ok(Self {
                x_name: x_field.name().clone(),
                xs,
                series: series.into_iter().collect(),
            });
        }

        let mut order: Vec<usize> = (0..batch.num_rows()).collect();
        if time {
            order.sort_by_key(|&i| raw_x[i]);
        }
        let mut series = Vec::new();
        for &c in &numeric {
            let values = floats(batch.column(c).as_ref())?;
            series.push((
                schema.field(c).name().clone(),
                order.iter().map(|&i| values[i]).collect(),
            ));
        }
        Ok(Self {
            x_name: x_field.name().clone(),
            xs: Self::xs(time, &order, &raw_x, &x_labels),
            series,
        })
    }

    fn xs(time: bool, order: &[usize], raw: &[Option<i64>], labels: &[String]) -> Xs {
        if time {
            Xs::Time(
                order.iter().map(|&i| raw[i].unwrap_or(0)).collect(),
                order.iter().map(|&i| labels[i].clone()).collect(),
            )
        } else {
            Xs::Labels(order.iter().map(|&i| labels[i].clone()).collect())
        }
    }

    fn y_range(&self) -> (f64, f64) {
        let mut max = f64::MIN;
        let mut min = f64::MAX;
        for v in self.series.iter().flat_map(|(_, v)| v).flatten() {
            max = max.max(*v);
            min = min.min(*v);
        }
        if max < min {
            return (0.0, 1.0);
        }
        let lo = min.min(0.0);
        let hi = if max > lo { max } else { lo + 1.0 };
        (lo, hi)
    }
}

/// Marks for the series of a terminal chart, in order.
const MARKS: [char; 8] = ['*', 'o', '+', 'x', '#', '@', '%', '&'];

fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws the chart as text `width` columns wide.
pub fn render_text(data: &ChartData, width: usize) -> String {
    let width = width.clamp(40, 240);
    let mut out = String::new();
    match &data.xs {
        Xs::Labels(labels) => {
            let (_, hi) = data.y_range();
            let label_w = labels
                .iter()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(1)
                .min(24);
            let value_w = 10;
            let bar_w = width.saturating_sub(label_w + value_w + 4).max(10);
            for (i, label) in labels.iter().enumerate() {
                for (s, (name, values)) in data.series.iter().enumerate() {
                    let v = values[i].unwrap_or(0.0).max(0.0);
                    let n = if hi > 0.0 {
                        ((v / hi) * bar_w as f64).round() as usize
                    } else {
                        0
                    };
                    let shown: String = if s == 0 {
                        label.chars().take(label_w).collect()
                    } else {
                        String::new()
                    };
                    let bar = if data.series.len() > 1 {
                        MARKS[s % MARKS.len()].to_string().repeat(n)
                    } else {
                        "█".repeat(n)
                    };
                    let _ = writeln!(
                        out,
                        "{shown:>label_w$} │{bar} {}{}",
                        short_number(values[i].unwrap_or(0.0)),
                        if data.series.len() > 1 {
                            format!("  {name}")
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
        Xs::Time(times, labels) => {
            let height = 16usize;
            let axis_w = 8usize;
            let plot_w = width.saturating_sub(axis_w + 2).max(20);
            let (lo, hi) = data.y_range();
            let (t0, t1) = (
                *times.iter().min().unwrap_or(&0),
                *times.iter().max().unwrap_or(&0),
            );
            let span = (t1 - t0).max(1) as f64;
            let mut grid = vec![vec![' '; plot_w]; height];
            for (s, (_, values)) in data.series.iter().enumerate() {
                for (i, v) in values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    let x = if t1 == t0 {
                        plot_w / 2
                    } else {
                        (((times[i] - t0) as f64 / span) * (plot_w - 1) as f64).round() as usize
                    };
                    let y = (((v - lo) / (hi - lo)) * (height - 1) as f64).round() as usize;
                    grid[height - 1 - y.min(height - 1)][x.min(plot_w - 1)] =
                        MARKS[s % MARKS.len()];
                }
            }
            for (r, row) in grid.iter().enumerate() {
                let label = if r == 0 {
                    short_number(hi)
                } else if r == height - 1 {
                    short_number(lo)
                } else if r == height / 2 {
                    short_number((hi + lo) / 2.0)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "{label:>axis_w$} ┤{}", row.iter().collect::<String>());
            }
            let _ = writeln!(out, "{:>axis_w$} └{}", "", "─".repeat(plot_w));
            let first = labels.first().map(String::as_str).unwrap_or_default();
            let last = labels.last().map(String::as_str).unwrap_or_default();
            let gap = plot_w.saturating_sub(first.chars().count() + last.chars().count());
            let _ = writeln!(out, "{:>axis_w$}  {first}{}{last}", "", " ".repeat(gap));
        }
    }
    if data.series.len() > 1 || matches!(data.xs, Xs::Time(..)) {
        let legend: Vec<String> = data
            .series
            .iter()
            .enumerate()
            .map(|(s, (name, _))| format!("{} {name}", MARKS[s % MARKS.len()]))
            .collect();
        let _ = writeln!(out, "  {}", legend.join("   "));
    }
    out
}

/// The font every chart's text is set in, loaded once from the system (Debian:
/// fonts-dejavu-core) or `INFRALOG_CHART_FONT`.
fn font() -> Result<()> {
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut candidates: Vec<std::path::PathBuf> = Vec::new();
            if let Some(p) = std::env::var_os("INFRALOG_CHART_FONT") {
                candidates.push(p.into());
            }
            for p in [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            ] {
                candidates.push(p.into());
            }
            for path in &candidates {
                if let Ok(bytes) = std::fs::read(path) {
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font(
                        "sans-serif",
                        plotters::style::FontStyle::Normal,
                        bytes,
                    )
                    .is_ok()
                    {
                        return Ok(());
                    }
                }
            }
            Err(format!(
                "charts need a TrueType font: install fonts-dejavu-core, or point \
                 INFRALOG_CHART_FONT at a .ttf file (looked in {})",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

const PALETTE: [(u8, u8, u8); 8] = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
];

fn draw<DB: plotters::prelude::DrawingBackend>(
    root: plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    data: &ChartData,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    use plotters::prelude::*;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the chart: {e}");
    root.fill(&WHITE).map_err(err)?;
    let (lo, hi) = data.y_range();
    let hi = hi + (hi - lo) * 0.05;
    let color = |s: usize| {
        let (r, g, b) = PALETTE[s % PALETTE.len()];
        RGBColor(r, g, b)
    };
    match &data.xs {
        Xs::Time(times, labels) => {
            let t0 = *times.iter().min().unwrap_or(&0);
            let t1 = (*times.iter().max().unwrap_or(&0)).max(t0 + 1);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(t0..t1, lo..hi)
                .map_err(err)?;
            let label_of = |t: &i64| -> String {
                // The nearest x value's display text (it carries the chosen zone).
                let i = times
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, x)| (*x - t).abs())
                    .map_or(0, |(i, _)| i);
                labels.get(i).cloned().unwrap_or_default()
            };
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&label_of)
                .y_label_formatter(&|v: &f64| short_number(*v))
                .x_desc(data.x_name.as_str())
                .draw()
                .map_err(err)?;
            for (s, (name, values)) in data.series.iter().enumerate() {
                let c = color(s);
                let points: Vec<(i64, f64)> = times
                    .iter()
                    .zip(values)
                    .filter_map(|(t, v)| v.map(|v| (*t, v)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                if points.len() <= 200 {
                    chart
                        .draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))
                        .map_err(err)?;
                }
            }
            if data.series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(err)?;
            }
        }
        Xs::Labels(labels) => {
            let n = labels.len();
            let k = data.series.len().max(1);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(60)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..n as f64, lo..hi)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_label_formatter(&|v: &f64| short_number(*v))
                .draw()
                .map_err(err)?;
            for (s, (name, values)) in data.series.iter().enumerate() {
                let c = color(s);
                let w = 0.8 / k as f64;
                chart
                    .draw_series(values.iter().enumerate().map(|(i, v)| {
                        let x0 = i as f64 + 0.1 + w * s as f64;
                        Rectangle::new([(x0, 0f64.max(lo)), (x0 + w, v.unwrap_or(0.0))], c.filled())
                    }))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled())
                    });
            }
            // Category names under their bars (the mesh labels numbers, not names).
            let style = ("sans-serif", 13).into_font().color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ),
            );
            let every = n.div_ceil(30).max(1);
            for (i, label) in labels.iter().enumerate().step_by(every) {
                let (px, py) = chart.backend_coord(&(i as f64 + 0.5, lo));
                let text: String = label.chars().take(18).collect();
                root.draw(&Text::new(text, (px, py + 6), style.clone()))
                    .map_err(err)?;
            }
            if data.series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(err)?;
            }
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The chart as an SVG document.
pub fn svg(data: &ChartData, title: &str) -> Result<String> {
    font()?;
    let mut out = String::new();
    {
        let root = plotters::prelude::SVGBackend::with_string(&mut out, CHART_SIZE);
        draw(
            plotters::prelude::IntoDrawingArea::into_drawing_area(root),
            data,
            title,
        )?;
    }
    Ok(out)
}

/// Writes the chart of `batches` to `path`: PNG or SVG by the file's extension.
pub fn write_file(batches: &[RecordBatch], path: &Path, display: &Display) -> Result<()> {
    let data = ChartData::from_batches(batches, display)?;
    let title = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_data(&data, path, &title)
}

/// Writes `data` to `path` (PNG or SVG by extension).
pub fn write_data(data: &ChartData, path: &Path, title: &str) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => std::fs::write(path, svg(data, title)?)
            .with_context(|| format!("cannot write {}", path.display())),
        "png" => {
            font()?;
            let root = plotters::prelude::BitMapBackend::new(path, CHART_SIZE);
            draw(
                plotters::prelude::IntoDrawingArea::into_drawing_area(root),
                data,
                title,
            )
            .with_context(|| format!("cannot write {}", path.display()))
        }
        _ => bail!("chart file {} must end in .png or .svg", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn grouped() -> RecordBatch {
        let h = 3_600_000_000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "hour",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("severity", DataType::Utf8, true),
            Field::new("lines", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![2 * h, 0, 0, h, 2 * h])
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![
                    "ERROR", "ERROR", "INFO", "INFO", "INFO",
                ])),
                Arc::new(Int64Array::from(vec![5, 1, 10, 20, 30])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_time_group_value_result_is_one_series_per_group_in_time_order() {
        let data = ChartData::from_batches(&[grouped()], &Display::default()).unwrap();
        let Xs::Time(times, labels) = &data.xs else {
            panic!("time axis expected");
        };
        assert_eq!(times, &[0, 3_600_000_000, 7_200_000_000]);
        assert_eq!(labels[0], "1970-01-01T00:00:00Z");
        assert_eq!(
            data.series,
            vec![
                ("ERROR".to_string(), vec![Some(1.0), None, Some(5.0)]),
                ("INFO".to_string(), vec![Some(10.0), Some(20.0), Some(30.0)]),
            ]
        );
        let text = render_text(&data, 80);
        assert!(text.contains("* ERROR   o INFO"), "{text}");
        assert!(
            text.lines()
                .next()
                .unwrap()
                .trim_start()
                .starts_with("30 ┤"),
            "{text}"
        );
    }

    #[test]
    fn text_x_gives_bars_and_a_result_without_numbers_is_refused() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("process", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["sshd", "cron"])),
                Arc::new(Int64Array::from(vec![40, 10])),
            ],
        )
        .unwrap();
        let data = ChartData::from_batches(std::slice::from_ref(&b), &Display::default()).unwrap();
        assert_eq!(data.xs, Xs::Labels(vec!["sshd".into(), "cron".into()]));
        let text = render_text(&data, 60);
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("sshd │████"), "{text}");
        assert!(first.ends_with(" 40"), "{text}");
        let only_text = b.project(&[0]).unwrap();
        assert!(ChartData::from_batches(&[only_text], &Display::default()).is_err());
        assert!(ChartData::from_batches(&[], &Display::default()).is_err());
    }
}
