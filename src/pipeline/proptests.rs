//! Randomised tests of what turns user input into a running pipeline: template substitution
//! (values from the config and the camera URL must never leave their property) and the MJPEG
//! reader of the `mjpeg` template (`multipartdemux ! jpegparse ! jpegdec`), fed from an appsrc in
//! random chunks and with random bytes.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use proptest::prelude::*;

use super::*;

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The top-level elements a description parses to (a lone element counts one).
fn parse(rendered: &str) -> Vec<gst::Element> {
    init_gstreamer().expect("gst init");
    let element = gst::parse::launch(rendered).unwrap_or_else(|e| panic!("{rendered:?} does not parse: {e}"));
    match element.downcast::<gst::Bin>() {
        Ok(bin) => bin.children(),
        Err(single) => vec![single],
    }
}

/// Text a placeholder value may hold: anything printable, heavy on gst-launch syntax.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[ !\"'\\\\=,;{}()<>.:/a-z@#%-]{0,24}",
        Just(r#"x" ! fakesink name=evil "y"#.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any value lands whole in its property: the pipeline keeps its three elements and each
    /// property reads back exactly as given.
    #[test]
    fn values_never_leave_their_property(name in hostile(), location in hostile()) {
        prop_assume!(!["src", "sink"].contains(&name.as_str()));
        let template = Template::from_text(
            "t",
            TemplateSource::Shipped,
            "multifilesrc name=src location={location} ! identity name={name} ! fakesink name=sink",
        );
        let rendered = match template.render(&values(&[("name", &name), ("location", &location)])) {
            Ok(rendered) => rendered,
            // The one value GStreamer's syntax cannot quote: refused, never rendered.
            Err(PipelineError::UnquotableValue { .. }) => {
                prop_assert!(name.ends_with('\\') || location.ends_with('\\'));
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        let elements = parse(&rendered);
        prop_assert_eq!(elements.len(), 3, "{}", rendered);
        let source = elements.iter().find(|e| e.name() == "src").expect("source kept its name");
        prop_assert_eq!(source.property::<Option<String>>("location").unwrap_or_default(), location);
        // An empty name makes GStreamer pick one (`identity0`): nothing to compare.
        if !name.is_empty() {
            let names: Vec<String> = elements.iter().map(|e| e.name().to_string()).collect();
            prop_assert!(names.contains(&name), "{:?} from {}", names, rendered);
        }
    }

    /// Quoting round-trips through GStreamer's own parser for any text.
    #[test]
    fn quoting_round_trips_through_gst_launch(value in hostile()) {
        prop_assume!(!value.is_empty() && !value.ends_with('\\'));
        let rendered = format!("identity name={}", quote_value(&value));
        let elements = parse(&rendered);
        prop_assert_eq!(elements.len(), 1);
        prop_assert_eq!(elements[0].name().to_string(), value, "{}", rendered);
    }

    /// Any template text: rendering never panics; a placeholder without value or default is
    /// reported by name; with every placeholder given, rendering succeeds.
    #[test]
    fn unknown_placeholders_are_reported(body in "[a-z {}=_!.]{0,40}", known in "[a-z]{1,6}") {
        let template = Template::from_text("t", TemplateSource::Shipped, &body);
        let given = values(&[(&known, "1")]);
        let missing: Vec<String> = template
            .placeholders()
            .into_iter()
            .filter(|(name, default)| default.is_none() && !given.contains_key(name))
            .map(|(name, _)| name)
            .collect();
        match template.render(&given) {
            Ok(_) => prop_assert!(missing.is_empty(), "{:?} not reported", missing),
            Err(PipelineError::UnknownPlaceholder { placeholder, .. }) => {
                prop_assert_eq!(Some(&placeholder), missing.first());
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
        let all: BTreeMap<String, String> = template
            .placeholders()
            .into_iter()
            .map(|(name, _)| (name, "v".to_string()))
            .collect();
        prop_assert!(template.render(&all).is_ok());
    }
}

#[test]
fn values_starting_with_a_quote_arrive_exactly() {
    // Found by `values_never_leave_their_property`: GStreamer reads a property value starting
    // with `"` as its own quoted string, so `"` failed to parse and `"a"` arrived as `a`.
    for value in ["\"", "\"a\"", "\"é \\ x", "\"\"", "\"pa ss\" ! fakesink"] {
        let rendered = format!("identity name={}", quote_value(value));
        let elements = parse(&rendered);
        assert_eq!(elements.len(), 1, "{rendered}");
        assert_eq!(elements[0].name().as_str(), value, "{rendered}");
    }
}

#[test]
fn a_brace_before_a_placeholder_is_text_for_both_scanners() {
    // Found by `unknown_placeholders_are_reported`: `placeholders()` skipped to the first `}`.
    let template = Template::from_text("t", TemplateSource::Shipped, "{{a} x");
    assert_eq!(template.placeholders(), vec![("a".to_string(), None)]);
    assert_eq!(template.render(&values(&[("a", "v")])).expect("renders"), "{v x");
}

#[test]
fn a_value_ending_in_a_backslash_is_refused_not_injected() {
    // Found by `values_never_leave_their_property`: GStreamer's lexer reads `\"` at the end of a
    // quoted value as an escaped quote and runs on to the next `"`, so the following value was
    // parsed as pipeline syntax (`fakesink name=evil` got built).
    let template = Template::from_text(
        "t",
        TemplateSource::Shipped,
        "multifilesrc location={location} ! identity name={user} ! fakesink name=sink",
    );
    let evil = values(&[
        ("location", "http://cam/x\\"),
        ("user", " ! fakesink name=evil ! identity name="),
    ]);
    match template.render(&evil) {
        Err(PipelineError::UnquotableValue { placeholder, .. }) => assert_eq!(placeholder, "location"),
        other => panic!("{other:?}"),
    }
    // Backslashes elsewhere are fine.
    let fine = template
        .render(&values(&[("location", "a\\b\\\"c"), ("user", "u")]))
        .expect("renders");
    assert_eq!(parse(&fine).len(), 3);
}

/// Three JPEG frames (different pictures), encoded once.
fn jpegs() -> &'static Vec<Vec<u8>> {
    static JPEGS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    JPEGS.get_or_init(|| {
        init_gstreamer().expect("gst init");
        let pipeline = gst::parse::launch(
            "videotestsrc pattern=ball num-buffers=3 ! video/x-raw,width=64,height=48 \
             ! jpegenc ! appsink name=out sync=false",
        )
        .expect("encoder")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
        let sink = pipeline
            .by_name("out")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .expect("appsink");
        pipeline.set_state(gst::State::Playing).expect("play");
        let mut frames = Vec::new();
        while let Ok(sample) = sink.pull_sample() {
            let buffer = sample.buffer().expect("buffer");
            frames.push(buffer.map_readable().expect("map").to_vec());
        }
        let _ = pipeline.set_state(gst::State::Null);
        assert_eq!(frames.len(), 3);
        frames
    })
}

/// A multipart stream as cameras (and `demo::mjpeg`) send it.
fn multipart(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut stream = Vec::new();
    for frame in frames {
        stream.extend_from_slice(
            format!(
                "--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                frame.len()
            )
            .as_bytes(),
        );
        stream.extend_from_slice(frame);
        stream.extend_from_slice(b"\r\n");
    }
    stream
}

/// How the reader ended.
#[derive(Debug, PartialEq)]
enum Ending {
    /// End of stream, with a hash of each decoded frame.
    Eos(Vec<u64>),
    /// A bus error: its message (never empty), and the frames decoded before it.
    Error(String, usize),
}

/// The `mjpeg` template's reader, fed `bytes` in pieces of the given sizes (cycled).
fn read_mjpeg(bytes: &[u8], piece_sizes: &[usize]) -> Ending {
    init_gstreamer().expect("gst init");
    let template = TemplateLibrary::new(None).find("mjpeg").expect("shipped");
    // Everything after the HTTP source is the reader.
    let (_, reader) = template.body.split_once('!').expect("a source, then the reader");
    let description = format!("appsrc name=feed format=bytes ! {reader}");
    let pipeline = gst::parse::launch(&description)
        .expect("reader parses")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
    let feed = pipeline
        .by_name("feed")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("appsrc");
    let sink = pipeline
        .by_name(SINK_NAME)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink");
    sink.set_property("sync", false);
    pipeline.set_state(gst::State::Playing).expect("play");
    let mut offset = 0;
    for size in piece_sizes.iter().cycle() {
        if offset >= bytes.len() {
            break;
        }
        let end = (offset + size.max(&1)).min(bytes.len());
        let _ = feed.push_buffer(gst::Buffer::from_slice(bytes[offset..end].to_vec()));
        offset = end;
    }
    let _ = feed.end_of_stream();
    let bus = pipeline.bus().expect("bus");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut frames = Vec::new();
    let ending = loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(20)) {
            let buffer = sample.buffer().expect("buffer");
            let map = buffer.map_readable().expect("map");
            frames.push(map.iter().fold(0xcbf29ce484222325u64, |hash, &byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
            }));
            continue;
        }
        match bus.pop_filtered(&[gst::MessageType::Error]) {
            Some(message) => {
                if let gst::MessageView::Error(error) = message.view() {
                    break Ending::Error(error.error().to_string(), frames.len());
                }
            }
            None if sink.is_eos() => break Ending::Eos(frames.clone()),
            None => {}
        }
        assert!(
            Instant::now() < deadline,
            "the reader neither ended nor failed within 10 s"
        );
    };
    let _ = pipeline.set_state(gst::State::Null);
    ending
}

#[test]
fn a_whole_multipart_stream_decodes_every_frame() {
    let stream = multipart(jpegs());
    match read_mjpeg(&stream, &[stream.len()]) {
        Ending::Eos(frames) => assert_eq!(frames.len(), 3),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// However the bytes arrive (one byte at a time, mid-boundary, mid-header), the same
    /// frames come out.
    #[test]
    fn any_chunking_decodes_the_same_frames(sizes in proptest::collection::vec(1usize..3000, 1..8)) {
        let stream = multipart(jpegs());
        let whole = read_mjpeg(&stream, &[stream.len()]);
        prop_assert_eq!(read_mjpeg(&stream, &sizes), whole);
    }

    /// Random bytes, alone or after a valid part, end the stream or fail with a message, never
    /// hang or crash; frames are only ever the valid ones.
    #[test]
    fn garbage_ends_or_fails_with_a_message(
        garbage in proptest::collection::vec(any::<u8>(), 0..4096),
        after_a_frame in any::<bool>(),
        sizes in proptest::collection::vec(1usize..2000, 1..4),
    ) {
        let mut bytes = if after_a_frame { multipart(&jpegs()[..1]) } else { Vec::new() };
        bytes.extend_from_slice(&garbage);
        let valid = usize::from(after_a_frame);
        match read_mjpeg(&bytes, &sizes) {
            Ending::Eos(frames) => prop_assert!(frames.len() <= valid, "{} frames", frames.len()),
            Ending::Error(message, frames) => {
                prop_assert!(!message.trim().is_empty());
                prop_assert!(frames <= valid);
            }
        }
    }
}
