//! Debian's `mosquitto` on an ephemeral loopback port (127.0.0.1 only, no persistence, so a
//! restart forgets every retained message like a real broker without a store), and a test
//! subscriber that records every message it sees.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// A running broker; stopped when dropped.
pub struct Broker {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Anonymous clients welcome.
    pub fn start() -> Broker {
        Broker::with_conf("allow_anonymous true\n")
    }

    /// Only `user` with `password`.
    pub fn with_password(user: &str, password: &str) -> Broker {
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("passwords");
        let status = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&file)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run mosquitto_passwd (make deps installs mosquitto)");
        assert!(status.success(), "mosquitto_passwd failed");
        let extra = format!("allow_anonymous false\npassword_file {}\n", file.display());
        Broker::in_dir(dir, &extra)
    }

    /// `extra` lines after the listener: e.g. TLS files for a second listener.
    pub fn with_conf(extra: &str) -> Broker {
        Broker::in_dir(tempfile::tempdir().expect("temporary folder"), extra)
    }

    fn in_dir(dir: tempfile::TempDir, extra: &str) -> Broker {
        let port = streampulse::demo::closed_port();
        // Running as root (CI), mosquitto would switch to its own user and lose the files.
        let conf = format!("listener {port} 127.0.0.1\npersistence false\nuser root\n{extra}");
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("write mosquitto.conf");
        let mut broker = Broker {
            dir,
            port,
            child: None,
        };
        broker.restart();
        broker
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Kills the broker (its retained messages are gone with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.path("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (make deps installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as a subscriber saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    /// Set on messages the broker held (delivered because the subscription is new).
    pub retain: bool,
}

/// A subscriber to `#` that records everything until the connection ends.
pub struct Watcher {
    messages: Arc<Mutex<Vec<Message>>>,
    client: Client,
}

impl Watcher {
    pub fn connect(port: u16) -> Watcher {
        Watcher::connect_as(port, None)
    }

    pub fn connect_as(port: u16, login: Option<(&str, &str)>) -> Watcher {
        let id = format!("test-watcher-{:08x}", rand::random::<u32>());
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(4 << 20, 4 << 20);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut connection) = Client::new(options, 100);
        client.subscribe("#", QoS::AtLeastOnce).expect("subscribe");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&messages);
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        recorded.lock().expect("messages").push(Message {
                            topic: publish.topic.clone(),
                            payload: String::from_utf8_lossy(&publish.payload).into_owned(),
                            retain: publish.retain,
                        })
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        Watcher { messages, client }
    }

    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().expect("messages").clone()
    }

    pub fn on(&self, topic: &str) -> Vec<Message> {
        self.messages().into_iter().filter(|m| m.topic == topic).collect()
    }

    /// The latest payload seen on `topic`.
    pub fn latest(&self, topic: &str) -> Option<String> {
        self.on(topic).last().map(|m| m.payload.clone())
    }

    /// Waits until the latest payload on `topic` is `payload`.
    pub fn wait_latest(&self, topic: &str, payload: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.latest(topic).as_deref() == Some(payload) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits until `check` holds for the messages seen so far.
    pub fn wait(&self, timeout: Duration, check: impl Fn(&[Message]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(&self.messages()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}
