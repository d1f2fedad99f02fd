//! State survives a restart on the same data directory.

use crate::harness::{TestServer, moves};
use tierd::grpc::pb;

#[tokio::test]
async fn members_history_and_idempotency_survive_a_restart() {
    let mut server = TestServer::start().await;
    server.buy("ola", "p1", 60_000).await;
    server
        .client
        .record_return(server.refund("ola", "r1", "p1", 10_000))
        .await
        .expect("return");
    server
        .client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: "ola".into(),
            transaction_id: "x1".into(),
            points: 100,
            order_id: String::new(),
        })
        .await
        .expect("redeem");
    let member = server.member("ola").await;
    let history = server.history("ola").await;

    let mut server = server.restart().await;
    assert_eq!(server.member("ola").await, member);
    assert_eq!(server.history("ola").await, history);
    let retry = server.buy("ola", "p1", 60_000).await;
    assert!(retry.duplicate, "the idempotency record survived");
    // The return still knows what is left of p1, and seqs go on.
    let over = server
        .client
        .record_return(server.refund("ola", "r2", "p1", 50_001))
        .await;
    assert_eq!(
        over.expect_err("only 500.00 left").code(),
        tonic::Code::InvalidArgument
    );
    server.buy("ola", "p2", 1_000_000).await;
    let after = server.history("ola").await;
    assert_eq!(
        moves(&after).last().map(|m| m.1.clone()),
        Some("platinum".into())
    );
    assert!(
        after.last().map(|c| c.seq) > history.last().map(|c| c.seq),
        "seqs go on after a restart: {after:?}"
    );
}
