//! A relay binary started for a test or benchmark, on loopback with a fresh
//! data dir, killed when dropped. Its stdout is drained (a full pipe would
//! block it) after the `http` line has given its HTTP address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct RelayProcess {
    pub child: Child,
    /// `http://127.0.0.1:<port>`
    pub http: String,
    pub dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts `bin --dev` with `args`, HTTP on a free port, no STUN.
    pub fn start_dev(bin: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a data dir");
        let mut child = Command::new(bin)
            .args(["--dev", "--http-listen", "127.0.0.1:0", "--stun-listen", "off"])
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            // PB_RELAY_LOG: a tracing filter for the relay's stderr when debugging a test.
            .env("RUST_LOG", std::env::var("PB_RELAY_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("the relay starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let http = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("http ").map(str::to_string))
            .expect("the relay prints its HTTP address");
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Self { child, http, dir }
    }

    /// `GET <http><path>` as JSON, `None` on any failure.
    pub async fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        let r = reqwest::get(format!("{}{path}", self.http)).await.ok()?;
        r.json().await.ok()
    }

    /// The relay's head height (0 while it does not answer).
    pub async fn head(&self) -> u64 {
        self.get_json("/api/status").await.and_then(|s| s["head"]["height"].as_u64()).unwrap_or(0)
    }

    /// The first of the relay's bootstrap addresses that `pick` accepts,
    /// waiting up to 30 s for it to appear.
    pub async fn bootstrap_addr(&self, pick: impl Fn(&str) -> bool) -> libp2p::Multiaddr {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(boot) = self.get_json("/api/bootstrap").await
                && let Some(a) =
                    boot["multiaddrs"].as_array().and_then(|a| a.iter().filter_map(|a| a.as_str()).find(|a| pick(a)))
            {
                return a.parse().expect("a multiaddr");
            }
            assert!(std::time::Instant::now() < deadline, "the relay's address never came up");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The slowest of `n` `/health` answers in ms (an unanswered or failed
    /// one panics), asked from a thread of its own: a test's runtime may be
    /// busy with a crowd.
    pub async fn health_worst(&self, n: usize) -> u128 {
        let url = format!("{}/health", self.http);
        tokio::task::spawn_blocking(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("an HTTP client");
            let mut worst = 0;
            for _ in 0..n {
                let t = std::time::Instant::now();
                let r = client.get(&url).send().expect("/health answers");
                assert!(r.status().is_success(), "{:?}", r.text());
                worst = worst.max(t.elapsed().as_millis());
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            worst
        })
        .await
        .expect("the /health thread")
    }

    /// The genesis the dev relay wrote.
    pub fn genesis(&self) -> protoblock_core::Genesis {
        let bytes = std::fs::read(self.dir.path().join("genesis.pb")).expect("genesis.pb");
        protoblock_core::Genesis::from_bytes(&bytes).expect("a valid genesis")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
