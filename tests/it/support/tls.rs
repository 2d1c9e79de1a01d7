//! The certificate the in-process fakes serve HTTPS with: a CA, and a `localhost` certificate
//! signed by it. (The listener, `azure::fake::net::TlsListener`, stays with the fake vault,
//! which `benches/scale.rs` compiles on its own.)

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA named `ca_name`, and a certificate for `localhost` signed by it:
/// (CA PEM, leaf PEM, leaf key PEM).
pub fn localhost_certificates(ca_name: &str) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}
