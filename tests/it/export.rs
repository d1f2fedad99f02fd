//! A member's export through the server: everything stored about the
//! member (record, receipts with their lines, redemptions against orders,
//! history) as one JSON document, nothing about anyone else, and
//! NOT_FOUND for a member that does not exist.

use serde_json::Value;
use tokio_stream::StreamExt as _;
use tonic::Code;

use crate::harness::TestServer;
use tierd::grpc::pb::{self, event::Event as Kind, ingest_client::IngestClient};

/// The pieces of `member`'s export, as sent.
async fn export_pieces(
    server: &mut TestServer,
    member: &str,
) -> Result<Vec<Vec<u8>>, tonic::Status> {
    let request = pb::ExportMemberRequest {
        member_id: member.into(),
    };
    let mut chunks = server.client.export_member(request).await?.into_inner();
    let mut pieces = Vec::new();
    while let Some(chunk) = chunks.next().await {
        pieces.push(chunk?.data);
    }
    Ok(pieces)
}

/// The export of `member`, its pieces put together and parsed; the raw
/// bytes beside it.
async fn export(server: &mut TestServer, member: &str) -> Result<(Value, Vec<u8>), tonic::Status> {
    let bytes = export_pieces(server, member).await?.concat();
    let document = serde_json::from_slice(&bytes).expect("the export is JSON");
    Ok((document, bytes))
}

/// The `field` of every item of the list at `pointer`, as text.
fn texts(document: &Value, pointer: &str, field: &str) -> Vec<String> {
    document
        .pointer(pointer)
        .and_then(Value::as_array)
        .expect("a list")
        .iter()
        .map(|item| item[field].as_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn an_export_holds_everything_stored_about_the_member_and_nothing_else() {
    let mut server = TestServer::start().await;
    let mut purchase = server.purchase("ann", "p1", 60_000);
    purchase.lines = vec![
        pb::PurchaseLine {
            sku: "coat".into(),
            category: "apparel".into(),
            quantity: 1,
            amount_minor: 50_000,
            labels: vec![],
        },
        pb::PurchaseLine {
            sku: "scarf".into(),
            category: "apparel".into(),
            quantity: 2,
            amount_minor: 10_000,
            labels: vec![],
        },
    ];
    server
        .client
        .record_purchase(purchase)
        .await
        .expect("bought");
    let redeem = pb::RedeemPointsRequest {
        member_id: "ann".into(),
        transaction_id: "x1".into(),
        points: 100,
        order_id: "p1".into(),
        reward_id: String::new(),
    };
    server.client.redeem_points(redeem).await.expect("redeemed");
    let mut back = server.refund("ann", "r1", "p1", 0);
    back.lines = vec![pb::ReturnLine {
        sku: "scarf".into(),
        quantity: 1,
        amount_minor: 0,
    }];
    server.client.record_return(back).await.expect("returned");
    let upsert = pb::UpsertMemberRequest {
        member_id: "ann".into(),
        attributes: [("email".to_owned(), "ann@example.com".to_owned())].into(),
        enrolled_at: None,
    };
    server.client.upsert_member(upsert).await.expect("upserted");
    let close = pb::CloseMemberRequest {
        member_id: "ann".into(),
        transaction_id: "c1".into(),
        reason: "asked to leave".into(),
        forfeit_points: false,
    };
    server.client.close_member(close).await.expect("closed");
    server.buy("bob", "b1", 1_000).await;

    let (document, bytes) = export(&mut server, "ann").await.expect("exported");
    assert_eq!(document["document"], "tierd member export");
    let member = &document["member"];
    assert_eq!(member["member_id"], "ann");
    assert_eq!(member["attributes"]["email"], "ann@example.com");
    assert_eq!(member["closed"]["reason"], "asked to leave");
    assert!(
        member["days"]["2026-03-02"]["purchased_minor"].as_i64() == Some(60_000),
        "day totals by date: {}",
        member["days"]
    );
    assert_eq!(
        texts(&document, "/receipts", "transaction_id"),
        ["c1", "p1", "r1", "x1"]
    );
    let kinds = texts(&document, "/receipts", "kind");
    assert_eq!(kinds, ["close", "purchase", "return", "redemption"]);
    let lines = texts(&document, "/receipts/1/purchase/lines", "sku");
    assert_eq!(lines, ["coat", "scarf"]);
    assert_eq!(
        document["receipts"][1]["purchase"]["lines"][1]["returned_quantity"],
        1
    );
    assert_eq!(document["receipts"][1]["actor"], "anonymous");
    assert_eq!(texts(&document, "/orders", "order_id"), ["p1"]);
    assert_eq!(document["orders"][0]["redeemed"], 100);
    let history = texts(&document, "/history", "member_id");
    assert!(history.iter().all(|m| m == "ann") && history.len() >= 2);
    let last = &document["history"][history.len() - 1];
    assert_eq!(last["change"]["kind"], "closed");
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(
        !text.contains("bob") && !text.contains("\"b1\""),
        "nothing about another member"
    );

    let unknown = export(&mut server, "nobody")
        .await
        .expect_err("no such member");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("member_id"), "{unknown:?}");
}

/// The export of a member others were merged into holds theirs too: the
/// aliases, the receipts of requests made under their ids, their history;
/// asked for by a merged id, it is the same document.
#[tokio::test]
async fn the_export_of_a_merged_member_holds_what_was_done_under_each_id() {
    let mut server = TestServer::start().await;
    server.buy("card", "p1", 2_000).await;
    server.buy("web", "w1", 3_000).await;
    server.buy("bob", "b1", 1_000).await;
    let merge = pb::MergeMembersRequest {
        source_member_id: "card".into(),
        target_member_id: "web".into(),
        transaction_id: "m1".into(),
        reason: "one customer".into(),
    };
    server.client.merge_members(merge).await.expect("merged");
    let (document, bytes) = export(&mut server, "web").await.expect("exported");
    assert_eq!(document["member"]["member_id"], "web");
    assert_eq!(document["member"]["lifetime_value_minor"], 5_000);
    assert_eq!(texts(&document, "/merged", "member_id"), ["card"]);
    assert_eq!(texts(&document, "/merged", "reason"), ["one customer"]);
    assert_eq!(
        texts(&document, "/receipts", "transaction_id"),
        ["m1", "p1", "w1"]
    );
    let history = texts(&document, "/history", "member_id");
    assert_eq!(
        history,
        ["card", "web", "card", "web"],
        "both ids, in order"
    );
    let (by_alias, _) = export(&mut server, "card").await.expect("exported");
    assert_eq!(by_alias["receipts"], document["receipts"]);
    assert_eq!(by_alias["history"], document["history"]);
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(!text.contains("bob"), "nothing about another member");
}

/// Points that never expire, so that 2,500 purchases make one lot.
const NO_EXPIRY: &str = "program: export
version: e1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
tiers:
  - id: member
";

#[tokio::test]
async fn a_large_export_comes_in_pieces_of_at_most_1_mib() {
    let mut server = TestServer::with_rules(NO_EXPIRY).await;
    for batch in 0..5 {
        let events = (0..500)
            .map(|n| pb::Event {
                event: Some(Kind::Purchase(server.purchase(
                    "big",
                    &format!("p{batch}-{n:03}"),
                    1_000 + n,
                ))),
            })
            .collect();
        IngestClient::new(server.channel.clone())
            .record_events(pb::RecordEventsRequest { events })
            .await
            .expect("recorded");
    }
    let pieces = export_pieces(&mut server, "big").await.expect("exported");
    let sizes: Vec<usize> = pieces.iter().map(Vec::len).collect();
    assert!(
        sizes.len() >= 2 && sizes.iter().all(|size| *size <= 1 << 20),
        "pieces of at most 1 MiB: {sizes:?}"
    );
    let document: Value = serde_json::from_slice(&pieces.concat()).expect("JSON");
    let receipts = document["receipts"].as_array().map(Vec::len);
    assert_eq!(receipts, Some(2_500));
}
