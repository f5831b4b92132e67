//! Calibration scenes: pictures like real cameras send, for the picture checks' tests, the demo
//! and the benchmarks. A test pattern alone is not a camera: a real sensor adds noise to every
//! pixel of every frame, a stuck camera keeps drawing its on-screen clock over a frozen picture,
//! and an H.264 camera's encoder runs whether anyone watches or not, so a probe joins between
//! keyframes.
//!
//! | scene | picture |
//! | --- | --- |
//! | [`Scene::NoisyStill`] | a still scene (`pinwheel`) under fresh sensor noise every frame (`snow` blended at 8%) |
//! | [`Scene::DarkLive`] | a night scene: black under fresh sensor noise (3%), every cell below luma 20 |
//! | [`Scene::FrozenClock`] | one noisy frame frozen (`imagefreeze`) under a ticking clock: `clockoverlay` live, `timeoverlay` when pre-encoded |
//! | [`Scene::Black`] | black |
//! | [`Scene::Ball`] | a ball moving over black (`videotestsrc pattern=ball`) |
//!
//! The RTSP server serves them under `/scene/…` ([`SCENE_MOUNTS`]) when built with `scenes()`,
//! shared, keyframe every 2 s, with one client of its own on each ([`WarmClients`]) so the
//! encoder runs like a camera's; the MJPEG server serves them from pre-encoded loops.

use super::DemoError;
use gstreamer as gst;
use gstreamer::prelude::*;

/// A picture like a real camera's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    NoisyStill,
    DarkLive,
    FrozenClock,
    Black,
    Ball,
}

/// The RTSP scene mounts: path and scene.
pub const SCENE_MOUNTS: &[(&str, Scene)] = &[
    ("/scene/still", Scene::NoisyStill),
    ("/scene/dark", Scene::DarkLive),
    ("/scene/frozen-clock", Scene::FrozenClock),
    ("/scene/black", Scene::Black),
    ("/scene/ball", Scene::Ball),
];

/// Size and rate of a scene's raw video; `live` for a server's running encoder, not for
/// pre-encoding a loop of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub live: bool,
}

impl Scene {
    /// A gst-launch description: the scene's raw video (I420) into `tail` (e.g. an encoder and a
    /// payloader or an appsink). With `frames`, a non-live source ends after that many.
    pub fn description(self, format: Format, frames: Option<u32>, tail: &str) -> String {
        let Format {
            width,
            height,
            fps,
            live,
        } = format;
        let caps = format!("video/x-raw,format=I420,width={width},height={height},framerate={fps}/1");
        let count = frames.map_or(String::new(), |n| format!(" num-buffers={n}"));
        // Live, the picture follows the wall clock like a camera's; pre-encoded, the frame count.
        let animation = if live { " animation-mode=wall-time" } else { "" };
        let source = |pattern: &str, extra: &str| {
            format!("videotestsrc is-live={live} pattern={pattern}{animation}{extra} ! {caps}")
        };
        // Sensor noise: fresh snow blended over the picture (`alpha` of full scale).
        let noisy = |pattern: &str, alpha: f64, extra: &str| {
            format!(
                "compositor name=mix sink_1::alpha={alpha} ! {caps} ! {tail} \
                 {} ! mix.sink_0 {} ! mix.sink_1",
                source(pattern, extra),
                source("snow", extra),
            )
        };
        match self {
            Scene::NoisyStill => noisy("pinwheel", 0.08, &count),
            // Night: high gain, strong noise, the whole picture pulled below luma 20.
            Scene::DarkLive => noisy("black", 0.1, &count).replacen(
                &format!("! {caps} ! {tail}"),
                &format!("! {caps} ! videobalance brightness=-0.05 ! {caps} ! {tail}"),
                1,
            ),
            Scene::FrozenClock => {
                // One noisy frame, frozen; the camera's clock still ticks over it. Pre-encoded
                // frames come out faster than a second apart, so they carry the running time.
                let overlay = if live {
                    "clockoverlay time-format=\"%Y-%m-%d %H:%M:%S\""
                } else {
                    "timeoverlay"
                };
                format!(
                    "compositor name=mix sink_1::alpha=0.08 ! {caps} ! imagefreeze is-live={live}{count} \
                     ! {overlay} ! {caps} ! {tail} {} ! mix.sink_0 {} ! mix.sink_1",
                    source("pinwheel", " num-buffers=1"),
                    source("snow", " num-buffers=1"),
                )
            }
            Scene::Black => format!("{} ! {tail}", source("black", &count)),
            Scene::Ball => format!("{} ! {tail}", source("ball", &count)),
        }
    }
}

impl Scene {
    /// An RTSP mount's launch: live, H.264 like the standard mounts (keyframe every 2 s), `pay0`.
    pub(super) fn rtsp_launch(self, width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> String {
        let format = Format {
            width,
            height,
            fps,
            live: true,
        };
        // The frozen camera encodes at constant quality (most cameras' "VBR" default): x264's
        // bitrate control re-quantizes each keyframe of a frozen picture differently whenever
        // the encoder falls behind (a loaded test machine), which a camera's hardware encoder
        // does not. (`probe::quality` also tolerates a re-quantized band: CBR cameras.)
        let rate = match self {
            Scene::FrozenClock => "pass=quant quantizer=24".to_string(),
            _ => format!("bitrate={bitrate_kbps}"),
        };
        let tail = format!(
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={} {rate} \
             ! rtph264pay name=pay0 pt=96 config-interval=-1",
            fps * 2
        );
        format!("( {} )", self.description(format, None, &tail))
    }
}

/// One client of the server's own per scene mount, so each shared media keeps running like a
/// camera's encoder: probes then join it between keyframes. Stopped on drop.
#[derive(Debug, Default)]
pub struct WarmClients(Vec<gst::Pipeline>);

impl WarmClients {
    pub fn start(urls: &[String]) -> Result<WarmClients, DemoError> {
        let mut clients = WarmClients::default();
        for url in urls {
            let description =
                format!("rtspsrc location={url} latency=0 protocols=tcp ! fakesink sync=false async=false");
            let pipeline = gst::parse::launch(&description)?
                .downcast::<gst::Pipeline>()
                .map_err(|_| DemoError::Gst("a warm client description is not a pipeline".into()))?;
            pipeline.set_state(gst::State::Playing)?;
            clients.0.push(pipeline);
        }
        Ok(clients)
    }
}

impl Drop for WarmClients {
    fn drop(&mut self) {
        for pipeline in self.0.drain(..) {
            // Nothing to recover if it fails: the pipeline is freed anyway.
            let _ = pipeline.set_state(gst::State::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scene_parses() {
        gst::init().expect("gst");
        let format = Format {
            width: 160,
            height: 120,
            fps: 10,
            live: false,
        };
        for (_, scene) in SCENE_MOUNTS {
            let description = scene.description(format, Some(2), "fakesink");
            gst::parse::launch(&description).unwrap_or_else(|e| panic!("{description}: {e}"));
        }
    }
}
