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
    batch_server(&out_dir);
    Ok(())
}

/// The server side of `loyalty.v1.Ingest`, generated a second time with a
/// codec of tierd's own: a batch arrives with each event still encoded, so
/// that its events are counted before any is decoded and then decoded one
/// at a time (`src/grpc/ingest.rs`). The wire contract is the proto's.
fn batch_server(out_dir: &std::path::Path) {
    let record_events = tonic_build::manual::Method::builder()
        .name("record_events")
        .route_name("RecordEvents")
        .input_type("crate::grpc::ingest::Batch")
        .output_type("crate::grpc::pb::RecordEventsResponse")
        .codec_path("crate::grpc::ingest::BatchCodec")
        .build();
    let ingest = tonic_build::manual::Service::builder()
        .name("Ingest")
        .package("loyalty.v1")
        .method(record_events)
        .build();
    tonic_build::manual::Builder::new()
        .build_client(false)
        .out_dir(out_dir)
        .compile(&[ingest]);
}
