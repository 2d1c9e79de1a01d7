//! The fake's "business CA" (standing in for Buypass and Commfides), the business
//! certificates ("virksomhetssertifikat") it issues to tests, and the chain check for `x5c`
//! grants (`maskinporten_protocol_jwtgrant`: `x5c` is "the business certificate ... Full
//! certificate chain").

use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, UnixTime};
use x509_parser::public_key::PublicKey;

/// A CA whose certificates the fake trusts, or (made by a test) one it does not.
pub struct BusinessCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A business certificate and its RSA 2048 key, as an organisation holds them.
/// No `Debug`: it holds a private key.
pub struct BusinessCert {
    /// The leaf, then the CA, PEM.
    pub chain_pem: String,
    /// The leaf's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The same key, PKCS#8 DER, for signing grants in tests.
    pub key_der: Vec<u8>,
    /// The chain as the `x5c` header carries it: standard base64 of DER, leaf first.
    pub x5c: Vec<String>,
}

impl BusinessCert {
    /// The key and chain as a PKCS#12 file protected by `password`, the form business
    /// certificates are delivered in.
    pub fn pkcs12_der(&self, password: &str) -> Vec<u8> {
        let der = |b64: &String| STANDARD.decode(b64).expect("x5c entry");
        let chain =
            self.x5c.iter().map(|c| p12_keystore::Certificate::from_der(&der(c)).expect("certificate"));
        let key = p12_keystore::PrivateKey::from_der(&self.key_der).expect("pkcs8 key");
        let entry = p12_keystore::PrivateKeyChain::new(b"business-certificate".as_slice(), key, chain);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("business-certificate", p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
        store.writer(password).write().expect("pkcs12")
    }
}

/// What a trusted `x5c` chain yields: the leaf's subject CN and RSA key.
pub struct VerifiedLeaf {
    pub subject_cn: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl BusinessCa {
    pub fn generate(name: &str) -> BusinessCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca");
        BusinessCa { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `subject_cn`, valid from `not_before` to `not_after`, with a fresh
    /// RSA 2048 key.
    pub fn issue(
        &self,
        subject_cn: &str,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> BusinessCert {
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");
        let key_der =
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).expect("pkcs8").as_ref().to_vec();
        let key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(key_der.as_slice()),
            &PKCS_RSA_SHA256,
        )
        .expect("rcgen key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, subject_cn);
        params.distinguished_name.push(DnType::OrganizationName, subject_cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = offset(not_before);
        params.not_after = offset(not_after);
        let leaf = params.signed_by(&key, &self.issuer).expect("leaf");
        BusinessCert {
            chain_pem: format!("{}{}", leaf.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            key_der,
            x5c: vec![STANDARD.encode(leaf.der()), STANDARD.encode(self.issuer.der())],
        }
    }

    /// Checks `chain` (DER, leaf first) up to this CA at `at`, and reads the leaf.
    pub fn verify(&self, chain: &[CertificateDer<'_>], at: DateTime<Utc>) -> Result<VerifiedLeaf, String> {
        let (leaf, intermediates) = chain.split_first().ok_or("x5c is empty")?;
        let anchor =
            webpki::anchor_from_trusted_cert(self.issuer.der()).map_err(|e| format!("anchor: {e:?}"))?;
        let end_entity = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("leaf: {e:?}"))?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(at.timestamp()).unwrap_or(0),
        ));
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &[anchor],
                intermediates,
                time,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(|e| format!("certificate chain: {e:?}"))?;
        read_leaf(leaf)
    }
}

fn read_leaf(der: &[u8]) -> Result<VerifiedLeaf, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("leaf: {e}"))?;
    let subject_cn =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default();
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(VerifiedLeaf {
            subject_cn: subject_cn.to_owned(),
            n: rsa.modulus.to_vec(),
            e: rsa.exponent.to_vec(),
        }),
        _ => Err("the leaf's key is not RSA".to_owned()),
    }
}

fn offset(at: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp()).expect("certificate time")
}
