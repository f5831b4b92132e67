//! Pipeline templates: gst-launch descriptions with `{placeholders}` that turn a stream's config
//! into a GStreamer pipeline ending in `appsink name=sink`.
//!
//! Templates are looked up in the user's directory first (`pipelines_dir`), then among the ones
//! shipped inside the binary (the `pipelines/` folder of the source tree).

use gstreamer as gst;
use gstreamer::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Templates compiled into the binary, so it works from any directory.
const SHIPPED: &[(&str, &str)] = &[
    ("rtsp", include_str!("../pipelines/rtsp.pipeline")),
    ("rtsp-tcp", include_str!("../pipelines/rtsp-tcp.pipeline")),
    ("rtsp-udp", include_str!("../pipelines/rtsp-udp.pipeline")),
    ("rtsp-h265", include_str!("../pipelines/rtsp-h265.pipeline")),
    (
        "rtsp-h264-v4l2",
        include_str!("../pipelines/rtsp-h264-v4l2.pipeline"),
    ),
    (
        "rtsp-nodecode",
        include_str!("../pipelines/rtsp-nodecode.pipeline"),
    ),
    ("mjpeg", include_str!("../pipelines/mjpeg.pipeline")),
    ("http-h264", include_str!("../pipelines/http-h264.pipeline")),
    ("hls", include_str!("../pipelines/hls.pipeline")),
    ("snapshot", include_str!("../pipelines/snapshot.pipeline")),
    ("v4l2", include_str!("../pipelines/v4l2.pipeline")),
    ("libcamera", include_str!("../pipelines/libcamera.pipeline")),
];

/// Placeholders the probe fills itself; any other placeholder must come from the stream's
/// `params:` or have a default in the template (`{device=/dev/video0}`).
pub const PROBE_PLACEHOLDERS: &[&str] = &[
    "url",
    "location",
    "user",
    "password",
    "timeout_us",
    "timeout_s",
    "udp_fallback_us",
    "latency_ms",
];

/// Debian packages that usually provide an element, for "missing element" errors.
const ELEMENT_PACKAGES: &[(&str, &str)] = &[
    (
        "v4l2h264dec",
        "gstreamer1.0-plugins-good (Raspberry Pi OS kernel with the V4L2 decoder)",
    ),
    (
        "v4l2h265dec",
        "gstreamer1.0-plugins-good (hardware with a V4L2 HEVC decoder)",
    ),
    ("v4l2src", "gstreamer1.0-plugins-good"),
    ("libcamerasrc", "gstreamer1.0-libcamera"),
    ("rtspsrc", "gstreamer1.0-plugins-good"),
    ("souphttpsrc", "gstreamer1.0-plugins-good"),
    ("multipartdemux", "gstreamer1.0-plugins-good"),
    ("jpegdec", "gstreamer1.0-plugins-good"),
    ("jpegparse", "gstreamer1.0-plugins-bad"),
    ("rtph264depay", "gstreamer1.0-plugins-good"),
    ("rtph265depay", "gstreamer1.0-plugins-good"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("h265parse", "gstreamer1.0-plugins-bad"),
    ("hlsdemux", "gstreamer1.0-plugins-bad"),
    ("avdec_h264", "gstreamer1.0-libav"),
    ("avdec_h265", "gstreamer1.0-libav"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("decodebin", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videoscale", "gstreamer1.0-plugins-base"),
];

/// The package to suggest for a missing element.
pub fn package_for_element(element: &str) -> &'static str {
    ELEMENT_PACKAGES
        .iter()
        .find(|(name, _)| *name == element)
        .map(|(_, package)| *package)
        .unwrap_or("a GStreamer plugin package (gstreamer1.0-plugins-good/-bad/-ugly or -libav)")
}

/// The appsink every template must end in.
pub const SINK_NAME: &str = "sink";

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no pipeline template named '{0}'")]
    UnknownTemplate(String),
    #[error("could not read template {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("template '{template}' uses unknown placeholder {{{placeholder}}}")]
    UnknownPlaceholder { template: String, placeholder: String },
    #[error("template '{template}' does not parse: {message}")]
    Parse { template: String, message: String },
    #[error("template '{template}' has no appsink named '{SINK_NAME}'")]
    NoSink { template: String },
    #[error(
        "template '{template}' needs element '{element}', which is not installed (usually in {package})"
    )]
    MissingElement {
        template: String,
        element: String,
        package: &'static str,
    },
    #[error("template '{template}' needs param '{param}' (add `params: {{{param}: ...}}` to the stream)")]
    MissingParam { template: String, param: String },
    #[error(
        "template '{template}': the value of {{{placeholder}}} ends with a backslash, which a \
         pipeline description cannot quote safely"
    )]
    UnquotableValue { template: String, placeholder: String },
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
}

/// Where a template came from, for `streampulse templates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    Shipped,
    User(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub source: TemplateSource,
    /// First comment line, for listings.
    pub description: String,
    /// The gst-launch description with placeholders, comments removed.
    pub body: String,
}

impl Template {
    pub fn from_text(name: &str, source: TemplateSource, text: &str) -> Template {
        let mut description = String::new();
        let mut body = Vec::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(comment) = trimmed.strip_prefix('#') {
                if description.is_empty() {
                    description = comment.trim().to_string();
                }
            } else if !trimmed.is_empty() {
                body.push(trimmed);
            }
        }
        Template {
            name: name.to_string(),
            source,
            description,
            body: body.join(" "),
        }
    }

    /// Placeholders the template uses, in order of first use, with their defaults.
    pub fn placeholders(&self) -> Vec<(String, Option<String>)> {
        let mut found: Vec<(String, Option<String>)> = Vec::new();
        let mut rest = self.body.as_str();
        // Scans exactly as `render` does: a `{` that does not open a placeholder is text, and
        // the search goes on from the next character (`{{a}` holds the placeholder `a`).
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let placeholder = after
                .find('}')
                .and_then(|close| Some((close, parse_placeholder(&after[..close])?)));
            match placeholder {
                Some((close, (name, default))) => {
                    if !found.iter().any(|(n, _)| n == name) {
                        found.push((name.to_string(), default.map(str::to_string)));
                    }
                    rest = &after[close + 1..];
                }
                None => rest = after,
            }
        }
        found
    }

    /// Whether the template reads the stream's URL (local-device templates do not).
    pub fn uses_url(&self) -> bool {
        self.placeholders()
            .iter()
            .any(|(name, _)| matches!(name.as_str(), "url" | "location"))
    }

    /// Placeholders that neither the probe nor a default fills: they must come from `params:`.
    pub fn required_params(&self) -> Vec<String> {
        self.placeholders()
            .into_iter()
            .filter(|(name, default)| default.is_none() && !PROBE_PLACEHOLDERS.contains(&name.as_str()))
            .map(|(name, _)| name)
            .collect()
    }

    /// Element factory names the description instantiates (caps filters and properties skipped).
    pub fn element_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for segment in self.body.split('!') {
            let Some(first) = segment.split_whitespace().next() else {
                continue;
            };
            // `video/x-raw,...` is a caps filter, `name.` a reference to a named element.
            if first.contains('/') || first.contains('=') || first.ends_with('.') || first.starts_with('{') {
                continue;
            }
            if !names.iter().any(|n| n == first) {
                names.push(first.to_string());
            }
        }
        names
    }

    /// The first element the description needs that GStreamer does not have.
    pub fn missing_element(&self) -> Option<PipelineError> {
        if init_gstreamer().is_err() {
            return None;
        }
        self.element_names()
            .into_iter()
            .find(|name| gst::ElementFactory::find(name).is_none())
            .map(|element| PipelineError::MissingElement {
                template: self.name.clone(),
                package: package_for_element(&element),
                element,
            })
    }

    /// Everything that can be known before a probe runs: elements installed, params given, and
    /// the description parses into a pipeline with the `sink` appsink.
    pub fn check(&self, params: &BTreeMap<String, String>) -> Result<(), PipelineError> {
        if let Some(missing) = self.missing_element() {
            return Err(missing);
        }
        if let Some(param) = self
            .required_params()
            .into_iter()
            .find(|p| !params.contains_key(p))
        {
            return Err(PipelineError::MissingParam {
                template: self.name.clone(),
                param,
            });
        }
        let mut values = params.clone();
        for name in PROBE_PLACEHOLDERS {
            values
                .entry((*name).to_string())
                .or_insert_with(|| "0".to_string());
        }
        values.insert("location".into(), "rtsp://127.0.0.1/check".into());
        values.insert("url".into(), "rtsp://127.0.0.1/check".into());
        let rendered = self.render(&values)?;
        let (pipeline, _) = build(self, &rendered)?;
        let _ = pipeline.set_state(gst::State::Null);
        Ok(())
    }

    /// Fills the placeholders. Every value is quoted and escaped unless it is a plain token, so a
    /// URL or password can never add elements or properties to the pipeline; a value ending in a
    /// backslash, which cannot be quoted, is refused.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, PipelineError> {
        let mut out = String::with_capacity(self.body.len() + 64);
        let mut rest = self.body.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let placeholder = after
                .find('}')
                .and_then(|close| Some((close, parse_placeholder(&after[..close])?)));
            match placeholder {
                Some((close, (name, default))) => {
                    let value = values.get(name).map(String::as_str).or(default).ok_or_else(|| {
                        PipelineError::UnknownPlaceholder {
                            template: self.name.clone(),
                            placeholder: name.to_string(),
                        }
                    })?;
                    // GStreamer's lexer reads `\"` as an escaped quote and runs on to the next
                    // quote, which would make the following value pipeline syntax.
                    if value.ends_with('\\') {
                        return Err(PipelineError::UnquotableValue {
                            template: self.name.clone(),
                            placeholder: name.to_string(),
                        });
                    }
                    out.push_str(&quote_value(value));
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `name` or `name=default` inside braces.
fn parse_placeholder(inner: &str) -> Option<(&str, Option<&str>)> {
    let (name, default) = match inner.split_once('=') {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    is_placeholder_name(name).then_some((name, default))
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A plain token goes in bare (numbers, enum nicks, device paths); anything else is a quoted
/// gst-launch string with `\` and `"` escaped.
pub fn quote_value(value: &str) -> String {
    // GStreamer reads a string property that starts with `"` as a quoted string of its own
    // (`gst_value_deserialize`): `"a"` would arrive as `a`, and a lone `"` not at all. Such a
    // value goes in as that quoted form of itself, so it arrives exactly as written.
    if value.starts_with('"') {
        return quote_token(&gst_string_wrap(value));
    }
    quote_token(value)
}

/// GStreamer's quoted-string form of `value` (what `gst_string_unwrap` reads back): every byte
/// it would not copy as is, escaped in octal.
fn gst_string_wrap(value: &str) -> String {
    let mut wrapped = String::with_capacity(value.len() + 8);
    wrapped.push('"');
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"_-+/:.".contains(&byte) {
            wrapped.push(char::from(byte));
        } else {
            wrapped.push_str(&format!("\\{byte:03o}"));
        }
    }
    wrapped.push('"');
    wrapped
}

/// The value bare when it is a plain token, else quoted for gst-launch's lexer.
fn quote_token(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:+-".contains(c));
    if plain {
        return value.to_string();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Finds templates: the user's directory first, then the shipped ones.
#[derive(Debug, Clone, Default)]
pub struct TemplateLibrary {
    user_dir: Option<PathBuf>,
}

impl TemplateLibrary {
    pub fn new(user_dir: Option<&Path>) -> Self {
        Self {
            user_dir: user_dir.map(Path::to_path_buf),
        }
    }

    pub fn find(&self, name: &str) -> Result<Template, PipelineError> {
        if !is_placeholder_name(&name.replace('-', "_")) {
            return Err(PipelineError::UnknownTemplate(name.to_string()));
        }
        if let Some(dir) = &self.user_dir {
            let path = dir.join(format!("{name}.pipeline"));
            match std::fs::read_to_string(&path) {
                Ok(text) => return Ok(Template::from_text(name, TemplateSource::User(path), &text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PipelineError::Read { path, source }),
            }
        }
        SHIPPED
            .iter()
            .find(|(shipped, _)| *shipped == name)
            .map(|(_, text)| Template::from_text(name, TemplateSource::Shipped, text))
            .ok_or_else(|| PipelineError::UnknownTemplate(name.to_string()))
    }

    /// Every template visible, user ones shadowing shipped ones of the same name.
    pub fn list(&self) -> Vec<Template> {
        let mut by_name: BTreeMap<String, Template> = SHIPPED
            .iter()
            .map(|(name, text)| {
                (
                    name.to_string(),
                    Template::from_text(name, TemplateSource::Shipped, text),
                )
            })
            .collect();
        if let Some(dir) = &self.user_dir {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Some(name) = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_suffix(".pipeline"))
                        .map(str::to_string)
                    else {
                        continue;
                    };
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        let template = Template::from_text(&name, TemplateSource::User(path), &text);
                        by_name.insert(name, template);
                    }
                }
            }
        }
        by_name.into_values().collect()
    }
}

/// The default template for a URL scheme.
pub fn default_template_for_scheme(scheme: &str) -> Option<&'static str> {
    match scheme {
        "rtsp" | "rtsps" => Some("rtsp"),
        "http" | "https" => Some("mjpeg"),
        _ => None,
    }
}

/// Initialises GStreamer once; safe to call from anywhere.
pub fn init_gstreamer() -> Result<(), PipelineError> {
    gst::init().map_err(|e| PipelineError::Init(e.to_string()))
}

/// Parses a rendered description into a pipeline and finds its appsink.
pub fn build(
    template: &Template,
    rendered: &str,
) -> Result<(gst::Pipeline, gstreamer_app::AppSink), PipelineError> {
    init_gstreamer()?;
    let element = gst::parse::launch_full(rendered, None, gst::ParseFlags::FATAL_ERRORS).map_err(|e| {
        PipelineError::Parse {
            template: template.name.clone(),
            message: crate::url::redact_text(&e.to_string()),
        }
    })?;
    let pipeline = match element.downcast::<gst::Pipeline>() {
        Ok(pipeline) => pipeline,
        Err(single) => {
            // A one-element description parses to the bare element; a probe always has a sink.
            let pipeline = gst::Pipeline::new();
            pipeline.add(&single).map_err(|e| PipelineError::Parse {
                template: template.name.clone(),
                message: e.to_string(),
            })?;
            pipeline
        }
    };
    let sink = pipeline
        .by_name(SINK_NAME)
        .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok())
        .ok_or_else(|| PipelineError::NoSink {
            template: template.name.clone(),
        })?;
    Ok((pipeline, sink))
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hostile_values_cannot_inject_pipeline_syntax() {
        init_gstreamer().expect("gst init");
        let template = Template::from_text("t", TemplateSource::Shipped, "# test\nidentity name={name}");
        for evil in [
            r#"x" ! fakesink name=evil "y"#,
            "pa ss!word",
            r#"back\slash "quoted" 'single'"#,
        ] {
            let rendered = template.render(&values(&[("name", evil)])).expect("renders");
            let element = gst::parse::launch(&rendered).expect("parses");
            assert!(
                element.downcast_ref::<gst::Pipeline>().is_none(),
                "one element, no injected ones"
            );
            assert_eq!(
                element.name().as_str(),
                evil,
                "the whole hostile string became the value"
            );
        }
    }

    #[test]
    fn plain_tokens_stay_bare_others_get_quoted() {
        assert_eq!(quote_value("5000000"), "5000000");
        assert_eq!(quote_value("/dev/video0"), "/dev/video0");
        assert_eq!(quote_value(""), "\"\"");
        assert_eq!(quote_value("p@ss word"), "\"p@ss word\"");
        assert_eq!(quote_value(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn shipped_templates_parse_and_have_a_sink() {
        let library = TemplateLibrary::new(None);
        for template in library.list() {
            let mut vals = BTreeMap::new();
            for (p, _) in template.placeholders() {
                vals.insert(p, "1".to_string());
            }
            let rendered = template.render(&vals).expect("renders");
            match template.missing_element() {
                // Hardware templates (Pi decoder, camera module) cannot build here: they must say
                // which element is missing and which package brings it.
                Some(PipelineError::MissingElement { element, package, .. }) => {
                    assert!(
                        ["v4l2h264dec", "libcamerasrc"].contains(&element.as_str()),
                        "{element} missing"
                    );
                    assert!(!package.is_empty());
                    let message = template
                        .check(&BTreeMap::new())
                        .expect_err("missing element")
                        .to_string();
                    assert!(
                        message.contains(&element) && message.contains("not installed"),
                        "{message}"
                    );
                }
                _ => {
                    build(&template, &rendered).unwrap_or_else(|e| panic!("{}: {e}", template.name));
                    template
                        .check(&BTreeMap::new())
                        .unwrap_or_else(|e| panic!("{}: {e}", template.name));
                }
            }
        }
    }

    #[test]
    fn defaults_and_required_params() {
        let template = Template::from_text(
            "cam",
            TemplateSource::Shipped,
            "v4l2src device={device=/dev/video0} ! appsink name=sink",
        );
        assert!(template.required_params().is_empty());
        assert!(!template.uses_url());
        let rendered = template.render(&BTreeMap::new()).expect("default fills it");
        assert_eq!(rendered, "v4l2src device=/dev/video0 ! appsink name=sink");
        let needs = Template::from_text(
            "x",
            TemplateSource::Shipped,
            "videotestsrc pattern={pattern} ! appsink name=sink",
        );
        assert_eq!(needs.required_params(), vec!["pattern".to_string()]);
        let error = needs
            .check(&BTreeMap::new())
            .expect_err("param missing")
            .to_string();
        assert!(error.contains("needs param 'pattern'"), "{error}");
        assert!(needs.check(&values(&[("pattern", "ball")])).is_ok());
        assert_eq!(
            Template::from_text(
                "r",
                TemplateSource::Shipped,
                "rtspsrc ! rtph264depay ! video/x-h264,alignment=au ! appsink name=sink"
            )
            .element_names(),
            vec!["rtspsrc", "rtph264depay", "appsink"]
        );
    }

    #[test]
    fn user_directory_shadows_shipped_template() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("rtsp.pipeline"),
            "# mine\nvideotestsrc ! appsink name=sink",
        )
        .expect("write");
        let library = TemplateLibrary::new(Some(dir.path()));
        let template = library.find("rtsp").expect("found");
        assert_eq!(template.description, "mine");
        assert!(matches!(template.source, TemplateSource::User(_)));
        assert!(matches!(
            library.find("nope"),
            Err(PipelineError::UnknownTemplate(_))
        ));
    }
}
