//! One image file to a model's input: decode, orient, convert channels, resize.
//!
//! The conversion is a pure function of the file's bytes and a [`Conversion`], so the
//! host, `fitnets predict` and `cargo xtask classify` give a model the very same pixels.

use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder as _, ImageFormat, ImageReader, Limits};

/// The most pixels (width x height) an image may have; larger ones are refused from
/// their header, before any decoding. 64 megapixels holds every camera's photo.
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// The largest image file read: 256 MiB. Larger files are refused before reading.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The most memory one decoder may allocate (a 64-megapixel RGBA image of 16-bit
/// channels is 512 MiB).
const MAX_DECODER_ALLOC: u64 = 640 * 1024 * 1024;

/// The file name extensions read as images (compared without case).
pub const EXTENSIONS: [&str; 10] = ["png", "jpg", "jpeg", "bmp", "gif", "pgm", "ppm", "pbm", "tif", "tiff"];

/// The formats read, as the decoder detects them from a file's first bytes.
const FORMATS: [ImageFormat; 6] =
    [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp, ImageFormat::Gif, ImageFormat::Pnm, ImageFormat::Tiff];

/// What the formats read are called in messages.
pub const FORMAT_NAMES: &str = "PNG, JPEG, BMP, GIF, PGM/PPM/PBM or TIFF";

/// How an image whose aspect ratio differs from the model's input is made to fit it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Resize {
    /// Scale each axis on its own to the input's size: nothing is lost, shapes are
    /// distorted. The default, as in Keras' `image_dataset_from_directory` and Edge
    /// Impulse's "squash".
    #[default]
    Stretch,
    /// Scale to cover the input, keeping the aspect ratio, and crop the centre: no
    /// distortion, the edges of the longer axis are lost.
    Fill,
    /// Scale to fit inside the input, keeping the aspect ratio, and pad the rest with
    /// black: no distortion, nothing lost, a border.
    Fit,
}

impl Resize {
    /// Every mode, in the order help texts list them.
    pub const ALL: [Resize; 3] = [Resize::Stretch, Resize::Fill, Resize::Fit];

    /// The mode's name on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            Resize::Stretch => "stretch",
            Resize::Fill => "fill",
            Resize::Fit => "fit",
        }
    }
}

impl fmt::Display for Resize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Resize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Resize::ALL
            .into_iter()
            .find(|r| r.name() == text)
            .ok_or_else(|| format!("`{text}`: the resize modes are stretch (the default), fill and fit"))
    }
}

/// What every image is turned into: the model's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conversion {
    pub height: u32,
    pub width: u32,
    /// 1 (grayscale: luma with Rec. 709 weights) or 3 (RGB). Alpha is dropped.
    pub channels: u8,
    pub resize: Resize,
}

impl Conversion {
    /// The conversion to an input of `[height, width, channels]`; refuses channel counts
    /// other than 1 and 3 and sides of 0 or above 65,535.
    pub fn new(input: [usize; 3], resize: Resize) -> Result<Conversion, String> {
        let [height, width, channels] = input;
        let side = |v: usize| u32::try_from(v).ok().filter(|&v| (1..=65_535).contains(&v));
        let (Some(height), Some(width)) = (side(height), side(width)) else {
            return Err(format!("an input of {height}x{width} pixels cannot be made from images"));
        };
        let channels = match channels {
            1 => 1,
            3 => 3,
            c => {
                return Err(format!(
                    "an input of {c} channels cannot be made from images: image folders give 1 (grayscale) \
                     or 3 (RGB); set the config's input channels to 1 or 3"
                ));
            }
        };
        Ok(Conversion { height, width, channels, resize })
    }

    /// Bytes of one converted image.
    pub fn image_len(&self) -> usize {
        self.height as usize * self.width as usize * usize::from(self.channels)
    }
}

impl fmt::Display for Conversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.channels == 1 { "grayscale" } else { "RGB" };
        write!(f, "{}x{} {kind}, resize {}", self.height, self.width, self.resize)
    }
}

/// Decodes one image file's bytes and converts it: `height * width * channels` bytes,
/// rows top to bottom, channels innermost. JPEG and TIFF orientation tags are applied;
/// a GIF gives its first frame. The error is the reason alone; callers add the path.
pub fn convert(bytes: &[u8], conversion: &Conversion) -> Result<Vec<u8>, String> {
    // The decoders are third-party code fed untrusted files: a panic in one must not
    // take the process down, it is one more bad file.
    match std::panic::catch_unwind(|| convert_inner(bytes, conversion)) {
        Ok(result) => result,
        Err(_) => Err("the decoder failed on this file (an internal error of the decoder)".into()),
    }
}

fn convert_inner(bytes: &[u8], conversion: &Conversion) -> Result<Vec<u8>, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let format = sniff(bytes)?;
    let (width, height) = reader(bytes, format).into_dimensions().map_err(|e| e.to_string())?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(format!(
            "{width}x{height} is {:.1} megapixels, above the limit of {} (shrink the image first)",
            pixels as f64 / 1e6,
            MAX_PIXELS / (1024 * 1024)
        ));
    }
    if pixels == 0 {
        return Err(format!("the image is {width}x{height}: it has no pixels"));
    }
    let mut decoder = reader(bytes, format).into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    let image = match conversion.channels {
        1 => DynamicImage::ImageLuma8(image.to_luma8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    };
    let resized = resize(image, conversion);
    Ok(match conversion.channels {
        1 => resized.into_luma8().into_raw(),
        _ => resized.into_rgb8().into_raw(),
    })
}

/// The format from the file's first bytes, if it is one of those read.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, String> {
    match image::guess_format(bytes) {
        Ok(format) if FORMATS.contains(&format) => Ok(format),
        Ok(format) => Err(format!("a {format:?} image, which fitnets does not read (it reads {FORMAT_NAMES})")),
        Err(_) => Err(format!("not an image: its first bytes match none of {FORMAT_NAMES}")),
    }
}

/// A reader of `bytes` as `format` under the decoding limits.
fn reader(bytes: &[u8], format: ImageFormat) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(u32::MAX);
    limits.max_image_height = Some(u32::MAX);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    reader
}

/// `image` brought to the conversion's size by its resize mode; untouched when it has
/// that size already (so images made at the model's size keep their exact pixels).
fn resize(image: DynamicImage, conversion: &Conversion) -> DynamicImage {
    let (width, height) = (conversion.width, conversion.height);
    if image.width() == width && image.height() == height {
        return image;
    }
    let filter = FilterType::Triangle;
    match conversion.resize {
        Resize::Stretch => image.resize_exact(width, height, filter),
        Resize::Fill => image.resize_to_fill(width, height, filter),
        Resize::Fit => {
            let inner = image.resize(width, height, filter);
            let mut canvas = match conversion.channels {
                1 => DynamicImage::new_luma8(width, height),
                _ => DynamicImage::new_rgb8(width, height),
            };
            let x = (width - inner.width()) / 2;
            let y = (height - inner.height()) / 2;
            image::imageops::replace(&mut canvas, &inner, i64::from(x), i64::from(y));
            canvas
        }
    }
}

/// Whether a file name has one of the image [`EXTENSIONS`].
pub fn has_image_extension(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)),
        _ => false,
    }
}
