//! A small JPEG of a decoded frame, made in-process: GStreamer's video converter scales the frame
//! to I420 at the wanted width (any raw format in, one format out), then `jpeg-encoder` writes it
//! straight from the planes. No pipeline and no thread, unlike `gst_video::convert_sample`, so
//! keeping the last picture of every stream from its own probes costs about a millisecond.

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};

/// Why a frame could not become a JPEG.
#[derive(Debug, thiserror::Error)]
pub enum JpegError {
    #[error("the frame has no caps or no data")]
    Empty,
    #[error("the frame is not raw video ({0})")]
    NotRawVideo(String),
    #[error("the frame is too large for a JPEG ({0}x{1})")]
    TooLarge(u32, u32),
    #[error("cannot read the frame: {0}")]
    Read(String),
    #[error("cannot scale the frame: {0}")]
    Scale(String),
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] jpeg_encoder::EncodingError),
}

/// An encoded picture and its size in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jpeg {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Encodes `sample` (a decoded frame) as a JPEG at most `max_width` pixels wide, keeping the
/// display aspect ratio (non-square pixels included); never upscales. `quality` is 1–100.
pub fn encode(sample: &gst::Sample, max_width: u32, quality: u8) -> Result<Jpeg, JpegError> {
    let caps = sample.caps().ok_or(JpegError::Empty)?;
    let buffer = sample.buffer().ok_or(JpegError::Empty)?;
    let media_type = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    // Checked before `VideoInfo` is trusted: it accepts encoded caps as a "valid" info of format
    // Encoded, and mapping a frame with an unusable info is an assertion (a panic), not an error.
    let in_info = gst_video::VideoInfo::from_caps(caps)
        .ok()
        .filter(|info| {
            media_type == "video/x-raw"
                && info.is_valid()
                && !matches!(
                    info.format(),
                    gst_video::VideoFormat::Encoded | gst_video::VideoFormat::Unknown
                )
                && info.width() > 0
                && info.height() > 0
        })
        .ok_or(JpegError::NotRawVideo(media_type))?;
    let (width, height) = target_size(&in_info, max_width);
    if width > u32::from(u16::MAX) || height > u32::from(u16::MAX) {
        return Err(JpegError::TooLarge(width, height));
    }
    let in_frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &in_info)
        .map_err(|e| JpegError::Read(e.to_string()))?;
    let out_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height)
        .fps(in_info.fps())
        .interlace_mode(in_info.interlace_mode())
        .build()
        .map_err(|e| JpegError::Scale(e.to_string()))?;
    let converter = gst_video::VideoConverter::new(&in_info, &out_info, None)
        .map_err(|e| JpegError::Scale(e.to_string()))?;
    let mut out_buffer =
        gst::Buffer::with_size(out_info.size()).map_err(|e| JpegError::Scale(e.to_string()))?;
    let out_ref = out_buffer.get_mut().ok_or(JpegError::Empty)?;
    let mut out_frame = gst_video::VideoFrameRef::from_buffer_ref_writable(out_ref, &out_info)
        .map_err(|e| JpegError::Scale(e.to_string()))?;
    converter.frame_ref(&in_frame, &mut out_frame);
    let planes = I420Planes::of(&out_frame)?;
    let mut bytes = Vec::with_capacity((width * height / 4) as usize);
    let mut encoder = Encoder::new(&mut bytes, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.encode_image(planes)?;
    Ok(Jpeg { bytes, width, height })
}

/// The output size: the display width (pixel aspect ratio applied) capped at `max_width`, the
/// height to match, both even (I420 halves them) and at least 2.
fn target_size(info: &gst_video::VideoInfo, max_width: u32) -> (u32, u32) {
    let par = info.par();
    let (numer, denom) = (par.numer().max(1) as u64, par.denom().max(1) as u64);
    let display_width = (u64::from(info.width()) * numer / denom).max(1);
    let width = display_width.min(u64::from(max_width.max(2)));
    let height = (u64::from(info.height()) * width / display_width).max(1);
    let even = |v: u64| u32::try_from((v + 1) & !1).unwrap_or(u32::MAX).max(2);
    (even(width), even(height))
}

/// The three planes of an I420 frame, as `jpeg-encoder` reads them: full-size rows of Y, Cb, Cr
/// (chroma repeated over its 2×2 block; the encoder subsamples again for 4:2:0).
struct I420Planes<'a> {
    width: u16,
    height: u16,
    luma: (&'a [u8], usize),
    cb: (&'a [u8], usize),
    cr: (&'a [u8], usize),
}

impl<'a> I420Planes<'a> {
    fn of(frame: &'a gst_video::VideoFrameRef<&mut gst::BufferRef>) -> Result<Self, JpegError> {
        let plane = |index: u32| -> Result<(&'a [u8], usize), JpegError> {
            let data = frame
                .plane_data(index)
                .map_err(|e| JpegError::Read(e.to_string()))?;
            let stride = usize::try_from(frame.plane_stride()[index as usize])
                .map_err(|_| JpegError::Read("negative stride".into()))?;
            Ok((data, stride))
        };
        let too_large = || JpegError::TooLarge(frame.width(), frame.height());
        Ok(I420Planes {
            width: u16::try_from(frame.width()).map_err(|_| too_large())?,
            height: u16::try_from(frame.height()).map_err(|_| too_large())?,
            luma: plane(0)?,
            cb: plane(1)?,
            cr: plane(2)?,
        })
    }
}

impl ImageBuffer for I420Planes<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let width = usize::from(self.width);
        let luma = row(self.luma, usize::from(y), width);
        let chroma_width = width.div_ceil(2);
        let cb = row(self.cb, usize::from(y) / 2, chroma_width);
        let cr = row(self.cr, usize::from(y) / 2, chroma_width);
        for x in 0..width {
            buffers[0].push(luma.get(x).copied().unwrap_or(16));
            buffers[1].push(cb.get(x / 2).copied().unwrap_or(128));
            buffers[2].push(cr.get(x / 2).copied().unwrap_or(128));
        }
    }
}

/// Row `line` of a plane (`len` bytes), or nothing when the plane is shorter.
fn row((data, stride): (&[u8], usize), line: usize, len: usize) -> &[u8] {
    data.get(line * stride..line * stride + len).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame of `format` at `width`×`height`, filled with a gradient so the JPEG has content.
    fn frame(format: gst_video::VideoFormat, width: u32, height: u32) -> gst::Sample {
        gst::init().expect("gstreamer");
        let info = gst_video::VideoInfo::builder(format, width, height)
            .build()
            .expect("info");
        let mut buffer = gst::Buffer::with_size(info.size()).expect("buffer");
        {
            let data = buffer.get_mut().expect("writable");
            let mut map = data.map_writable().expect("map");
            for (i, byte) in map.as_mut_slice().iter_mut().enumerate() {
                *byte = (i % 251) as u8;
            }
        }
        gst::Sample::builder()
            .buffer(&buffer)
            .caps(&info.to_caps().expect("caps"))
            .build()
    }

    /// Width and height from the JPEG's start-of-frame marker.
    fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "starts with SOI");
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9], "ends with EOI");
        let mut at = 2;
        while at + 9 < bytes.len() {
            let marker = bytes[at + 1];
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            if (0xC0..=0xC2).contains(&marker) {
                let h = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]);
                let w = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]);
                return (u32::from(w), u32::from(h));
            }
            at += 2 + len;
        }
        panic!("no start-of-frame marker");
    }

    #[test]
    fn a_640x360_frame_becomes_a_320x180_jpeg() {
        let jpeg = encode(&frame(gst_video::VideoFormat::I420, 640, 360), 320, 75).expect("jpeg");
        assert_eq!((jpeg.width, jpeg.height), (320, 180));
        assert_eq!(jpeg_size(&jpeg.bytes), (320, 180));
        assert!(jpeg.bytes.len() < 40_000, "small: {} bytes", jpeg.bytes.len());
    }

    #[test]
    fn small_frames_are_not_upscaled_and_other_formats_convert() {
        for format in [
            gst_video::VideoFormat::Nv12,
            gst_video::VideoFormat::Rgb,
            gst_video::VideoFormat::Yuy2,
            gst_video::VideoFormat::Gray8,
        ] {
            let jpeg = encode(&frame(format, 160, 120), 320, 75).expect("jpeg");
            assert_eq!(jpeg_size(&jpeg.bytes), (160, 120), "{format:?}");
        }
    }

    #[test]
    fn compressed_frames_are_refused() {
        gst::init().expect("gstreamer");
        let sample = gst::Sample::builder()
            .buffer(&gst::Buffer::from_slice(vec![0u8; 64]))
            .caps(&gst::Caps::builder("video/x-h264").build())
            .build();
        assert!(
            matches!(encode(&sample, 320, 75), Err(JpegError::NotRawVideo(name)) if name == "video/x-h264")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Odd and tiny sizes: always a valid JPEG of even size within the cap, never a panic.
        #[test]
        fn any_frame_size_encodes(width in 1u32..700, height in 1u32..500, max_width in 0u32..400) {
            let jpeg = encode(&frame(gst_video::VideoFormat::I420, width, height), max_width, 60)
                .expect("jpeg");
            let (w, h) = jpeg_size(&jpeg.bytes);
            prop_assert_eq!((w, h), (jpeg.width, jpeg.height));
            prop_assert!(w % 2 == 0 && h % 2 == 0 && w >= 2 && h >= 2);
            prop_assert!(w <= max_width.max(2).max(width + 1));
        }
    }
}
