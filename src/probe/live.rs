//! The live view's pipeline: the stream's own template (so custom sources and decoders work as
//! they do for probes), kept playing after the first clean frame and handing over every clean
//! frame after it. Starting waits for that first frame under the probe deadline, so a camera that
//! is down answers with the probe's verdict; afterwards an error or EOS just ends the feed.
//! Dropping a [`LiveFeed`] hands its pipeline to the [`Reaper`]: teardown never runs on an async
//! worker, and a feed dropped by a panic or a cancelled task is torn down all the same.

use super::run::{open_session, prepare, Plan};
use super::session::{FrameWanted, ProbeSession};
use super::teardown::{Reaper, TeardownDone};
use super::{ProbeOutcome, ProbeRequest, Reason};
use gstreamer as gst;
use std::time::{Duration, Instant};

/// A decoded frame and when the appsink handed it over.
#[derive(Debug)]
pub struct LiveFrame {
    pub at: Instant,
    pub sample: gst::Sample,
}

/// A playing pipeline of the stream's template.
pub struct LiveFeed {
    session: Option<ProbeSession>,
    reaper: Reaper,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("playing", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl LiveFeed {
    /// Builds and plays the stream's pipeline and waits (up to the request's deadline) for the
    /// first frame the decoder did not flag corrupt. A failure is the probe's outcome, its
    /// pipeline already handed to the reaper.
    pub async fn start(
        request: &ProbeRequest,
        reaper: &Reaper,
    ) -> Result<(LiveFeed, LiveFrame), ProbeOutcome> {
        let started = Instant::now();
        let deadline = started + request.timeout;
        // The pin and the template, as a probe has them.
        let detected = prepare(request, reaper, started, deadline)
            .await
            .map_err(|(down, _teardown)| down)?;
        let request = detected.as_ref().map_or(request, |d| &d.request);
        let session = open_session(
            request,
            reaper,
            FrameWanted::Live,
            Duration::ZERO,
            Plan::remembered(request),
        )
        .map_err(|not_opened| not_opened.outcome)?;
        let mut feed = LiveFeed {
            session: Some(session),
            reaper: reaper.clone(),
        };
        let Some(session) = feed.session.as_mut() else {
            return Err(ProbeOutcome::down(Reason::Other, "live feed lost its pipeline"));
        };
        let first = match session.first_frame(request, started, deadline).await {
            Ok(first) => first,
            // An https camera's untrusted certificate, said as a probe says it.
            Err(down) => return Err(super::tls::explained(request, deadline, down).await),
        };
        Ok((
            feed,
            LiveFrame {
                at: first.at,
                sample: first.sample,
            },
        ))
    }

    /// The next clean frame, or `None` when the stream is over (an error or EOS).
    pub async fn next_frame(&mut self) -> Option<LiveFrame> {
        let frame = self.session.as_mut()?.next_frame().await?;
        Some(LiveFrame {
            at: frame.at,
            sample: frame.sample,
        })
    }

    /// Hands the pipeline to the reaper; the returned handle resolves once it is torn down.
    pub fn close(mut self) -> Option<TeardownDone> {
        self.session
            .take()
            .map(|session| self.reaper.dispose(session.into_pipeline()))
    }
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.reaper.dispose(session.into_pipeline());
        }
    }
}
