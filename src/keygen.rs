//! Key generation as a port: aws-lc-rs in production; fixture keys and failures in tests
//! (`fixture`, compiled for tests and the `test-support` feature only).

use aws_lc_rs::encoding::AsDer;
use pkcs8::der::Decode;

use crate::jwk::{JwkError, PrivateJwk, RsaComponents};
use crate::kid::Kid;
use crate::policy::{Algorithm, KeySize};

#[cfg(any(test, feature = "test-support"))]
mod fixture;
#[cfg(any(test, feature = "test-support"))]
pub use fixture::{FailingGenerator, FixtureGenerator};

/// Why no key was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not generate an RSA-{bits} key: {reason}")]
pub struct KeyGenError {
    pub bits: u32,
    pub reason: String,
}

/// Makes new private keys. Blocking and CPU-bound: call it off the async executor.
pub trait KeyGenerator: Send + Sync {
    fn generate(&self, kid: Kid, size: KeySize, alg: Algorithm) -> Result<PrivateJwk, KeyGenError>;
}

/// RSA key generation with aws-lc-rs; the private members are read from its PKCS#8 export.
#[derive(Debug, Default, Clone, Copy)]
pub struct AwsLcGenerator;

impl KeyGenerator for AwsLcGenerator {
    fn generate(&self, kid: Kid, size: KeySize, alg: Algorithm) -> Result<PrivateJwk, KeyGenError> {
        let fail = |reason: String| KeyGenError { bits: size.bits(), reason };
        let lc_size = match size {
            KeySize::Rsa2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
            KeySize::Rsa3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
            KeySize::Rsa4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
        };
        let pair = aws_lc_rs::rsa::KeyPair::generate(lc_size)
            .map_err(|_| fail("aws-lc-rs refused to generate".to_owned()))?;
        let der = pair.as_der().map_err(|_| fail("PKCS#8 export failed".to_owned()))?;
        jwk_from_pkcs8(der.as_ref(), kid, alg).map_err(|e| fail(e.to_string()))
    }
}

/// Reads an RSA private key from PKCS#8 DER into a JWK.
pub(crate) fn jwk_from_pkcs8(der: &[u8], kid: Kid, alg: Algorithm) -> Result<PrivateJwk, JwkError> {
    let unsupported = |why: String| JwkError::Unsupported(why);
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| unsupported(format!("PKCS#8: {e}")))?;
    if info.algorithm.oid != pkcs1::ALGORITHM_OID {
        return Err(unsupported("PKCS#8 key is not rsaEncryption".to_owned()));
    }
    let rsa =
        pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(|e| unsupported(format!("PKCS#1: {e}")))?;
    let components = RsaComponents {
        n: rsa.modulus.as_bytes(),
        e: rsa.public_exponent.as_bytes(),
        d: rsa.private_exponent.as_bytes(),
        p: rsa.prime1.as_bytes(),
        q: rsa.prime2.as_bytes(),
        dp: rsa.exponent1.as_bytes(),
        dq: rsa.exponent2.as_bytes(),
        qi: rsa.coefficient.as_bytes(),
    };
    Ok(PrivateJwk::from_components(kid, alg, &components))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_lc_keys_are_valid_jwks() {
        let kid: Kid = "testklient-TEST.2026-11-21".parse().unwrap();
        let key = AwsLcGenerator.generate(kid.clone(), KeySize::Rsa2048, Algorithm::RS256).unwrap();
        assert_eq!(key.kid(), &kid);
        assert_eq!(key.public().bits(), 2048);
        assert_eq!(key.public().e, "AQAB");
        key.to_key_pair().unwrap();
        let again = PrivateJwk::from_base64(&key.to_base64()).unwrap();
        assert_eq!(again, key);
    }

    #[test]
    fn fixture_keys_cycle_and_take_the_kid() {
        let fixtures = FixtureGenerator::from_lines(include_str!("../tests/data/fixture-keys.b64")).unwrap();
        let kid: Kid = "a-TEST.2026-01-01".parse().unwrap();
        let one = fixtures.generate(kid.clone(), KeySize::Rsa2048, Algorithm::RS384).unwrap();
        let two = fixtures.generate(kid.clone(), KeySize::Rsa2048, Algorithm::RS384).unwrap();
        assert_eq!(one.kid(), &kid);
        assert_eq!(one.public().alg, Algorithm::RS384);
        assert_ne!(one.public().n, two.public().n);
        assert_eq!(fixtures.issued(), 2);
    }
}
