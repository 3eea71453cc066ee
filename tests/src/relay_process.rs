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
            .env("RUST_LOG", "error")
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
