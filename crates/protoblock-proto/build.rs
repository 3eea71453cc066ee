//! Generates the prost types from `proto/` without a `protoc` binary:
//! protox parses the schema in pure Rust and hands prost-build a descriptor set.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build script binary can be reused from another checkout sharing the target dir.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "protoblock/v1/chain.proto",
        "protoblock/v1/state.proto",
        "protoblock/v1/wire.proto",
        "libp2p/rendezvous.proto",
    ]
    .map(|f| root.join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
