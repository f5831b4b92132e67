//! The fleet bench's report: the tables of `target/bench-results.md` (monitor runs, the ffmpeg
//! baseline, picture-check costs, targets met or missed, threads, failures).

use super::*;
use support::{cpu_model, utc_date};

/// The machine the bench ran on.
pub(super) struct Environment {
    cpu_model: String,
    cores: usize,
    load_before: String,
    date: String,
}

impl Environment {
    pub(super) fn now() -> Environment {
        Environment {
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            load_before: load_average(),
            date: utc_date(),
        }
    }
}

/// Everything measured, rendered as `target/bench-results.md`.
pub(super) struct Report<'a> {
    pub(super) settings: &'a Settings,
    pub(super) environment: Environment,
    pub(super) checks: CheckCost,
    pub(super) ffmpeg: Vec<FfmpegRun>,
    pub(super) monitor: Vec<MonitorRun>,
}

fn fmt_ms(value: f64) -> String {
    if value.is_nan() {
        "–".into()
    } else if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn fmt_ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "–".into()
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

impl Report<'_> {
    /// The CPU per probe the ratios divide by: ffmpeg one probe at a time (its cheapest case).
    fn ffmpeg_reference(&self) -> Option<&FfmpegRun> {
        self.ffmpeg.first()
    }

    fn default_run(&self, streams: usize) -> Option<&MonitorRun> {
        self.monitor
            .iter()
            .find(|run| run.scenario.streams == streams && run.scenario.is_default())
    }

    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let env = &self.environment;
        let s = self.settings;
        let _ = writeln!(out, "# StreamPulse fleet benchmark (`make bench`)\n");
        let _ = writeln!(
            out,
            "{} on {} ({} cores), load average before: {}. Stream: 640x360 H.264, 15 fps, keyframe every \
             2 s, one shared encoder on 127.0.0.1 (RTSP server in the bench process, monitor in its own \
             process). Heartbeat {} s, {} heartbeats per run (the first is warm-up), \
             max_concurrent_probes {}.\n",
            env.date,
            env.cpu_model,
            env.cores,
            env.load_before,
            s.heartbeat.as_secs(),
            s.heartbeats,
            s.max_concurrent_probes
        );
        self.render_monitor(&mut out);
        self.render_ffmpeg(&mut out);
        self.render_checks(&mut out);
        self.render_pictures(&mut out);
        self.render_targets(&mut out);
        self.render_failures(&mut out);
        self.render_threads(&mut out);
        out
    }

    fn render_monitor(&self, out: &mut String) {
        let reference = self.ffmpeg_reference().map(|run| run.cpu_ms_per_probe);
        let _ = writeln!(out, "## StreamPulse monitor\n");
        let _ = writeln!(
            out,
            "| streams | template | sample s | probes up / made / expected | CPU ms / probe | \
             ÷ ffmpeg | avg cores | peak RSS MB | threads | threads created / probe | TTFF p50 / p99 ms | \
             lag p50 / p99 / max ms | slot hold p50 / p99 ms | picture checks |"
        );
        let _ = writeln!(
            out,
            "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|"
        );
        for run in &self.monitor {
            let lag = |value: Option<f64>| value.map_or("?".to_string(), fmt_ms);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} / {} / {} | {} | {} | {:.2} | {:.0} | {} | {} | {} / {} | {} / {} / {} | {} / {} | {} |",
                run.scenario.streams,
                run.scenario.template,
                run.scenario.sample_seconds,
                run.probes_up,
                run.probes,
                run.probes_expected,
                fmt_ms(run.cpu_ms_per_probe),
                reference.map_or("–".into(), |r| fmt_ratio(run.cpu_ms_per_probe / r)),
                run.cores,
                run.peak_rss_mb,
                run.peak_threads,
                run.threads_created_per_probe.map_or("?".into(), |n| format!("{n:.1}")),
                fmt_ms(run.ttff_p50_ms),
                fmt_ms(run.ttff_p99_ms),
                lag(run.lag_p50_ms),
                lag(run.lag_p99_ms),
                lag(run.lag_max_ms),
                lag(run.slot_hold_p50_ms),
                lag(run.slot_hold_p99_ms),
                run.picture_checks.map_or("?".to_string(), |n| format!("{n:.0}")),
            );
        }
        let _ = writeln!(
            out,
            "\nCPU ms / probe and avg cores: utime+stime of the monitor process over the measured \
             heartbeats, divided by the probes that started in them. TTFF: a probe's start to its first \
             decoded frame (`latency_ms` of the heartbeats). Lag: a probe's slot on the schedule to its \
             start (the monitor's own summary line, whole run). Slot hold: a probe's pool slot, i.e. its \
             connection to the camera, from taken to given back after teardown (same line). Picture \
             checks: probes that waited for a keyframe to judge the picture (issue 13). Peak RSS: VmHWM, of a monitor started by hand \
             (no environment from the systemd unit: the monitor configures its allocator itself). \
             Threads: largest count sampled every {} ms. Threads created / probe: the kernel's \
             `task:task_newtask` events for the monitor over the measured heartbeats (`perf stat`; ? \
             without perf), divided by the probes.\n",
            SAMPLE_EVERY.as_millis()
        );
        let _ = writeln!(out, "| streams | template | sample s | probes measured | start-up + first heartbeat CPU ms | RSS at end MB (anonymous + files) | p99 \\|gap − heartbeat\\| ms | RTSP server cores | run s |");
        let _ = writeln!(out, "|---:|---|---:|---:|---:|---|---:|---:|---:|");
        for run in &self.monitor {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.0} ({:.0} + {:.0}) | {} | {:.2} | {:.0} |",
                run.scenario.streams,
                run.scenario.template,
                run.scenario.sample_seconds,
                run.window_probes,
                run.warmup_cpu_ms,
                run.end_rss_mb,
                run.end_anon_mb,
                run.end_rss_mb - run.end_anon_mb,
                fmt_ms(run.gap_jitter_p99_ms),
                run.server_cores,
                run.wall_seconds
            );
        }
        let _ = writeln!(out);
    }

    fn render_ffmpeg(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Baseline: `ffmpeg -nostdin -loglevel error -rtsp_transport tcp -i URL -frames:v 1 -f null -`, \
             one process per probe\n"
        );
        let _ = writeln!(
            out,
            "| run | probes ok / made | CPU ms / probe | avg cores | RSS MB: per process / all at once | \
             threads: per process / all at once | wall p50 / p99 ms | lag p50 / p99 ms |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---|---|---|---|");
        for run in &self.ffmpeg {
            let lag = match (run.lag_p50_ms, run.lag_p99_ms) {
                (Some(p50), Some(p99)) => format!("{} / {}", fmt_ms(p50), fmt_ms(p99)),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} / {} | {} | {:.2} | {:.1} / {:.0} | {} / {} | {} / {} | {} |",
                run.label,
                run.ok,
                run.probes,
                fmt_ms(run.cpu_ms_per_probe),
                run.cores,
                run.process_peak_rss_mb,
                run.total_peak_rss_mb,
                run.process_threads,
                run.total_threads,
                fmt_ms(run.wall_p50_ms),
                fmt_ms(run.wall_p99_ms),
                lag
            );
        }
        let _ = writeln!(
            out,
            "\nCPU: the bench's waited-for children (cutime+cstime). Wall: spawn to exit, which is ffmpeg's \
             time to first frame plus its start and exit. Memory and threads sampled while each process \
             runs."
        );
        if let Some(reference) = self.ffmpeg_reference() {
            let _ = writeln!(
                out,
                "\nProjected for ffmpeg at {} s heartbeats, from the \"{}\" CPU per probe:",
                self.settings.heartbeat.as_secs(),
                reference.label
            );
            for run in self.monitor.iter().filter(|run| run.scenario.is_default()) {
                let probes_per_second = run.scenario.streams as f64 / self.settings.heartbeat.as_secs_f64();
                let _ = writeln!(
                    out,
                    "- {} streams: {:.2} cores (monitor measured: {:.2})",
                    run.scenario.streams,
                    probes_per_second * reference.cpu_ms_per_probe / 1000.0,
                    run.cores
                );
            }
        }
        let _ = writeln!(out);
    }

    fn render_checks(&self, out: &mut String) {
        let c = &self.checks;
        let _ = writeln!(out, "## Picture checks (issue 4)\n");
        let _ = writeln!(
            out,
            "First-frame checks, measured in-process on a real {}x{} decoded frame: summarize {:.1} µs + \
             judge {:.2} µs = {:.3} ms per probe.\n",
            c.width,
            c.height,
            c.summarize_us,
            c.judge_us,
            c.total_ms()
        );
        let streams = self.settings.variant_streams;
        let Some(base) = self.default_run(streams) else {
            return;
        };
        let _ = writeln!(
            out,
            "| at {streams} streams | CPU ms / probe | vs `{}`, sample_seconds 0 |",
            base.scenario.template
        );
        let _ = writeln!(out, "|---|---:|---:|");
        let _ = writeln!(
            out,
            "| `{}`, sample_seconds 0 (decode + first-frame checks, the default) | {} | 1.00 |",
            base.scenario.template,
            fmt_ms(base.cpu_ms_per_probe)
        );
        let _ = writeln!(
            out,
            "| first-frame checks alone (in-process) | {:.3} | +{:.2}% |",
            c.total_ms(),
            c.total_ms() / base.cpu_ms_per_probe * 100.0
        );
        for run in self.monitor.iter().filter(|run| {
            run.scenario.streams == streams && !run.scenario.is_default() && run.scenario.pictures
        }) {
            let name = if run.scenario.template == "rtsp-nodecode" {
                "`rtsp-nodecode` (no decoding, no picture checks)".to_string()
            } else {
                format!(
                    "`{}`, sample_seconds {} (frames decoded and checked over the window)",
                    run.scenario.template, run.scenario.sample_seconds
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                name,
                fmt_ms(run.cpu_ms_per_probe),
                fmt_ratio(run.cpu_ms_per_probe / base.cpu_ms_per_probe)
            );
        }
        let _ = writeln!(out);
    }

    /// The pictures-on default run against the same fleet with `pictures.enabled: false`.
    fn pictures_ratio(&self) -> Option<(&MonitorRun, &MonitorRun, f64)> {
        let streams = self.settings.pictures_streams;
        let on = self.default_run(streams)?;
        let off = self
            .monitor
            .iter()
            .find(|run| run.scenario.streams == streams && !run.scenario.pictures)?;
        Some((on, off, on.cpu_ms_per_probe / off.cpu_ms_per_probe))
    }

    fn render_pictures(&self, out: &mut String) {
        let Some((on, off, ratio)) = self.pictures_ratio() else {
            return;
        };
        let _ = writeln!(
            out,
            "## Last pictures (issue 15)\n\nSame fleet, same run of the bench; `pictures.every_seconds: {}`.\n",
            self.settings.pictures_every_seconds
        );
        let _ = writeln!(
            out,
            "| at {} streams | CPU ms / probe | ratio |",
            on.scenario.streams
        );
        let _ = writeln!(out, "|---|---:|---:|");
        let _ = writeln!(out, "| pictures off | {} | 1.00 |", fmt_ms(off.cpu_ms_per_probe));
        let _ = writeln!(
            out,
            "| pictures on (the default) | {} | {} |\n",
            fmt_ms(on.cpu_ms_per_probe),
            fmt_ratio(ratio)
        );
    }

    fn render_targets(&self, out: &mut String) {
        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(out, "| target | measured | |");
        let _ = writeln!(out, "|---|---|---|");
        if let Some(run) = self.default_run(TARGET_STREAMS) {
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS} streams: monitor under {TARGET_MAX_CORES} core on average | {:.2} cores | {} |",
                run.cores,
                verdict(run.cores < TARGET_MAX_CORES)
            );
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS} streams: under {TARGET_MAX_RSS_MB:.0} MB RSS | {:.0} MB peak | {} |",
                run.peak_rss_mb,
                verdict(run.peak_rss_mb < TARGET_MAX_RSS_MB)
            );
            let lag_met = run.lag_p99_ms.is_some_and(|lag| lag < TARGET_MAX_LAG_P99_MS);
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS} streams: p99 heartbeat lag under 1 s | {} ms | {} |",
                run.lag_p99_ms.map_or("?".into(), fmt_ms),
                verdict(lag_met)
            );
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS} streams: every heartbeat probed | {} made, {} expected | {} |",
                run.probes,
                run.probes_expected,
                verdict(run.probes >= run.probes_expected)
            );
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS} streams: every probe decodes a frame | {} of {} (none down) | {} |",
                run.probes - run.probes_down,
                run.probes,
                verdict(run.probes_down == 0)
            );
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS} streams: every probe up (the stream is fine) | {} of {} | {} |",
                run.probes_up,
                run.probes,
                verdict(run.probes_up == run.probes)
            );
        } else {
            let _ = writeln!(
                out,
                "| {TARGET_STREAMS}-stream targets | not run (BENCH_STREAMS) | |"
            );
        }
        if let Some(reference) = self.ffmpeg_reference() {
            for run in self.monitor.iter().filter(|run| run.scenario.is_default()) {
                let ratio = run.cpu_ms_per_probe / reference.cpu_ms_per_probe;
                let _ = writeln!(
                    out,
                    "| {} streams: CPU per probe at most 1/5 of ffmpeg's | {} ÷ {} ms = {} | {} |",
                    run.scenario.streams,
                    fmt_ms(run.cpu_ms_per_probe),
                    fmt_ms(reference.cpu_ms_per_probe),
                    fmt_ratio(ratio),
                    verdict(ratio <= TARGET_MAX_CPU_RATIO)
                );
            }
        }
        if let Some((on, _, ratio)) = self.pictures_ratio() {
            let _ = writeln!(
                out,
                "| {} streams: last pictures add at most 10% to a probe's CPU | ×{:.3} | {} |",
                on.scenario.streams,
                ratio,
                verdict(ratio <= TARGET_MAX_PICTURES_RATIO)
            );
        }
        self.render_large_targets(out);
        if let Some(base) = self.default_run(self.settings.variant_streams) {
            let overhead = self.checks.total_ms() / base.cpu_ms_per_probe;
            let _ = writeln!(
                out,
                "| picture checks (sample_seconds 0) add at most 20% to a probe's CPU | +{:.2}% | {} |",
                overhead * 100.0,
                verdict(overhead <= TARGET_MAX_CHECKS_OVERHEAD)
            );
        }
        let _ = writeln!(out);
    }

    /// Issue 16: twice the fleet on the same machine.
    fn render_large_targets(&self, out: &mut String) {
        let decode = self.default_run(self.settings.large_decode);
        let nodecode = self.monitor.iter().find(|run| {
            run.scenario.streams == self.settings.large_nodecode && run.scenario.template == "rtsp-nodecode"
        });
        // (target, measured, met), one table row each.
        let mut rows: Vec<(String, String, bool)> = Vec::new();
        if let Some(run) = decode {
            let n = run.scenario.streams;
            let lag_met = run.lag_p99_ms.is_some_and(|lag| lag < TARGET_MAX_LAG_P99_MS);
            rows.extend([
                (
                    format!("{n} decode streams: under {TARGET_MAX_CORES} core on average"),
                    format!("{:.2} cores", run.cores),
                    run.cores < TARGET_MAX_CORES,
                ),
                (
                    format!("{n} decode streams: p99 heartbeat lag under 1 s"),
                    format!("{} ms", run.lag_p99_ms.map_or("?".into(), fmt_ms)),
                    lag_met,
                ),
                (
                    format!("{n} decode streams: every due probe made, and up"),
                    format!(
                        "{} of {} ({} expected)",
                        run.probes_up, run.probes, run.probes_expected
                    ),
                    run.probes_up == run.probes && run.probes >= run.probes_expected,
                ),
                (
                    format!("{n} decode streams: CPU per probe at most {TARGET_MAX_DECODE_PROBE_MS} ms"),
                    format!("{} ms", fmt_ms(run.cpu_ms_per_probe)),
                    run.cpu_ms_per_probe <= TARGET_MAX_DECODE_PROBE_MS,
                ),
                (
                    format!("{n} decode streams: peak RSS under {TARGET_MAX_RSS_MB:.0} MB (started by hand)"),
                    format!("{:.0} MB", run.peak_rss_mb),
                    run.peak_rss_mb < TARGET_MAX_RSS_MB,
                ),
            ]);
            if let Some(reference) = self.ffmpeg_reference() {
                let ratio = run.cpu_ms_per_probe / reference.cpu_ms_per_probe;
                rows.push((
                    format!("{n} decode streams: CPU per probe at most {TARGET_MAX_DECODE_FFMPEG_RATIO} of ffmpeg's"),
                    format!(
                        "{} ÷ {} ms = {}",
                        fmt_ms(run.cpu_ms_per_probe),
                        fmt_ms(reference.cpu_ms_per_probe),
                        fmt_ratio(ratio)
                    ),
                    ratio <= TARGET_MAX_DECODE_FFMPEG_RATIO,
                ));
            }
        }
        if let Some(run) = nodecode {
            let n = run.scenario.streams;
            rows.extend([
                (
                    format!("{n} no-decode streams: under {TARGET_MAX_CORES} core on average"),
                    format!("{:.2} cores", run.cores),
                    run.cores < TARGET_MAX_CORES,
                ),
                (
                    format!("{n} no-decode streams: CPU per probe at most {TARGET_MAX_NODECODE_PROBE_MS} ms"),
                    format!("{} ms", fmt_ms(run.cpu_ms_per_probe)),
                    run.cpu_ms_per_probe <= TARGET_MAX_NODECODE_PROBE_MS,
                ),
                (
                    format!("{n} no-decode streams: every due probe made, and up"),
                    format!(
                        "{} of {} ({} expected)",
                        run.probes_up, run.probes, run.probes_expected
                    ),
                    run.probes_up == run.probes && run.probes >= run.probes_expected,
                ),
            ]);
        }
        for (target, measured, met) in rows {
            let _ = writeln!(out, "| {target} | {measured} | {} |", verdict(met));
        }
    }

    fn render_threads(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nMonitor threads (median of the samples, peak, and the most common names at the peak):\n"
        );
        for run in &self.monitor {
            let mut kinds: Vec<(&String, &usize)> = run.threads_at_peak.iter().collect();
            kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let top: Vec<String> = kinds
                .iter()
                .take(8)
                .map(|(name, count)| format!("`{name}` × {count}"))
                .collect();
            let _ = writeln!(
                out,
                "- {}: median {:.0}, peak {}: {}",
                run.scenario.label(),
                run.median_threads,
                run.peak_threads,
                top.join(", ")
            );
        }
    }

    fn render_failures(&self, out: &mut String) {
        for run in &self.monitor {
            if let Some(problem) = &run.stop_problem {
                let _ = writeln!(out, "**{}: {problem}.**\n", run.scenario.label());
            }
        }
        let failed: Vec<&MonitorRun> = self
            .monitor
            .iter()
            .filter(|run| !run.failures.is_empty())
            .collect();
        if failed.is_empty() {
            let _ = writeln!(out, "Every monitor probe in every run decoded a frame (up).");
            return;
        }
        let _ = writeln!(out, "Probes that were not up:\n");
        for run in failed {
            let reasons: Vec<String> = run
                .failures
                .iter()
                .map(|(reason, (count, message))| format!("{reason} × {count} (e.g. \"{message}\")"))
                .collect();
            let _ = writeln!(out, "- {}: {}", run.scenario.label(), reasons.join(", "));
        }
    }
}
