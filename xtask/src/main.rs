//! Project commands. `cargo xtask run` runs the product; `cargo xtask test`
//! runs every test and installs what it needs first; `cargo xtask bench`
//! prints the benchmark tables.

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(),
        Some("web") => web().map(|_| ()),
        _ => {
            eprintln!("usage: cargo xtask <run [relay args...] | test | web | bench>");
            eprintln!("  run    build and start the dev relay (a full node producing a live dev chain)");
            eprintln!("  test   install what tests need, then run every test (what CI runs)");
            eprintln!("  web    build the browser node package into www/pkg (wasm-bindgen, release)");
            eprintln!("  bench  print the benchmark tables (release build)");
            bail!("no command given")
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn sh(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn run(extra: &[String]) -> Result<()> {
    ensure_wasm_target()?;
    web()?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "protoblock-relay", "--", "--dev"]).args(extra);
    sh(&mut cmd)
}

/// Installs the wasm32 target when missing (it is not preinstalled here).
fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "wasm32-unknown-unknown") => Ok(()),
        Ok(_) => sh(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])),
        Err(_) => bail!("rustup not found: install the wasm32-unknown-unknown target for this toolchain by hand"),
    }
}

const WASM_BINDGEN_VERSION: &str = "0.2.108";

/// wasm-bindgen's CLI must equal the library version in Cargo.lock exactly.
fn ensure_wasm_bindgen() -> Result<()> {
    let ok = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(WASM_BINDGEN_VERSION));
    if !ok {
        sh(cargo().args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN_VERSION, "--locked"]))?;
    }
    Ok(())
}

/// Debian's Chromium and chromedriver for browser tests (a test tool's own
/// browser download does not work here). CI runs as root with no stdin.
fn ensure_chromium() -> Result<()> {
    if std::path::Path::new("/usr/bin/chromium").exists() && std::path::Path::new("/usr/bin/chromedriver").exists() {
        return Ok(());
    }
    let sudo = |args: &[&str]| {
        let mut c = if is_root() { Command::new(args[0]) } else { Command::new("sudo") };
        if is_root() {
            c.args(&args[1..])
        } else {
            c.args(args)
        };
        c.env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    sh(&mut sudo(&["apt-get", "update", "-qq"]))?;
    sh(&mut sudo(&["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Builds the browser node into `www/pkg` as an npm-style package
/// (`package.json`, `.js`, `.d.ts`, `.wasm`), stripped of the name and
/// producers sections, and prints its size. Returns the package folder.
fn web() -> Result<std::path::PathBuf> {
    ensure_wasm_bindgen()?;
    let root = workspace_root();
    sh(cargo().current_dir(&root).args([
        "build",
        "-p",
        "protoblock-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ]))?;
    let wasm = root.join("target/wasm32-unknown-unknown/wasm-release/protoblock_wasm.wasm");
    let pkg = root.join("www/pkg");
    sh(Command::new("wasm-bindgen")
        .args(["--target", "web", "--remove-name-section", "--remove-producers-section", "--out-dir"])
        .arg(&pkg)
        .arg(&wasm))?;
    let version = env!("CARGO_PKG_VERSION");
    std::fs::write(
        pkg.join("package.json"),
        format!(
            r#"{{
  "name": "@protoblock/node",
  "version": "{version}",
  "description": "A Protoblock full node for web pages: validates every block, keeps the chain in IndexedDB, gossips and serves sync",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "protoblock_wasm.js",
  "module": "protoblock_wasm.js",
  "types": "protoblock_wasm.d.ts",
  "files": ["protoblock_wasm.js", "protoblock_wasm.d.ts", "protoblock_wasm_bg.wasm", "protoblock_wasm_bg.wasm.d.ts"],
  "sideEffects": ["./snippets/*"]
}}
"#
        ),
    )?;
    let bytes = std::fs::read(pkg.join("protoblock_wasm_bg.wasm"))?;
    let gz = gzip_len(&bytes)?;
    println!("wasm: {} bytes raw, {} bytes gzip (-9)", bytes.len(), gz);
    Ok(pkg)
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-9c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("gzip")?;
    // Feed stdin from another thread: gzip's output fills its pipe long
    // before it has read all of a 2 MB input.
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow::anyhow!("gzip writer panicked"))??;
    Ok(out.stdout.len())
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn test() -> Result<()> {
    ensure_wasm_target()?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The sans-IO core, the store trait and the node driver must build for the browser.
    sh(cargo().args([
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "protoblock-proto",
        "-p",
        "protoblock-core",
        "-p",
        "protoblock-store",
        "-p",
        "protoblock-net",
    ]))?;
    cargo_test(&["--workspace", "--exclude", "xtask"])
}

/// Runs `cargo test`, passing its output through, and closes with one
/// `N passed, N failed` line summed over every test binary, so a reader of
/// the log sees the whole count rather than the last (often doc-test) summary.
fn cargo_test(args: &[&str]) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut cmd = cargo();
    cmd.arg("test").args(args).stdout(std::process::Stdio::piped());
    eprintln!("+ {cmd:?}");
    let mut child = cmd.spawn().context("starting cargo test")?;
    let out = child.stdout.take().context("cargo test stdout")?;
    // A hung test must fail CI, not eat its 90 minutes: kill the whole run
    // after PB_TEST_TIMEOUT_SECS (default 40 minutes).
    let limit: u64 = std::env::var("PB_TEST_TIMEOUT_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(2400);
    let pid = child.id();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(limit));
        eprintln!("cargo test ran past {limit} s: killing it");
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid.to_string()]).status();
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    });
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = std::io::stdout();
    for line in BufReader::new(out).lines() {
        let line = line?;
        writeln!(stdout.lock(), "{line}")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(word)?.trim().rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0)
            };
            passed += num("passed");
            failed += num("failed");
            ignored += num("ignored");
        }
    }
    let status = child.wait()?;
    println!("\ntests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() || failed > 0 {
        bail!("cargo test failed ({status})");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(())
}

fn bench() -> Result<()> {
    sh(cargo().args(["bench", "-p", "protoblock-tests", "--bench", "chain"]))?;
    sh(cargo().args(["bench", "-p", "protoblock-tests", "--bench", "network"]))
}
