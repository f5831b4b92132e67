//! The MJPEG server's frames, encoded with GStreamer (`… ! jpegenc ! appsink`): a scene's loop
//! per server, and the calibration scenes' loops once per process.

use super::mjpeg::{FRAME_COUNT, FRAME_HEIGHT, FRAME_WIDTH};
use super::scenes::{self, Scene};
use super::{gst_init, DemoError};
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ENCODE_DEADLINE: Duration = Duration::from_secs(20);

/// The calibration scenes' loops.
#[derive(Debug)]
pub(super) struct SceneLoops {
    pub(super) still: Vec<Bytes>,
    pub(super) dark: Vec<Bytes>,
    pub(super) frozen_clock: Vec<Bytes>,
}

/// Encoded once per process: every server shares them.
pub(super) fn scene_loops() -> Result<Arc<SceneLoops>, DemoError> {
    static LOOPS: OnceLock<Result<Arc<SceneLoops>, String>> = OnceLock::new();
    let encoded = LOOPS.get_or_init(|| {
        let encode = |scene| encode_jpegs(scene, FRAME_COUNT).map_err(|e| e.to_string());
        Ok(Arc::new(SceneLoops {
            still: encode(Scene::NoisyStill)?,
            dark: encode(Scene::DarkLive)?,
            frozen_clock: encode(Scene::FrozenClock)?,
        }))
    });
    encoded.clone().map_err(DemoError::Gst)
}

/// Encodes `count` frames of a scene as JPEG.
pub(super) fn encode_jpegs(scene: Scene, count: u32) -> Result<Vec<Bytes>, DemoError> {
    gst_init()?;
    let format = scenes::Format {
        width: FRAME_WIDTH,
        height: FRAME_HEIGHT,
        fps: 10,
        live: false,
    };
    let pattern = format!("{scene:?}");
    let description = scene.description(
        format,
        Some(count),
        "jpegenc quality=75 ! appsink name=sink sync=false",
    );
    let pipeline = gst::parse::launch(&description)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| DemoError::Gst("the JPEG encoder description is not a pipeline".into()))?;
    let stopper = StopOnDrop(pipeline.clone());
    let sink = pipeline
        .by_name("sink")
        .and_then(|element| element.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| DemoError::Gst("the JPEG encoder has no appsink".into()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| DemoError::Gst("pipeline without a bus".into()))?;
    pipeline.set_state(gst::State::Playing)?;

    let deadline = Instant::now() + ENCODE_DEADLINE;
    let mut frames = Vec::with_capacity(count as usize);
    while frames.len() < count as usize {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            let buffer = sample
                .buffer()
                .ok_or_else(|| DemoError::Gst("JPEG sample without buffer".into()))?;
            let map = buffer.map_readable()?;
            frames.push(Bytes::copy_from_slice(map.as_slice()));
            continue;
        }
        if let Some(message) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = message.view() {
                return Err(DemoError::Gst(format!("encoding JPEG frames: {}", err.error())));
            }
        }
        if sink.is_eos() || Instant::now() > deadline {
            break;
        }
    }
    drop(stopper);
    if frames.len() < count as usize {
        return Err(DemoError::Gst(format!(
            "jpegenc produced {} of {count} '{pattern}' frames",
            frames.len()
        )));
    }
    Ok(frames)
}

/// Sets a pipeline to NULL however the function that owns it returns.
struct StopOnDrop(gst::Pipeline);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Failing to reach NULL leaves nothing for us to recover; the pipeline is freed anyway.
        let _ = self.0.set_state(gst::State::Null);
    }
}
