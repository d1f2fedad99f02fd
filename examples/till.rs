//! A till talking to a running tierd: enrols a member, rings up purchases,
//! takes a return, redeems points and prints what the member sees.
//!
//! Start the service first (`cargo run --release -- serve`), then:
//! `cargo run --example till -- [http://127.0.0.1:50051] [member-id]`.
//! Every sale is stamped at midnight UTC today, so running it again today
//! with the same member id sends exact retries: each is answered as a
//! duplicate and nothing counts twice.

use std::collections::HashMap;

use tierd::{
    grpc::{convert::timestamp, pb, pb::loyalty_client::LoyaltyClient},
    money::Currency,
};

/// Cents as "129.90": money is shown from integers, never through floats.
fn euros(cents: i64) -> String {
    Currency::default().format_minor(cents)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let member = args.next().unwrap_or_else(|| "till-demo-member".into());
    let mut till = LoyaltyClient::connect(address).await?;
    let today = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| timestamp(t.and_utc()));

    till.upsert_member(pb::UpsertMemberRequest {
        member_id: member.clone(),
        attributes: HashMap::from([("region".into(), "north".into())]),
        enrolled_at: None,
    })
    .await?;
    println!("enrolled {member}");

    for (txn, cents, channel) in [
        ("sale-1", 12_990, "pos"),
        ("sale-2", 25_000, "pos"),
        ("sale-3", 18_050, "web"),
    ] {
        let reply = till
            .record_purchase(pb::RecordPurchaseRequest {
                member_id: member.clone(),
                transaction_id: format!("{member}/{txn}"),
                amount_minor: cents,
                currency: "EUR".into(),
                occurred_at: today,
                channel: channel.into(),
                store_id: "store-42".into(),
                tags: vec![],
                lines: vec![],
            })
            .await?
            .into_inner();
        let duplicate = if reply.duplicate {
            " (already recorded)"
        } else {
            ""
        };
        println!(
            "{txn}: {} EUR earned {} points{duplicate}",
            euros(cents),
            reply.points_earned
        );
        if let Some(change) = reply.tier_change {
            println!(
                "  congratulations: {} -> {} ({})",
                change.from_tier, change.to_tier, change.reason
            );
        }
    }

    let returned = till
        .record_return(pb::RecordReturnRequest {
            member_id: member.clone(),
            transaction_id: format!("{member}/return-1"),
            original_transaction_id: format!("{member}/sale-1"),
            amount_minor: 2_990,
            occurred_at: today,
            currency: "EUR".into(),
            lines: Vec::new(),
        })
        .await?
        .into_inner();
    println!(
        "return of 29.90 EUR took back {} points{}",
        returned.points_reversed,
        if returned.duplicate {
            " (already recorded)"
        } else {
            ""
        }
    );

    let redeemed = till
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.clone(),
            transaction_id: format!("{member}/redeem-1"),
            points: 100,
            order_id: String::new(),
            reward_id: String::new(),
        })
        .await;
    match redeemed {
        Ok(reply) if reply.get_ref().duplicate => {
            println!("redeemed 100 points (already recorded)")
        }
        Ok(_) => println!("redeemed 100 points"),
        Err(status) => println!(
            "redemption refused: {:?}: {}",
            status.code(),
            status.message()
        ),
    }

    let shown = till
        .get_member(pb::GetMemberRequest {
            member_id: member.clone(),
        })
        .await?
        .into_inner();
    println!(
        "{}: tier {}, {} points to spend, {} qualifying points, lifetime value {} {}",
        shown.member_id,
        shown.tier_id,
        shown.points_balance,
        shown.qualifying_points,
        euros(shown.lifetime_value_minor),
        shown.currency
    );
    if let Some(next) = shown.next_tier {
        println!("next tier {}: {}", next.tier_id, next.summary);
    }
    Ok(())
}
