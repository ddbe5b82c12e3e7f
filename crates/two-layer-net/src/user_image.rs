//! A 28×28 PNG a person drew, as MNIST-like pixels for `predict --image`.
//!
//! MNIST digits are light strokes (up to 255) on a black background (0). A
//! drawing made in a paint program is usually the opposite, dark on white, so
//! an image whose border is mostly light is inverted (and the caller says
//! so). Colour is turned into grey with the Rec. 601 weights. Transparency
//! is laid over the background the strokes stand out from: black under
//! light strokes (a white pen on a transparent canvas), white under dark ones.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context as _, bail};
use mnist_data::{COLS, ROWS};

/// A drawn image, ready for the network.
#[derive(Debug)]
pub struct UserImage {
    /// ROWS × COLS bytes, row-major, light strokes on a dark background.
    pub pixels: Vec<u8>,
    /// Whether the image was dark on light and has been inverted.
    pub inverted: bool,
    /// What the file held, e.g. "8-bit RGBA".
    pub format: String,
    /// The darkest and the lightest grey level, before any inversion.
    pub range: (u8, u8),
}

impl UserImage {
    /// Whether the image is nearly uniform (at most 16 grey levels apart):
    /// blank, or too faint to hold a digit.
    pub fn is_blank(&self) -> bool {
        self.range.1 - self.range.0 <= 16
    }
}

/// Reads the PNG at `path`: it must be 28×28; any PNG colour type and bit
/// depth is accepted.
///
/// # Errors
///
/// When the file cannot be read, is not a PNG, or is not 28×28; the message
/// names the file.
pub fn read_png(path: &Path) -> anyhow::Result<UserImage> {
    let what = || format!("--image {}", path.display());
    let file = File::open(path).with_context(what)?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    // Palettes and bit depths below 8 become 8-bit grey or RGB(A); 16 bits
    // become 8.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| anyhow::anyhow!("not a PNG file that can be read: {e}"))
        .with_context(what)?;
    let (width, height) = {
        let info = reader.info();
        (info.width, info.height)
    };
    // Checked before any pixel is decoded: a huge image costs nothing.
    if (width as usize, height as usize) != (COLS, ROWS) {
        bail!(
            "{}: the image is {width}×{height} pixels; predict needs {COLS}×{ROWS}, \
             MNIST's size (scale it down first, e.g. `convert in.png -resize 28x28! out.png`)",
            what()
        );
    }
    let source = {
        let info = reader.info();
        let colour = match info.color_type {
            png::ColorType::Grayscale => "grey",
            png::ColorType::GrayscaleAlpha => "grey and alpha",
            png::ColorType::Rgb => "RGB",
            png::ColorType::Rgba => "RGBA",
            png::ColorType::Indexed => "palette",
        };
        format!("{}-bit {colour}", info.bit_depth as u8)
    };
    let size = reader
        .output_buffer_size()
        .context("the image does not fit in memory")
        .with_context(what)?;
    let mut buf = vec![0u8; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| anyhow::anyhow!("the PNG's pixel data is damaged: {e}"))
        .with_context(what)?;
    let channels = frame.color_type.samples();
    let pixels = buf[..frame.buffer_size()].chunks_exact(channels);
    let background = background(pixels.clone().map(|p| luma_alpha(frame.color_type, p)));
    let grey: Vec<u8> = pixels
        .map(|p| {
            let (v, a) = luma_alpha(frame.color_type, p);
            over(v, a, background)
        })
        .collect();
    let range = grey
        .iter()
        .fold((u8::MAX, u8::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let inverted = light_border(&grey);
    let pixels = if inverted {
        grey.iter().map(|&v| 255 - v).collect()
    } else {
        grey
    };
    Ok(UserImage {
        pixels,
        inverted,
        format: source,
        range,
    })
}

/// One pixel as (grey, alpha): Rec. 601 luma for colour (exact for grey
/// RGB); alpha 255 when the image has none.
fn luma_alpha(colour: png::ColorType, p: &[u8]) -> (u8, u8) {
    let luma = |r: u8, g: u8, b: u8| {
        ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
    };
    match (colour, p) {
        (png::ColorType::Grayscale, &[v]) => (v, 255),
        (png::ColorType::GrayscaleAlpha, &[v, a]) => (v, a),
        (png::ColorType::Rgb, &[r, g, b]) => (luma(r, g, b), 255),
        (png::ColorType::Rgba, &[r, g, b, a]) => (luma(r, g, b), a),
        _ => unreachable!("normalize_to_color8 gives 8-bit grey or RGB, with or without alpha"),
    }
}

/// What transparent pixels are laid over: black when the (mostly) opaque
/// pixels are light on average, white otherwise (and when nothing is
/// opaque).
fn background(pixels: impl Iterator<Item = (u8, u8)>) -> u8 {
    let (sum, n) = pixels
        .filter(|&(_, a)| a >= 128)
        .fold((0u64, 0u64), |(s, n), (v, _)| (s + u64::from(v), n + 1));
    if n > 0 && sum > 127 * n { 0 } else { 255 }
}

/// Grey `v` with alpha `a` laid over grey `bg`.
fn over(v: u8, a: u8, bg: u8) -> u8 {
    let (v, a, bg) = (u32::from(v), u32::from(a), u32::from(bg));
    ((v * a + bg * (255 - a) + 127) / 255) as u8
}

/// Whether the outermost ring of pixels is mostly light (mean above half).
fn light_border(grey: &[u8]) -> bool {
    let ring = (0..ROWS)
        .flat_map(|r| (0..COLS).map(move |c| (r, c)))
        .filter(|&(r, c)| r == 0 || c == 0 || r == ROWS - 1 || c == COLS - 1);
    let (sum, n) = ring.fold((0u32, 0u32), |(s, n), (r, c)| {
        (s + u32::from(grey[r * COLS + c]), n + 1)
    });
    sum > 127 * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_colour_and_alpha_become_grey() {
        use png::ColorType::*;
        assert_eq!(luma_alpha(Grayscale, &[37]), (37, 255));
        // Grey RGB is exact.
        for v in [0, 1, 127, 128, 254, 255] {
            assert_eq!(luma_alpha(Rgb, &[v, v, v]), (v, 255));
        }
        assert_eq!(luma_alpha(Rgb, &[255, 0, 0]), (76, 255));
        assert_eq!(luma_alpha(Rgba, &[0, 0, 0, 128]), (0, 128));
        // Transparent is the background; opaque is the colour itself.
        assert_eq!(over(0, 0, 255), 255);
        assert_eq!(over(0, 255, 255), 0);
        assert_eq!(over(0, 128, 255), 127);
        assert_eq!(over(255, 0, 0), 0);
    }

    #[test]
    fn transparency_is_laid_over_what_the_strokes_stand_out_from() {
        // A white pen on a transparent canvas: over black.
        let white_pen = [(255, 255), (0, 0), (0, 0), (255, 200)];
        assert_eq!(background(white_pen.into_iter()), 0);
        // A black pen: over white; nothing opaque: white too.
        let black_pen = [(0, 255), (255, 0), (0, 0)];
        assert_eq!(background(black_pen.into_iter()), 255);
        assert_eq!(background([(255, 0), (0, 0)].into_iter()), 255);
    }

    #[test]
    fn a_light_border_means_dark_on_light() {
        let mut dark = vec![0u8; ROWS * COLS];
        dark[14 * COLS + 14] = 255;
        assert!(!light_border(&dark));
        let light: Vec<u8> = dark.iter().map(|v| 255 - v).collect();
        assert!(light_border(&light));
    }
}
