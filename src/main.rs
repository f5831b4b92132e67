//! The `streampulse` binary: parse arguments, run, map the result to an exit code.

use clap::Parser;

fn main() {
    let cli = streampulse::cli::Cli::parse();
    streampulse::logging::init();
    let code = match streampulse::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Errors may quote camera URLs: redact before printing.
            eprintln!(
                "streampulse: {}",
                streampulse::url::redact_text(&format!("{error:#}"))
            );
            2
        }
    };
    std::process::exit(code);
}
