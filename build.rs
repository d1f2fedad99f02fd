//! Generates the gRPC types and service stubs from `proto/`, with a `protoc`
//! that ships inside the `protoc-bin-vendored` crate so that nothing has to
//! be installed by hand. Also writes the file descriptor set that server
//! reflection serves.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    // prost-build emits no rerun-if-changed of its own: without this line an
    // edit to the contract would be silently ignored by incremental builds.
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        // Unimplemented methods answer UNIMPLEMENTED, so a stand-in server
        // (the load generator's no-op baseline) implements only what it needs.
        .generate_default_stubs(true)
        .file_descriptor_set_path(out_dir.join("loyalty_descriptor.bin"))
        .compile_with_config(config, &["proto/loyalty/v1/loyalty.proto"], &["proto"])?;
    Ok(())
}
