//! `streampulse templates`: the pipeline templates this installation can use, where each comes
//! from, and whether GStreamer has every element it needs.

use crate::config;
use crate::pipeline::{init_gstreamer, PipelineError, TemplateLibrary, TemplateSource};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TemplatesArgs {
    /// Directory of user templates (default: the config's `pipelines_dir`, when the config loads)
    #[arg(long)]
    pub pipelines_dir: Option<PathBuf>,
    /// Configuration file, read for `pipelines_dir`
    #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
    pub config: PathBuf,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TemplatesArgs) -> anyhow::Result<i32> {
    init_gstreamer()?;
    let user_dir = args
        .pipelines_dir
        .or_else(|| config::load(&args.config).ok().and_then(|c| c.pipelines_dir));
    let library = TemplateLibrary::new(user_dir.as_deref());
    let mut rows = Vec::new();
    for template in library.list() {
        let source = match &template.source {
            TemplateSource::Shipped => "shipped".to_string(),
            TemplateSource::User(path) => path.display().to_string(),
        };
        let missing = match template.missing_element() {
            Some(PipelineError::MissingElement { element, package, .. }) => {
                Some(format!("{element} ({package})"))
            }
            _ => None,
        };
        rows.push(serde_json::json!({
            "name": template.name,
            "source": source,
            "installed": missing.is_none(),
            "missing": missing,
            "needs_url": template.uses_url(),
            "params": template.required_params(),
            "description": template.description,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    for row in &rows {
        let status = match row["missing"].as_str() {
            Some(missing) => format!("missing {missing}"),
            None => "ok".to_string(),
        };
        println!(
            "{:<16} {:<9} {:<40} {}",
            row["name"].as_str().unwrap_or_default(),
            row["source"].as_str().unwrap_or_default(),
            status,
            row["description"].as_str().unwrap_or_default()
        );
    }
    Ok(0)
}
