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
        Some("bench-web") => bench_web(),
        Some("bench-mesh") => bench_mesh(),
        Some("bench-crowd") => bench_crowd(),
        _ => {
            eprintln!("usage: cargo xtask <run [relay args...] | test | web | bench>");
            eprintln!("  run    build and start the dev relay (a full node producing a live dev chain)");
            eprintln!("  test   install what tests need, then run every test (what CI runs)");
            eprintln!("  web    build the browser node package into www/pkg (wasm-bindgen, release)");
            eprintln!("  bench  print the benchmark tables (release build; includes bench-web)");
            eprintln!("  bench-web  browser sync beside native sync, time to first peer, wasm size, heap");
            eprintln!("  bench-mesh  6-page /webrtc mesh vs relayed: first direct peer, latency, duplicates, bytes");
            eprintln!("  bench-crowd  1,000+ browser-like WebSocket clients on one relay, honest and 10 % attacking");
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
/// browser download does not work here), and nftables for the NAT test's
/// routers, and openssl for the TLS test's CA. CI runs as root with no stdin.
fn ensure_chromium() -> Result<()> {
    let have = |p: &str| std::path::Path::new(p).exists();
    if have("/usr/bin/chromium") && have("/usr/bin/chromedriver") && have("/usr/sbin/nft") && have("/usr/bin/openssl") {
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver", "nftables", "openssl"])
}

/// `apt-get install` (through sudo unless root).
fn apt_install(packages: &[&str]) -> Result<()> {
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
    sh(sudo(&["apt-get", "install", "-y", "-qq"]).args(packages))
}

/// Binaryen's `wasm-opt` (Debian's `binaryen`), installed when missing. None
/// if that fails: the package then ships unoptimised (about 2% larger gzip).
/// Looked up (and installed) once per xtask run: bench-web builds two packages.
fn wasm_opt() -> Option<&'static str> {
    static FOUND: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let ok = || Command::new("wasm-opt").arg("--version").output().is_ok_and(|o| o.status.success());
        if ok() || (apt_install(&["binaryen"]).is_ok() && ok()) {
            return Some("wasm-opt");
        }
        eprintln!("wasm-opt (binaryen) is not available: the browser package is left unoptimised");
        None
    })
}

/// `wasm-opt -O1 --duplicate-function-elimination` on rustc's wasm, before
/// wasm-bindgen (after it, binaryen 108 left the externref table that the
/// bindings grow at start-up ungrowable). Returns the file to hand to
/// wasm-bindgen: the optimised copy, or the input when there is no wasm-opt.
///
/// Only these passes: -O2 and above (and -Oz) reorder and inline functions,
/// which shrinks the raw file but *grows* the gzip, and gzip is what a page
/// downloads (BENCHMARKS.md). The features are those rustc enables for
/// wasm32-unknown-unknown, so binaryen neither rejects nor adds instructions.
fn optimize_wasm(wasm: &std::path::Path) -> Result<std::path::PathBuf> {
    let Some(bin) = wasm_opt() else { return Ok(wasm.to_path_buf()) };
    // Same file name in another folder: wasm-bindgen names its output after it.
    let dir = wasm.with_extension("opt");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(wasm.file_name().context("wasm file name")?);
    sh(Command::new(bin)
        .args([
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
            // The package is built with simd128 (.cargo/config.toml).
            "--enable-simd",
            "-O1",
            "--duplicate-function-elimination",
            "-o",
        ])
        .arg(&out)
        .arg(wasm))?;
    Ok(out)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The package's hand-written files (crates/protoblock-wasm/js/), copied into every build of it.
const PACKAGE_JS: &[&str] =
    &["index.js", "index.d.ts", "errors.js", "errors.d.ts", "elements.js", "elements.d.ts", "README.md"];

/// Builds the browser node into `www/pkg` as an npm-style package
/// (`package.json`, `.js`, `.d.ts`, `.wasm`), stripped of the name and
/// producers sections, and prints its size. Returns the package folder.
fn web() -> Result<std::path::PathBuf> {
    web_with(&[])
}

/// [`web`] with extra cargo features of protoblock-wasm, into `www/pkg-<features>`
/// (the mesh benchmark builds `www/pkg-metrics`; pages load it with `?pkg=pkg-metrics`).
fn web_with(features: &[&str]) -> Result<std::path::PathBuf> {
    ensure_wasm_bindgen()?;
    let root = workspace_root();
    let mut build = cargo();
    build.current_dir(&root).args([
        "build",
        "-p",
        "protoblock-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ]);
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    sh(&mut build)?;
    let wasm = target_dir().join("wasm32-unknown-unknown/wasm-release/protoblock_wasm.wasm");
    // A build with extra features goes beside the product's, so one never replaces the other.
    let pkg = match features {
        [] => root.join("www/pkg"),
        _ => root.join(format!("www/pkg-{}", features.join("-").replace("gossip-", ""))),
    };
    let wasm = optimize_wasm(&wasm)?;
    sh(Command::new("wasm-bindgen")
        .args(["--target", "web", "--remove-name-section", "--remove-producers-section", "--out-dir"])
        .arg(&pkg)
        .arg(&wasm))?;
    // The package's own JavaScript (the client, tab sharing, errors, custom
    // elements) and its README, beside what wasm-bindgen wrote.
    // (js/verifier.js is not among them: wasm-bindgen puts it in snippets/.)
    let js = root.join("crates/protoblock-wasm/js");
    for file in PACKAGE_JS {
        std::fs::copy(js.join(file), pkg.join(file)).with_context(|| format!("copying js/{file}"))?;
    }
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
  "main": "index.js",
  "module": "index.js",
  "types": "index.d.ts",
  "exports": {{
    ".": {{ "types": "./index.d.ts", "default": "./index.js" }},
    "./elements": {{ "types": "./elements.d.ts", "default": "./elements.js" }},
    "./wasm": {{ "types": "./protoblock_wasm.d.ts", "default": "./protoblock_wasm.js" }},
    "./protoblock_wasm_bg.wasm": "./protoblock_wasm_bg.wasm",
    "./package.json": "./package.json"
  }},
  "files": ["index.js", "index.d.ts", "errors.js", "errors.d.ts", "elements.js", "elements.d.ts", "README.md",
    "protoblock_wasm.js", "protoblock_wasm.d.ts", "protoblock_wasm_bg.wasm", "protoblock_wasm_bg.wasm.d.ts", "snippets/"],
  "sideEffects": ["./snippets/*", "./elements.js"]
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

/// Cargo's target folder (`CARGO_TARGET_DIR` when set).
fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => workspace_root().join(d),
        None => workspace_root().join("target"),
    }
}

/// The checkout this run belongs to. `cargo run` sets `CARGO_MANIFEST_DIR` at run time; the
/// compile-time value is only a fallback, because a target dir shared between two checkouts
/// (e.g. a clean clone for a CI rehearsal) reuses one xtask binary built in the other.
fn workspace_root() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    std::path::Path::new(&dir).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn test() -> Result<()> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    ensure_chromium()?;
    let root = workspace_root();
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The sans-IO core and node service, the store trait and the node driver must build for the browser.
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
        "protoblock-node",
        "-p",
        "protoblock-net",
    ]))?;
    let mut total = Counts { all_ok: true, ..Counts::default() };
    // A hung suite must fail CI, not eat its 90 minutes.
    let limit =
        |default: u64| std::env::var("PB_TEST_TIMEOUT_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(default);

    let mut native = cargo();
    // The relay binary this builds is the one the browser tests run, with its
    // test hook (a lying relay); the product build leaves the hook out.
    native.args([
        "test",
        "--workspace",
        "--exclude",
        "xtask",
        "--exclude",
        "protoblock-wasm",
        "--features",
        "protoblock-relay/test-hooks",
    ]);
    total.add(counted("native tests", &mut native, limit(2400))?);
    total.add(fuzz()?);
    // protoblock-wasm's native half (views, wallet, parity vectors).
    total.add(counted("protoblock-wasm native tests", cargo().args(["test", "-p", "protoblock-wasm"]), 600)?);

    // wasm-bindgen tests in headless Chromium.
    let mut wasm = cargo();
    wasm.current_dir(root.join("crates/protoblock-wasm"))
        .args(["test", "-p", "protoblock-wasm", "--target", "wasm32-unknown-unknown", "--features", "test-hooks"])
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300");
    total.add(counted("browser (wasm-bindgen) tests", &mut wasm, 1200)?);

    // End to end: the release browser package, the relay binary the native
    // tests built, and Chromium pages, inside a network namespace of our own.
    // The pages run the package plus its test hooks (www/pkg-test-hooks);
    // run.mjs also runs the product package and checks it carries no hooks.
    web()?;
    let test_pkg = web_with(&["test-hooks"])?;
    let test_pkg = test_pkg.file_name().and_then(|n| n.to_str()).context("package folder")?.to_string();
    let e2e = root.join("tests/e2e");
    sh(Command::new("npm").current_dir(&e2e).args(["ci", "--no-audit", "--no-fund"]))?;
    // The product package's TypeScript declarations compile, and a program against them type-checks.
    let mut types = Command::new("node");
    types.current_dir(&e2e).arg("types.mjs");
    total.add(counted("TypeScript declarations check", &mut types, 300)?);
    // run.mjs: the browser node against a relay; tabs.mjs: tabs sharing one node; hidden.mjs: a
    // throttled background tab; embed.mjs: a site on another origin with the custom elements;
    // tls.mjs: a page over https syncing over wss (the test's own CA);
    // retention.mjs: pages that keep only their newest blocks; mesh.mjs: browser-to-browser `/webrtc`;
    // interop.mjs: `/webrtc` both ways with a stock js-libp2p browser peer (bundled by esbuild).
    total.add(in_test_netns(|ns, webrtc_ip| {
        let mut counts = Counts { all_ok: true, ..Counts::default() };
        for (script, what, secs) in [
            ("run.mjs", "browser end-to-end tests", 1500),
            ("tabs.mjs", "one node per site (tabs) tests", 300),
            ("hidden.mjs", "hidden tab (background throttling) test", 300),
            ("embed.mjs", "embedding (custom elements, another origin) tests", 300),
            ("tls.mjs", "https and wss (a test CA) tests", 300),
            ("retention.mjs", "retention window (pruned pages) tests", 300),
            ("mesh.mjs", "browser mesh (/webrtc) tests", 1200),
            ("interop.mjs", "js-libp2p interop (/webrtc) tests", 300),
        ] {
            let mut cmd = node_script(ns, script);
            cmd.current_dir(&e2e)
                .env("PB_RELAY_BIN", target_dir().join("debug/protoblock-relay"))
                // Built by the native tests (a binary of protoblock-tests).
                .env("PB_ATTACKER_BIN", target_dir().join("debug/protoblock-attacker"))
                .env("PB_E2E_PKG", &test_pkg);
            if let Some(ip) = webrtc_ip {
                cmd.env("PB_E2E_WEBRTC_IP", ip);
            }
            counts.add(counted(what, &mut cmd, secs)?);
        }
        Ok(counts)
    })?);

    // Two browsers behind two NATs: the script builds (and removes) its own namespaces.
    let mut nat = Command::new("node");
    nat.current_dir(&e2e)
        .arg("nat.mjs")
        .env("PB_RELAY_BIN", target_dir().join("debug/protoblock-relay"))
        .env("PB_E2E_PKG", &test_pkg);
    total.add(counted("browsers behind NAT test", &mut nat, 600)?);

    println!("\ntests: {} passed, {} failed, {} skipped", total.passed, total.failed, total.ignored);
    if total.failed > 0 || !total.all_ok {
        println!("\nwhy (the failure lines above, again):");
        for l in &total.failures {
            println!("  {l}");
        }
        bail!("tests failed");
    }
    if total.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// The fuzz targets (fuzz/, libFuzzer through cargo-fuzz), each for
/// `PB_FUZZ_SECS` (30) from a copy of its committed seed corpus; each that
/// ends without a crash counts as a passed test. No sanitizer (`-s none`):
/// the toolchain is stable, and the code under test has no `unsafe`.
fn fuzz() -> Result<Counts> {
    let root = workspace_root();
    let have = cargo().args(["fuzz", "--version"]).stdout(std::process::Stdio::null()).status();
    if !have.is_ok_and(|s| s.success()) {
        sh(cargo().args(["install", "cargo-fuzz", "--locked", "--version", "0.13.2"]))?;
    }
    let secs: u64 = std::env::var("PB_FUZZ_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let fuzz_dir = root.join("fuzz");
    sh(cargo().current_dir(&fuzz_dir).args(["fuzz", "build", "-s", "none"]))?;
    let mut counts = Counts { all_ok: true, ..Counts::default() };
    for target in ["block", "tx", "wire", "signal", "stored", "planner"] {
        let corpus = target_dir().join("fuzz-corpus").join(target);
        let _ = std::fs::remove_dir_all(&corpus);
        std::fs::create_dir_all(&corpus)?;
        for f in std::fs::read_dir(fuzz_dir.join("corpus").join(target))? {
            let f = f?;
            std::fs::copy(f.path(), corpus.join(f.file_name()))?;
        }
        eprintln!("+ fuzz {target} for {secs} s");
        let out = cargo()
            .current_dir(&fuzz_dir)
            .args(["fuzz", "run", "-s", "none", target])
            .arg(&corpus)
            .args(["--", &format!("-max_total_time={secs}"), "-rss_limit_mb=2048", "-print_final_stats=1"])
            .stdout(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("fuzzing {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| "?".into());
        if out.status.success() {
            println!("fuzz {target}: {runs} executions in {secs} s, no crash");
            counts.passed += 1;
        } else {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            println!(
                "fuzz {target}: FAILED after {runs} executions (the crashing input is under fuzz/artifacts/{target})"
            );
            counts.failed += 1;
        }
    }
    Ok(counts)
}

/// Runs `f` inside a fresh network namespace with only loopback and a veth
/// pair of test addresses (10.254.0.1/24 and .2), so browsers and relays can
/// use nothing of the real machine: WebRTC in Chromium otherwise picks the
/// machine's interface address, and webrtc-rs needs a non-loopback address to
/// gather candidates. Without permission for namespaces (not root), runs `f`
/// outside one and the WebRTC tests are skipped.
fn in_test_netns<T>(f: impl FnOnce(Option<&str>, Option<&str>) -> Result<T>) -> Result<T> {
    let ns = format!("pb-test-{}", std::process::id());
    let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
    let made = is_root()
        && ip(&["netns", "add", &ns])
        && ip(&["-n", &ns, "link", "set", "lo", "up"])
        && ip(&["-n", &ns, "link", "add", "pb0", "type", "veth", "peer", "name", "pb1"])
        && ip(&["-n", &ns, "addr", "add", "10.254.0.1/24", "dev", "pb0"])
        && ip(&["-n", &ns, "addr", "add", "10.254.0.2/24", "dev", "pb1"])
        && ip(&["-n", &ns, "link", "set", "pb0", "up"])
        && ip(&["-n", &ns, "link", "set", "pb1", "up"]);
    if !made {
        eprintln!("no network namespace for the browser tests: WebRTC tests will be skipped");
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        return f(None, None);
    }
    let r = f(Some(&ns), Some("10.254.0.1"));
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    r
}

/// `node <script>`, inside the namespace `ns` when there is one.
fn node_script(ns: Option<&str>, script: &str) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "node", script]);
            c
        }
        None => {
            let mut c = Command::new("node");
            c.arg(script);
            c
        }
    }
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    all_ok: bool,
    /// Lines that say why something failed (panics, assertion messages,
    /// FAILED lines), a few per command, repeated at the very end of the
    /// run so a log cut to its head and tail still shows them.
    failures: Vec<String>,
}

/// At most this many failure lines kept per command, each cut to 600 bytes.
const FAILURE_LINES: usize = 24;

fn is_failure_line(line: &str) -> bool {
    let l = line.trim_start();
    l.contains("FAILED")
        || l.contains("panicked at")
        || l.starts_with("Error:")
        || l.starts_with("AssertionError")
        || l.starts_with("timed out waiting")
        || l.starts_with("assertion")
        || l.starts_with("left:")
        || l.starts_with("right:")
        || l.contains("ran past")
        || l.starts_with("error: test failed")
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.ignored += o.ignored;
        self.all_ok &= o.all_ok;
        self.failures.extend(o.failures);
    }
}

/// Runs a test command, passing its output through and summing its
/// `test result:` lines (cargo, wasm-bindgen-test-runner and the e2e runner
/// all print them). Killed after `limit_secs`.
fn counted(what: &str, cmd: &mut Command, limit_secs: u64) -> Result<Counts> {
    use std::io::{BufRead, BufReader, Write};
    cmd.stdout(std::process::Stdio::piped());
    eprintln!("+ [{what}] {cmd:?}");
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let out = child.stdout.take().context("stdout")?;
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let what_owned = what.to_string();
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(limit_secs);
        while std::time::Instant::now() < end {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        eprintln!("{what_owned} ran past {limit_secs} s: killing it");
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid.to_string()]).status();
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    });
    let mut c = Counts::default();
    let stdout = std::io::stdout();
    let mut after_panic = false;
    for line in BufReader::new(out).lines() {
        let line = line?;
        writeln!(stdout.lock(), "{line}")?;
        // A panic's message is on the line after "panicked at".
        let keep = is_failure_line(&line) || std::mem::take(&mut after_panic);
        after_panic = line.contains("panicked at");
        if keep && c.failures.len() < FAILURE_LINES {
            let mut l = line.trim().to_string();
            if l.len() > 600 {
                let cut = (0..=600).rev().find(|i| l.is_char_boundary(*i)).unwrap_or(0);
                l.truncate(cut);
            }
            c.failures.push(format!("[{what}] {l}"));
        }
        if let Some(rest) = line.trim_start().strip_prefix("test result: ") {
            let num = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(word)?.trim().rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0)
            };
            c.passed += num("passed");
            c.failed += num("failed");
            c.ignored += num("ignored");
        }
    }
    let status = child.wait()?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    c.all_ok = status.success();
    println!("[{what}] {} passed, {} failed, {} skipped ({status})", c.passed, c.failed, c.ignored);
    if c.passed + c.failed == 0 {
        c.all_ok = false;
        println!("[{what}] ran no test");
    }
    Ok(c)
}

fn bench() -> Result<()> {
    sh(cargo().args(["bench", "-p", "protoblock-tests", "--bench", "chain"]))?;
    sh(cargo().args(["bench", "-p", "protoblock-tests", "--bench", "network"]))?;
    bench_web()?;
    bench_mesh()?;
    bench_crowd()
}

/// The crowd benchmark (relay-server/benches/crowd.rs): release relay,
/// growing crowds of WebSocket clients (`PB_CROWD_SIZES`).
fn bench_crowd() -> Result<()> {
    sh(cargo().args(["bench", "-p", "protoblock-relay", "--bench", "crowd"]))
}

/// The browser mesh benchmark (tests/e2e/bench-mesh.mjs): release relay,
/// the package built with gossip counters, in a test namespace (WebRTC needs one).
fn bench_mesh() -> Result<()> {
    ensure_wasm_target()?;
    ensure_chromium()?;
    web_with(&["gossip-metrics"])?;
    let root = workspace_root();
    sh(cargo().current_dir(&root).args(["build", "--release", "-p", "protoblock-relay"]))?;
    let e2e = root.join("tests/e2e");
    sh(Command::new("npm").current_dir(&e2e).args(["ci", "--no-audit", "--no-fund"]))?;
    let relay = target_dir().join("release/protoblock-relay");
    in_test_netns(|ns, ip| match (ns, ip) {
        (Some(ns), Some(ip)) => sh(node_script(Some(ns), "bench-mesh.mjs")
            .current_dir(&e2e)
            .env("PB_RELAY_BIN", &relay)
            .env("PB_E2E_WEBRTC_IP", ip)),
        _ => bail!("the mesh benchmark needs a network namespace (run as root)"),
    })
}

/// The browser benchmark: release relay binary, release wasm package,
/// Chromium, inside a test network namespace when possible.
fn bench_web() -> Result<()> {
    ensure_wasm_target()?;
    ensure_chromium()?;
    // The signature-bound hook is in its own build (www/pkg-bench); the sync runs the product package, so its
    // store counters read n/a (`PB_BENCH_PKG=pkg-bench cargo xtask bench-web` runs the sync on the bench build).
    web_with(&["bench"])?;
    web()?;
    let root = workspace_root();
    sh(cargo().current_dir(&root).args(["build", "--release", "-p", "protoblock-relay"]))?;
    let e2e = root.join("tests/e2e");
    sh(Command::new("npm").current_dir(&e2e).args(["ci", "--no-audit", "--no-fund"]))?;
    let relay = target_dir().join("release/protoblock-relay");
    in_test_netns(|ns, _| sh(node_script(ns, "bench.mjs").current_dir(&e2e).env("PB_RELAY_BIN", &relay)))
}
