//! PNG plots drawn with plotters into memory and encoded with png.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary, so the plots
//! render on a bare server with no font library or fontconfig. Every
//! function returns the PNG's bytes: the caller writes them (atomically, with
//! the files they belong to).

use std::sync::OnceLock;

use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// A plot that could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
#[error("drawing the {what} plot: {message}")]
pub struct PlotError {
    what: &'static str,
    message: String,
}

/// Colours of the two series in a plot (matplotlib's first two, as in the
/// book's figures).
const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_: RGBColor = RGBColor(44, 160, 44);

const FONT: &str = "sans-serif";

/// Registers the embedded font under the name the charts ask for, once.
fn font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(
                FONT,
                FontStyle::Normal,
                include_bytes!("../assets/DejaVuSans.ttf"),
            )
            .map_err(|_| "the embedded DejaVu Sans font is invalid".to_owned())
        })
        .clone()
}

/// Draws on a white `width`×`height` canvas with `draw`, then encodes the
/// canvas as an 8-bit RGB PNG.
fn render(
    what: &'static str,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<Vec<u8>, PlotError> {
    let err = |message: String| PlotError { what, message };
    font().map_err(err)?;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        draw(&root).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
        writer
            .write_image_data(&rgb)
            .map_err(|e| err(e.to_string()))?;
        writer.finish().map_err(|e| err(e.to_string()))?;
    }
    Ok(png_bytes)
}

/// Maps plotters' errors (generic over the backend's) to their message.
fn msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A chart on `x` × `y` with a caption, axis titles and whole-number x
/// ticks: the frame of the loss and accuracy plots.
fn xy_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    caption: &str,
    (x, x_desc): (std::ops::Range<f64>, &str),
    (y, y_desc): (std::ops::Range<f64>, &str),
) -> Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String>
{
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 26))
        .margin(16)
        .margin_right(36)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(msg)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&|x| tick(*x))
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(msg)?;
    Ok(chart)
}

/// A tick label: at most six decimals, and none for whole numbers
/// (`1000`, `0.5`, not `1000.0` or `0.30000000000000004`).
fn tick(x: f64) -> String {
    let rounded = (x * 1e6).round() / 1e6;
    format!("{}", rounded + 0.0)
}

/// A corner of a chart's plotting area, for its legend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Corner {
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
}

impl From<Corner> for SeriesLabelPosition {
    fn from(c: Corner) -> Self {
        match c {
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        }
    }
}

/// The corner whose legend-sized box (40 % of the width, 22 % of the
/// height) covers the fewest of `points`; ties go to the earlier of
/// `preferred`.
fn free_corner(
    points: &[(f64, f64)],
    x: &std::ops::Range<f64>,
    y: &std::ops::Range<f64>,
    preferred: [Corner; 4],
) -> Corner {
    let (w, h) = (0.4 * (x.end - x.start), 0.22 * (y.end - y.start));
    let covered = |corner: Corner| {
        let right = matches!(corner, Corner::UpperRight | Corner::LowerRight);
        let upper = matches!(corner, Corner::UpperRight | Corner::UpperLeft);
        points
            .iter()
            .filter(|&&(px, py)| {
                let in_x = if right {
                    px >= x.end - w
                } else {
                    px <= x.start + w
                };
                let in_y = if upper {
                    py >= y.end - h
                } else {
                    py <= y.start + h
                };
                in_x && in_y
            })
            .count()
    };
    // `min_by_key` keeps the first of equal minima.
    preferred
        .into_iter()
        .min_by_key(|&c| covered(c))
        .unwrap_or(Corner::UpperRight)
}

/// Draws the legend of the series labelled so far at `position`.
fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(msg)
}

/// The batch loss of every iteration (light) and its moving mean over the
/// last `window` iterations (dark), as in the book's loss figure.
///
/// Non-finite losses are left out. With more iterations than the plot has
/// room for, each column shows the lowest and highest raw loss it covers.
pub fn loss_curve(losses: &[f64], window: usize) -> Result<Vec<u8>, PlotError> {
    let n = losses.len();
    let window = window.clamp(1, n.max(1));
    let smoothed = moving_mean(losses, window);
    let y_max = losses
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-3)
        * 1.05;
    let raw = envelope(losses, 2000);
    let (x, y) = (0.0..n.max(1) as f64, 0.0..y_max);
    let corner = free_corner(&raw, &x, &y, {
        use Corner::*;
        [UpperRight, UpperLeft, LowerLeft, LowerRight]
    });
    render("loss", (900, 540), |root| {
        let mut chart = xy_chart(
            root,
            "Training loss",
            (x, "iteration"),
            (y, "loss (cross-entropy of the batch)"),
        )?;
        let faint = BLUE_.mix(0.35);
        chart
            .draw_series(LineSeries::new(raw.iter().copied(), faint))
            .map_err(msg)?
            .label("batch loss")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], faint));
        // A short run: its few points as dots too (a single one draws no line).
        if n <= 200 {
            chart
                .draw_series(raw.iter().map(|&p| Circle::new(p, 2, BLUE_.filled())))
                .map_err(msg)?;
        }
        // The mean only once it averages a whole window.
        if n > window {
            chart
                .draw_series(LineSeries::new(
                    smoothed
                        .iter()
                        .enumerate()
                        .skip(window - 1)
                        .filter_map(|(i, &l)| l.is_finite().then_some((i as f64, l))),
                    ORANGE.stroke_width(2),
                ))
                .map_err(msg)?
                .label(format!("mean of the last {window} iterations"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], ORANGE.stroke_width(2)));
        }
        legend(&mut chart, corner.into())
    })
}

/// Train and test accuracy per epoch, on 0 to 1 as in the book's figure.
/// `epochs` holds (epoch, train accuracy, test accuracy).
pub fn accuracy_curve(epochs: &[(f64, f64, f64)]) -> Result<Vec<u8>, PlotError> {
    let last = epochs.last().map_or(1.0, |e| e.0).max(1.0);
    let (x, y) = (0.0..last, 0.0..1.0);
    let all: Vec<(f64, f64)> = epochs
        .iter()
        .flat_map(|&(e, tr, te)| [(e, tr), (e, te)])
        .collect();
    let corner = free_corner(&all, &x, &y, {
        use Corner::*;
        [LowerRight, UpperLeft, LowerLeft, UpperRight]
    });
    render("accuracy", (900, 540), |root| {
        let mut chart = xy_chart(root, "Accuracy per epoch", (x, "epoch"), (y, "accuracy"))?;
        let series = |pick: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
            epochs
                .iter()
                .map(|e| (e.0, pick(e)))
                .filter(|p| p.1.is_finite())
                .collect()
        };
        // The book's markers: circles for train, squares (and a dashed
        // line) for test.
        let train = series(|e| e.1);
        let style = BLUE_.stroke_width(2);
        chart
            .draw_series(LineSeries::new(train.clone(), style))
            .map_err(msg)?;
        chart
            .draw_series(train.iter().map(|&p| Circle::new(p, 4, BLUE_.filled())))
            .map_err(msg)?
            .label("train acc")
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (24, 0)], style)
                    + Circle::new((12, 0), 4, BLUE_.filled())
            });
        let test = series(|e| e.2);
        let style = ORANGE.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(test.clone(), 8, 5, style))
            .map_err(msg)?;
        chart
            .draw_series(test.iter().map(|&p| {
                EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], ORANGE.filled())
            }))
            .map_err(msg)?
            .label("test acc")
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (7, 0)], style)
                    + PathElement::new([(17, 0), (24, 0)], style)
                    + Rectangle::new([(8, -4), (16, 4)], ORANGE.filled())
            });
        legend(&mut chart, corner.into())
    })
}

/// One parameter's gradient-check figures.
#[derive(Clone, Debug)]
pub struct GradBar {
    /// W1, b1, ...
    pub name: String,
    /// Mean |backprop − numerical|.
    pub mean_abs: f64,
    /// Max |backprop − numerical|.
    pub max_abs: f64,
    /// Max relative error.
    pub max_rel: f64,
}

/// The gradient check per parameter as grouped bars on a log scale: mean
/// |diff|, max |diff| and max relative error. A zero (an exact match) is
/// written as `0` at the bottom of the scale.
pub fn gradcheck_bars(title: &str, params: &[GradBar]) -> Result<Vec<u8>, PlotError> {
    if params.is_empty() {
        return Err(PlotError {
            what: "gradient check",
            message: "no parameters to draw".to_owned(),
        });
    }
    let values = params
        .iter()
        .flat_map(|p| [p.mean_abs, p.max_abs, p.max_rel])
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if hi > 0.0 {
        (
            10f64.powf(lo.log10().floor() - 1.0),
            // A decade of room above the tallest bar for the legend.
            10f64.powf(hi.log10().ceil() + 1.0),
        )
    } else {
        (1e-20, 1.0)
    };
    // Four slots per parameter: three bars and a gap.
    const SLOTS: usize = 4;
    let series = [
        ("mean |diff|", BLUE_),
        ("max |diff|", ORANGE),
        ("max relative error", GREEN_),
    ];
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    render("gradient check", (1000, 560), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (0..params.len() * SLOTS - 1).into_segmented(),
                (lo..hi).log_scale(),
            )
            .map_err(msg)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(params.len() * SLOTS)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(k) if k % SLOTS == 1 => {
                    names.get(k / SLOTS).copied().unwrap_or("").to_owned()
                }
                _ => String::new(),
            })
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .y_desc("backprop vs numerical (log scale)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()
            .map_err(msg)?;
        for (j, (label, colour)) in series.into_iter().enumerate() {
            chart
                .draw_series(params.iter().enumerate().map(|(i, p)| {
                    let v = [p.mean_abs, p.max_abs, p.max_rel][j];
                    let v = if v.is_finite() && v > 0.0 {
                        v.max(lo)
                    } else {
                        lo
                    };
                    let k = i * SLOTS + j;
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(k), lo),
                            (SegmentValue::Exact(k + 1), v),
                        ],
                        colour.filled(),
                    )
                }))
                .map_err(msg)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.filled())
                });
            // An exact match has no height on a log scale: say 0.
            let bottom = TextStyle::from((FONT, 15).into_font()).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Bottom,
                ),
            );
            chart
                .draw_series(params.iter().enumerate().filter_map(|(i, p)| {
                    let v = [p.mean_abs, p.max_abs, p.max_rel][j];
                    (v == 0.0).then(|| {
                        Text::new(
                            "0",
                            (SegmentValue::CenterOf(i * SLOTS + j), lo),
                            bottom.clone(),
                        )
                    })
                }))
                .map_err(msg)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// A confusion matrix as a heat map: row `t`, column `p` counts the images
/// of class `t` predicted as `p`. Each cell shows its count; the diagonal is
/// shaded blue by its share of the row, the mistakes red against the
/// commonest mistake.
pub fn confusion_heatmap(
    title: &str,
    matrix: &[Vec<u64>],
    classes: &[&str],
) -> Result<Vec<u8>, PlotError> {
    let k = matrix.len();
    if k == 0 || matrix.iter().any(|row| row.len() != k) || classes.len() != k {
        return Err(PlotError {
            what: "confusion",
            message: format!(
                "the matrix must be square with one name per class ({k} rows, {} names)",
                classes.len()
            ),
        });
    }
    let names_width = if classes.iter().any(|c| c.len() > 2) {
        110
    } else {
        48
    };
    render(
        "confusion",
        (720 + names_width, 700 + names_width / 2),
        |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(title, (FONT, 22))
                .margin(16)
                .x_label_area_size(48 + names_width / 2)
                .y_label_area_size(48 + names_width)
                .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
                .map_err(msg)?;
            let name = |v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) => classes.get(*i).copied().unwrap_or("").to_owned(),
                _ => String::new(),
            };
            // Row 0 at the top, as the matrix is printed.
            let flip = |i: usize| k - 1 - i;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(k)
                .y_labels(k)
                .x_label_formatter(&name)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) if *i < k => name(&SegmentValue::CenterOf(flip(*i))),
                    _ => String::new(),
                })
                .x_desc("predicted class   (blue: right, by share of the class; red: mistakes, by the largest)")
                .y_desc("true class")
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 17))
                .draw()
                .map_err(msg)?;
            // Mistakes are shaded against the commonest mistake, so that the
            // 16 fours taken for nines stand out even beside 950 right ones.
            let most_mistakes = (0..k)
                .flat_map(|t| (0..k).filter(move |&p| p != t).map(move |p| (t, p)))
                .map(|(t, p)| matrix[t][p])
                .max()
                .unwrap_or(0)
                .max(1);
            for (t, row) in matrix.iter().enumerate() {
                let total: u64 = row.iter().sum();
                for (p, &count) in row.iter().enumerate() {
                    let share = if total > 0 {
                        count as f64 / total as f64
                    } else {
                        0.0
                    };
                    let y = flip(t);
                    // White to dark blue on the diagonal (the square root
                    // lifts a weak class), white to dark red off it.
                    let (s, dark) = if p == t {
                        (share.sqrt(), (8, 48, 107))
                    } else {
                        (count as f64 / most_mistakes as f64, (165, 15, 21))
                    };
                    let shade = |c: u8| (255.0 - s * (255.0 - c as f64)).round() as u8;
                    let fill = RGBColor(shade(dark.0), shade(dark.1), shade(dark.2));
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [
                                (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                                (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                            ],
                            fill.filled(),
                        )))
                        .map_err(msg)?;
                    let ink = if s > 0.6 { WHITE } else { BLACK };
                    let style = TextStyle::from((FONT, 15).into_font()).color(&ink).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    );
                    chart
                        .draw_series(std::iter::once(Text::new(
                            count.to_string(),
                            (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                            style,
                        )))
                        .map_err(msg)?;
                }
            }
            Ok(())
        },
    )
}

/// The mean of the last `window` values at each index (fewer at the start);
/// NaN where a non-finite value is in the window.
fn moving_mean(values: &[f64], window: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut sum = 0.0;
    let mut bad = 0usize;
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() {
            sum += v;
        } else {
            bad += 1;
        }
        if i >= window {
            let old = values[i - window];
            if old.is_finite() {
                sum -= old;
            } else {
                bad -= 1;
            }
        }
        let n = (i + 1).min(window);
        out.push(if bad > 0 { f64::NAN } else { sum / n as f64 });
    }
    out
}

/// At most `columns` × 2 points that keep each column's lowest and highest
/// finite value, in order, so a long run's spikes stay visible.
fn envelope(values: &[f64], columns: usize) -> Vec<(f64, f64)> {
    let finite = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| (i as f64, v));
    if values.len() <= 2 * columns {
        return finite.collect();
    }
    let per = values.len().div_ceil(columns);
    let mut out = Vec::with_capacity(2 * columns);
    for (c, chunk) in values.chunks(per).enumerate() {
        let at = |j: usize| ((c * per + j) as f64, chunk[j]);
        let mut lo: Option<usize> = None;
        let mut hi: Option<usize> = None;
        for (j, v) in chunk.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            if lo.is_none_or(|l| *v < chunk[l]) {
                lo = Some(j);
            }
            if hi.is_none_or(|h| *v > chunk[h]) {
                hi = Some(j);
            }
        }
        match (lo, hi) {
            (Some(l), Some(h)) if l == h => out.push(at(l)),
            (Some(l), Some(h)) if l < h => out.extend([at(l), at(h)]),
            (Some(l), Some(h)) => out.extend([at(h), at(l)]),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a PNG: (width, height, RGB bytes).
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn count(rgb: &[u8], colour: RGBColor) -> usize {
        rgb.chunks(3)
            .filter(|p| p == &[colour.0, colour.1, colour.2])
            .count()
    }

    /// Pixels that are neither white nor a shade of the series colours:
    /// dark grey and black, that is text, axes and tick marks.
    fn ink(rgb: &[u8]) -> usize {
        rgb.chunks(3)
            .filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100)
            .count()
    }

    #[test]
    fn ticks_are_short_and_the_legend_avoids_the_data() {
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(-0.0), "0");
        use Corner::*;
        let order = [UpperRight, UpperLeft, LowerLeft, LowerRight];
        // A loss that falls: the upper right is free.
        let falling = [(0.0, 2.3), (50.0, 1.0), (100.0, 0.1)];
        assert_eq!(
            free_corner(&falling, &(0.0..100.0), &(0.0..2.5), order),
            UpperRight
        );
        // A loss that stays high: the lower left is the first free corner.
        let flat = [(0.0, 2.3), (50.0, 2.3), (100.0, 2.3)];
        assert_eq!(
            free_corner(&flat, &(0.0..100.0), &(0.0..2.5), order),
            LowerLeft
        );
    }

    #[test]
    fn tiny_runs_still_draw_their_points() {
        for n in [1, 2] {
            let (_, _, rgb) = decode(&loss_curve(&vec![2.3; n], 100).unwrap());
            assert!(
                count(&rgb, BLUE_) > 10,
                "{n} iteration(s): the dots are drawn"
            );
        }
    }

    #[test]
    fn the_moving_mean_averages_the_last_window_values() {
        let m = moving_mean(&[1.0, 2.0, 3.0, 4.0, 5.0], 2);
        assert_eq!(m, [1.0, 1.5, 2.5, 3.5, 4.5]);
        let m = moving_mean(&[1.0, f64::NAN, 3.0, 4.0], 2);
        assert!(m[1].is_nan() && m[2].is_nan());
        assert_eq!(m[3], 3.5);
    }

    #[test]
    fn the_envelope_keeps_each_columns_extremes_in_order() {
        let values: Vec<f64> = (0..10).map(|i| if i == 3 { 9.0 } else { 1.0 }).collect();
        assert_eq!(envelope(&values, 5).len(), 10, "short: every point");
        let e = envelope(&values, 2);
        assert_eq!(e, [(0.0, 1.0), (3.0, 9.0), (5.0, 1.0)]);
    }

    #[test]
    fn the_loss_plot_is_a_png_with_both_series_and_text() {
        let losses: Vec<f64> = (0..10_000)
            .map(|i| 2.3 * (-(i as f64) / 1500.0).exp() + 0.05 * ((i % 7) as f64))
            .collect();
        let (w, h, rgb) = decode(&loss_curve(&losses, 100).unwrap());
        assert_eq!((w, h), (900, 540));
        assert!(count(&rgb, ORANGE) > 500, "the smoothed line is drawn");
        assert!(ink(&rgb) > 2000, "axes, labels and the caption are drawn");
    }

    #[test]
    fn the_accuracy_plot_draws_both_series() {
        let epochs: Vec<(f64, f64, f64)> = (0..17)
            .map(|e| (e as f64, 0.1 + 0.05 * e as f64, 0.09 + 0.05 * e as f64))
            .collect();
        let (_, _, rgb) = decode(&accuracy_curve(&epochs).unwrap());
        assert!(count(&rgb, BLUE_) > 300);
        assert!(count(&rgb, ORANGE) > 300);
        assert!(ink(&rgb) > 2000);
    }

    #[test]
    fn gradcheck_bars_are_drawn_even_for_an_exact_zero() {
        let params = ["W1", "b1", "W2", "b2"].map(|n| GradBar {
            name: n.into(),
            mean_abs: 1e-10,
            max_abs: 1e-8,
            max_rel: if n == "b2" { 0.0 } else { 1e-6 },
        });
        let (_, _, rgb) = decode(&gradcheck_bars("gradient check", &params).unwrap());
        for c in [BLUE_, ORANGE, GREEN_] {
            assert!(count(&rgb, c) > 200, "{c:?} bars are drawn");
        }
    }

    #[test]
    fn the_heat_map_darkens_the_diagonal_and_the_commonest_mistake_and_refuses_a_ragged_matrix() {
        let mut m: Vec<Vec<u64>> = (0..10)
            .map(|t| (0..10).map(|p| if t == p { 95 } else { 1 }).collect())
            .collect();
        m[4][9] = 16;
        let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_, _, rgb) = decode(&confusion_heatmap("confusion", &m, &names).unwrap());
        // 95 of 104 (share 0.91, square root 0.96): nearly the full dark blue.
        let s: f64 = (95.0_f64 / 104.0).sqrt();
        let shade = |c: u8| (255.0 - s * (255.0 - c as f64)).round() as u8;
        assert!(count(&rgb, RGBColor(shade(8), shade(48), shade(107))) > 9 * 1000);
        // The commonest mistake is the full dark red.
        assert!(count(&rgb, RGBColor(165, 15, 21)) > 1000);
        let err = confusion_heatmap("c", &m[..9], &names).unwrap_err();
        assert!(err.to_string().contains("square"), "{err}");
    }
}
