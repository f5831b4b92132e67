//! A monitor running in-process on the test's runtime (`Monitor::run` with a shutdown channel),
//! for the tests that watch what it writes.

use std::sync::Arc;
use std::time::{Duration, Instant};
use streampulse::monitor::{Monitor, MonitorError, MonitorOptions, MonitorStats};
use tokio::sync::watch;

use super::TestDir;

const TEST_CONFIG_POLL: Duration = Duration::from_millis(200);

/// A monitor running on the test's runtime.
pub struct RunningMonitor {
    shutdown: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), MonitorError>>,
    pub stats: Arc<MonitorStats>,
}

impl RunningMonitor {
    pub fn start(dir: &TestDir) -> RunningMonitor {
        RunningMonitor::start_with(dir, |_| {})
    }

    pub fn start_with(dir: &TestDir, adjust: impl FnOnce(&mut MonitorOptions)) -> RunningMonitor {
        let mut options = MonitorOptions::new(dir.config_path());
        adjust(&mut options);
        options.db_path = Some(dir.db_path());
        options.config_poll_interval = TEST_CONFIG_POLL;
        let monitor = Monitor::new(options);
        let stats = monitor.stats();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(monitor.run(shutdown_rx));
        RunningMonitor {
            shutdown,
            task,
            stats,
        }
    }

    /// Signals shutdown and waits for `run()` to return; gives its result and how long it took.
    pub async fn stop(self) -> (Result<(), MonitorError>, Duration) {
        let asked = Instant::now();
        self.shutdown.send(true).expect("the monitor is still listening");
        let result = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("run() returns after shutdown")
            .expect("the monitor task did not panic");
        (result, asked.elapsed())
    }

    /// Like [`Self::stop`], asserting that `run()` ended without an error.
    pub async fn stop_cleanly(self) {
        let (result, _) = self.stop().await;
        result.expect("the monitor ran");
    }
}
