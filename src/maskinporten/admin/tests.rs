//! The admin credential loaders, with a CA and business certificate made here (rcgen, RSA keys
//! from aws-lc-rs) and the PKCS#12 files in `tests/data/admin` (made once with OpenSSL; see the
//! README there).

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer};
use rustls::pki_types::PrivatePkcs8KeyDer;

use super::*;

const AES_P12: &[u8] = include_bytes!("../../../tests/data/admin/business-aes.p12");
const LEGACY_P12: &[u8] = include_bytes!("../../../tests/data/admin/business-legacy.p12");
const EMPTY_PASSWORD_P12: &[u8] = include_bytes!("../../../tests/data/admin/business-empty-password.p12");
const EC_P12: &[u8] = include_bytes!("../../../tests/data/admin/ec.p12");
const FIXTURE_PASSWORD: &str = "fixture-password";
const FIXTURE_SUBJECT: &str = "CN=TEST BUSINESS CERT, O=EXAMPLE ORG, serialNumber=999999999, C=NO";

/// A CA, a business certificate under it, and a key that belongs to neither.
struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key: Zeroizing<Vec<u8>>,
    other_key: Zeroizing<Vec<u8>>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

fn rsa_pkcs8() -> Zeroizing<Vec<u8>> {
    let pair = KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    Zeroizing::new(pair.as_der().unwrap().as_ref().to_vec())
}

fn rcgen_key(pkcs8: &[u8]) -> rcgen::KeyPair {
    let der = PrivatePkcs8KeyDer::from(pkcs8.to_vec());
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap()
}

fn make_pki() -> Pki {
    let (ca_key, leaf_key, other_key) = (rsa_pkcs8(), rsa_pkcs8(), rsa_pkcs8());
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "Test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&rcgen_key(&ca_key)).unwrap();
    let issuer = Issuer::new(ca, rcgen_key(&ca_key));
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "TEST BUSINESS CERT");
    leaf.distinguished_name.push(DnType::OrganizationName, "EXAMPLE ORG");
    leaf.not_after = rcgen::date_time_ymd(2030, 1, 31);
    let leaf_cert = leaf.signed_by(&rcgen_key(&leaf_key), &issuer).unwrap();
    Pki { ca_pem: ca_cert.pem(), leaf_pem: leaf_cert.pem(), leaf_key, other_key }
}

/// PEM text of `der` under `label`, 64 columns.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn chain_pem() -> String {
    format!("{}{}", pki().leaf_pem, pki().ca_pem)
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 key.
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    pkcs8::PrivateKeyInfo::try_from(pkcs8).unwrap().private_key.to_vec()
}

/// The base64 text of the key's private exponent's start: must never show up in messages.
fn key_fragments(pkcs8: &[u8]) -> Vec<String> {
    let b64 = STANDARD.encode(pkcs8);
    vec![b64[40..80].to_owned(), b64[b64.len() - 60..b64.len() - 20].to_owned()]
}

fn assert_business_cert(cred: &AdminCredential) {
    assert_eq!(cred.subject(), FIXTURE_SUBJECT);
    assert_eq!(cred.chain().len(), 2, "leaf and CA");
    let (_, ca) = x509_parser::parse_x509_certificate(cred.chain()[1].as_ref()).unwrap();
    assert_eq!(ca.subject().to_string(), "CN=Test CA (jwk-rotator fixture), O=Example");
    assert_eq!(cred.not_after().to_rfc3339(), "2126-11-05T23:44:02+00:00");
}

#[test]
fn a_pem_chain_with_a_pkcs8_key_loads_leaf_first() {
    let key = pem("PRIVATE KEY", &pki().leaf_key);
    let cred = AdminCredential::from_pem(chain_pem().as_bytes(), key.as_bytes()).unwrap();
    assert_eq!(cred.subject(), "CN=TEST BUSINESS CERT, O=EXAMPLE ORG");
    assert_eq!(cred.chain().len(), 2);
    assert_eq!(cred.not_after().to_rfc3339(), "2030-01-31T00:00:00+00:00");
    assert_eq!(cred.key().public_modulus_len(), 256);
}

#[test]
fn a_pkcs1_key_loads_too() {
    let key = pem("RSA PRIVATE KEY", &pkcs1_of(&pki().leaf_key));
    let cred = AdminCredential::from_pem(chain_pem().as_bytes(), key.as_bytes()).unwrap();
    assert_eq!(cred.subject(), "CN=TEST BUSINESS CERT, O=EXAMPLE ORG");
}

#[test]
fn a_key_that_is_not_the_first_certificates_is_refused_by_subject() {
    let other = pem("PRIVATE KEY", &pki().other_key);
    let e = AdminCredential::from_pem(chain_pem().as_bytes(), other.as_bytes()).unwrap_err();
    assert!(matches!(e, E::KeyMismatch { .. }), "{e}");
    assert!(e.to_string().contains("does not belong to the certificate CN=TEST BUSINESS CERT"), "{e}");
    let reversed = format!("{}{}", pki().ca_pem, pki().leaf_pem);
    let leaf_key = pem("PRIVATE KEY", &pki().leaf_key);
    let e = AdminCredential::from_pem(reversed.as_bytes(), leaf_key.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("business certificate first in the chain"), "{e}");
}

#[test]
fn an_ec_key_is_refused_as_not_rsa() {
    let ec = rcgen::KeyPair::generate().unwrap();
    let e = AdminCredential::from_pem(chain_pem().as_bytes(), ec.serialize_pem().as_bytes()).unwrap_err();
    assert!(matches!(&e, E::NotRsa { found } if found == "an EC key"), "{e}");
    let sec1 = pem("EC PRIVATE KEY", b"not parsed");
    let e = AdminCredential::from_pem(chain_pem().as_bytes(), sec1.as_bytes()).unwrap_err();
    assert!(matches!(e, E::NotRsa { .. }), "{e}");
    let e = AdminCredential::from_pkcs12(EC_P12, FIXTURE_PASSWORD).unwrap_err();
    assert!(
        e.to_string().contains("is an EC key, but business certificates for Maskinporten have RSA keys"),
        "{e}"
    );
}

#[test]
fn missing_encrypted_or_damaged_pem_says_what_was_expected() {
    let key = pem("PRIVATE KEY", &pki().leaf_key);
    let e = AdminCredential::from_pem(b"", key.as_bytes()).unwrap_err();
    assert!(matches!(e, E::NoCertificate), "{e}");
    let e = AdminCredential::from_pem(chain_pem().as_bytes(), pki().ca_pem.as_bytes()).unwrap_err();
    assert!(matches!(e, E::NoKey), "{e}");
    let encrypted = pem("ENCRYPTED PRIVATE KEY", b"whatever");
    let e = AdminCredential::from_pem(chain_pem().as_bytes(), encrypted.as_bytes()).unwrap_err();
    assert!(matches!(e, E::EncryptedKey), "{e}");
    let damaged = key.replace("-----END PRIVATE KEY-----\n", "");
    let e = AdminCredential::from_pem(chain_pem().as_bytes(), damaged.as_bytes()).unwrap_err();
    assert!(matches!(e, E::KeyPem), "{e}");
    let not_a_cert = pem("CERTIFICATE", b"garbage");
    let e = AdminCredential::from_pem(not_a_cert.as_bytes(), key.as_bytes()).unwrap_err();
    assert!(matches!(e, E::Certificate { index: 0, .. }), "{e}");
}

#[test]
fn a_modern_pkcs12_opens_with_its_password() {
    let cred = AdminCredential::from_pkcs12(AES_P12, FIXTURE_PASSWORD).unwrap();
    assert_business_cert(&cred);
}

#[test]
fn a_legacy_3des_and_rc2_pkcs12_opens_too() {
    let cred = AdminCredential::from_pkcs12(LEGACY_P12, FIXTURE_PASSWORD).unwrap();
    assert_business_cert(&cred);
}

#[test]
fn a_wrong_password_is_told_apart_from_a_file_that_is_not_pkcs12() {
    for file in [AES_P12, LEGACY_P12] {
        let e = AdminCredential::from_pkcs12(file, "not-the-password").unwrap_err();
        assert!(matches!(e, E::WrongPassword), "{e}");
        assert!(e.to_string().starts_with("wrong password"), "{e}");
    }
    for garbage in [&b""[..], b"hello", pki().leaf_pem.as_bytes(), &[0x30, 0x82, 0x01, 0x00, 0x02]] {
        let e = AdminCredential::from_pkcs12(garbage, FIXTURE_PASSWORD).unwrap_err();
        assert!(matches!(e, E::NotPkcs12 { .. }), "{e}");
        assert!(e.to_string().starts_with("not a PKCS#12 (.p12/.pfx) file"), "{e}");
    }
}

#[test]
fn a_key_vault_secret_holds_base64_pkcs12_without_a_password() {
    let value = STANDARD.encode(EMPTY_PASSWORD_P12);
    assert_business_cert(&AdminCredential::from_key_vault_secret(&value).unwrap());
    let wrapped: String =
        value.as_bytes().chunks(76).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect();
    assert_business_cert(&AdminCredential::from_key_vault_secret(&wrapped).unwrap());
}

#[test]
fn a_key_vault_secret_may_hold_pem_with_key_and_chain() {
    let value = format!("{}{}", pem("PRIVATE KEY", &pki().leaf_key), chain_pem());
    let cred = AdminCredential::from_key_vault_secret(&value).unwrap();
    assert_eq!(cred.subject(), "CN=TEST BUSINESS CERT, O=EXAMPLE ORG");
    assert_eq!(cred.chain().len(), 2);
}

#[test]
fn a_key_vault_secret_that_cannot_be_used_says_why() {
    let e = AdminCredential::from_key_vault_secret("not base64 at all!").unwrap_err();
    assert!(matches!(e, E::SecretFormat), "{e}");
    let e = AdminCredential::from_key_vault_secret(&STANDARD.encode(b"plain bytes")).unwrap_err();
    assert!(matches!(e, E::SecretFormat), "{e}");
    let e = AdminCredential::from_key_vault_secret(&STANDARD.encode(AES_P12)).unwrap_err();
    assert!(matches!(e, E::SecretPassword), "{e}");
    let e = AdminCredential::from_key_vault_secret(&chain_pem()).unwrap_err();
    assert!(matches!(e, E::SecretWithoutKey), "{e}");
}

#[test]
fn debug_and_errors_never_show_the_private_key() {
    let key = pem("PRIVATE KEY", &pki().leaf_key);
    let cred = AdminCredential::from_pem(chain_pem().as_bytes(), key.as_bytes()).unwrap();
    let debug = format!("{cred:?}");
    assert_eq!(
        debug,
        "AdminCredential { subject: \"CN=TEST BUSINESS CERT, O=EXAMPLE ORG\", not_after: 2030-01-31T00:00:00Z, .. }"
    );
    let damaged = key.replacen('M', "!", 3).replace("-----END PRIVATE KEY-----\n", "");
    let other = pem("PRIVATE KEY", &pki().other_key);
    let errors = [
        AdminCredential::from_pem(chain_pem().as_bytes(), damaged.as_bytes()).unwrap_err(),
        AdminCredential::from_pem(chain_pem().as_bytes(), other.as_bytes()).unwrap_err(),
        AdminCredential::from_key_vault_secret(&key).unwrap_err(),
        AdminCredential::from_pkcs12(key.as_bytes(), "").unwrap_err(),
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        for fragment in key_fragments(&pki().leaf_key).iter().chain(&key_fragments(&pki().other_key)) {
            assert!(!text.contains(fragment.as_str()), "{text}");
        }
    }
}
