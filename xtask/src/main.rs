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
        _ => {
            eprintln!("usage: cargo xtask <run [relay args...] | test | bench>");
            eprintln!("  run    build and start the dev relay (a full node producing a live dev chain)");
            eprintln!("  test   install what tests need, then run every test (what CI runs)");
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

fn test() -> Result<()> {
    ensure_wasm_target()?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The sans-IO core and the store trait must build for the browser.
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
    ]))?;
    sh(cargo().args(["test", "--workspace", "--exclude", "xtask"]))?;
    Ok(())
}

fn bench() -> Result<()> {
    sh(cargo().args(["bench", "-p", "protoblock-tests", "--bench", "chain"]))
}
