//! Any bytes as a RecordPurchase request, decoded the way the server does
//! and run through the real program on a real (temporary) store: every
//! input gets an answer or a clean error, never a panic.
#![no_main]

use std::{path::Path, sync::{Arc, LazyLock}};

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tierd::{
    grpc::pb,
    app::{Program, command::Purchase, system_clock},
    rules,
    store::Store,
};

struct Harness {
    runtime: tokio::runtime::Runtime,
    program: Program,
    _dir: tempfile::TempDir,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let rules_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/example.yaml");
    let rules = rules::load(&rules_path).expect("example rules");
    let store = Store::open(dir.path()).expect("store");
    Harness {
        runtime: tokio::runtime::Builder::new_current_thread().build().expect("runtime"),
        program: Program::new(store, Arc::new(rules), system_clock()),
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(request) = pb::RecordPurchaseRequest::decode(data) else {
        return;
    };
    let Ok(purchase) = Purchase::try_from(request) else {
        return;
    };
    let harness = &*HARNESS;
    let _ = harness.runtime.block_on(harness.program.record_purchase(purchase, "fuzz"));
});
