//! Backup and restore: a snapshot of a running service, restored by the
//! `tierd restore` command into a new directory, holds every member and
//! every history entry.

use tokio_stream::StreamExt as _;

use crate::{
    harness::{TestServer, example_rules},
    process::{backup_bytes, tierd},
};
use tierd::{
    domain::member::MemberState,
    grpc::pb,
    store::{Commit, Location, Store},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_service_restores_every_member_and_history_entry() {
    let mut server = TestServer::start().await;
    server.buy("ann", "p1", 60_000).await;
    server.buy("ben", "p2", 1_000_000).await;
    server
        .client
        .record_return(server.refund("ben", "r1", "p2", 1_000))
        .await
        .expect("return");
    let mut chunks = server
        .client
        .backup(pb::BackupRequest {})
        .await
        .expect("backup")
        .into_inner();
    let mut backup = Vec::new();
    while let Some(chunk) = chunks.next().await {
        backup.extend(chunk.expect("chunk").data);
    }
    let original = server.stop().await;
    let work = tempfile::TempDir::new().expect("temp dir");
    let file = work.path().join("tierd.backup");
    std::fs::write(&file, &backup).expect("write backup");
    // Offline, `tierd backup --data` of the stopped service writes the same bytes.
    let offline = work.path().join("offline.backup");
    assert_eq!(
        backup_bytes(&Location::Sled(original.path().join("data")), &offline),
        backup
    );
    let restored_dir = work.path().join("restored");
    let restore = || {
        tierd()
            .args(["restore", "--in"])
            .arg(&file)
            .arg("--data")
            .arg(&restored_dir)
            .output()
            .expect("tierd runs")
    };
    let output = restore();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let before = Store::open(&original.path().join("data")).expect("original");
    let after = Store::open(&restored_dir).expect("restored");
    let ids: Vec<String> = before.member_ids().collect::<Result<_, _>>().expect("ids");
    assert_eq!(ids, ["ann", "ben"]);
    assert_eq!(
        after
            .member_ids()
            .collect::<Result<Vec<_>, _>>()
            .expect("ids"),
        ids
    );
    for id in &ids {
        assert_eq!(
            after.member(id).expect("read"),
            before.member(id).expect("read"),
            "{id}"
        );
        assert_eq!(
            after.history(id, 0, 100).expect("read"),
            before.history(id, 0, 100).expect("read")
        );
    }
    assert_eq!(
        after.receipt("r1").expect("read"),
        before.receipt("r1").expect("read")
    );
    // Restoring over existing data is refused.
    drop((before, after));
    let again = restore();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds tierd data"), "{stderr}");
}

/// A backup of a program bigger than one message streams in pieces of at
/// most 1 MiB (the service reads the snapshot from a file, a few pieces
/// ahead of the client: bounded memory however large the program), and the
/// pieces restore into the whole program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backup_streams_in_bounded_pieces() {
    // 64 members with 64 attributes of 1000 bytes: about 4 MiB.
    let seeded = tempfile::TempDir::new().expect("temp dir");
    {
        let store = Store::open(seeded.path()).expect("store");
        let members: Vec<MemberState> = (0..64)
            .map(|i| {
                let mut member = MemberState::new(&format!("m{i}"), "bronze", chrono::Utc::now());
                member.attributes = (0..64)
                    .map(|a| (format!("a{a}"), "x".repeat(1000)))
                    .collect();
                member
            })
            .collect();
        store
            .write(move |writer| {
                writer.commit(&Commit {
                    members: members.clone(),
                    ..Commit::default()
                })
            })
            .await
            .expect("written")
            .expect("committed");
    }
    let server = TestServer::on_copy_of(seeded.path(), example_rules(), chrono::Utc::now()).await;
    let mut stream = server
        .client
        .clone()
        .backup(pb::BackupRequest {})
        .await
        .expect("backup")
        .into_inner();
    let mut sizes = Vec::new();
    let mut backup = Vec::new();
    while let Some(chunk) = stream.next().await {
        let data = chunk.expect("chunk").data;
        sizes.push(data.len());
        backup.extend(data);
    }
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert!(sizes.iter().all(|size| *size <= 1 << 20), "{sizes:?}");
    let work = tempfile::TempDir::new().expect("temp dir");
    let file = work.path().join("tierd.backup");
    std::fs::write(&file, &backup).expect("write backup");
    let restored = work.path().join("restored");
    tierd::store::restore(&file, &Location::Sled(restored.clone())).expect("restores");
    let store = Store::open(&restored).expect("opens");
    assert_eq!(store.member_ids().count(), 64);
}
