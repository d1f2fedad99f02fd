//! TLS with rustls, and mutual TLS, with certificates made at test time.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::harness::TestServer;
use tierd::grpc::{ServeOptions, TlsPem, pb};

/// A CA and a certificate it signed for `name`, as PEM.
struct Pki {
    ca: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("ca key");
        let ca = params.self_signed(&key).expect("ca cert").pem();
        Self {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate, key) for `name`.
    fn leaf(&self, name: &str) -> (String, String) {
        let params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    }
}

fn server_tls(pki: &Pki, mutual: bool) -> ServeOptions {
    let (cert, key) = pki.leaf("localhost");
    ServeOptions {
        tls: Some(TlsPem {
            cert: cert.into_bytes(),
            key: key.into_bytes(),
            client_ca: mutual.then(|| pki.ca.clone().into_bytes()),
        }),
        ..ServeOptions::default()
    }
}

fn trusting(pki: &Pki) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost")
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_nobody_in_plaintext() {
    let pki = Pki::new();
    let mut server = TestServer::with_tls(server_tls(&pki, false), Some(trusting(&pki))).await;
    server.buy("m", "t1", 1_000).await;
    assert_eq!(server.member("m").await.purchase_count, 1);
    let plaintext = Channel::from_shared(format!("http://{}", server.address))
        .expect("uri")
        .connect()
        .await
        .expect("tcp connects");
    let refused = pb::loyalty_client::LoyaltyClient::new(plaintext)
        .get_member(pb::GetMemberRequest {
            member_id: "m".into(),
        })
        .await;
    assert!(
        refused.is_err(),
        "plaintext must not be served: {refused:?}"
    );
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("till-42");
    let with_identity = trusting(&pki).identity(Identity::from_pem(cert, key));
    let mut server = TestServer::with_tls(server_tls(&pki, true), Some(with_identity)).await;
    server.buy("m", "t1", 1_000).await;

    let anonymous = Channel::from_shared(format!("https://{}", server.address))
        .expect("uri")
        .tls_config(trusting(&pki))
        .expect("client tls")
        .connect()
        .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => pb::loyalty_client::LoyaltyClient::new(channel)
            .get_member(pb::GetMemberRequest {
                member_id: "m".into(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
}
