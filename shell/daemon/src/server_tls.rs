//! Trust for the school server: the system's roots plus the school's CA, checked by webpki as
//! usual, with one allowance for a clock a Raspberry Pi gets wrong. A Pi has no real-time clock:
//! until a time server or the school server has set it (see [`crate::clock`]), its clock says
//! the last time it knew, or the image's build time, which is often before the start of a
//! certificate made since. While the clock is not known to be right, a certificate "not valid
//! yet" is checked again as at its own start time: its issuer, its name, and every expiry in the
//! chain as at that time still apply. A certificate that is not valid yet when the clock is
//! right is refused as before.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;

/// Whether the wall clock is known to be right now.
pub type ClockKnown = Arc<dyn Fn() -> bool + Send + Sync>;

/// At most this many certificates in one chain are checked again at a later start time.
const RECHECKS: usize = 4;

/// When to check a certificate chain again after `error`: at the start time of the certificate
/// that is not valid yet, when the clock is not known to be right. Pure.
pub fn recheck_at(error: &rustls::Error, clock_known: bool) -> Option<UnixTime> {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            not_before,
            ..
        }) if !clock_known => Some(*not_before),
        _ => None,
    }
}

/// The TLS settings for every request to the school server: `school_ca` besides the system's
/// roots, TLS 1.2 and 1.3 with aws-lc-rs, and the allowance above.
pub fn client_config(
    school_ca: Vec<CertificateDer<'static>>,
    clock_known: ClockKnown,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "a system root certificate could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    for ca in school_ca {
        roots.add(ca).map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("no certificate to trust: {e}"))?;
    let verifier = ClockTolerant { webpki, clock_known };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// webpki's verifier with the allowance for a clock not known to be right.
struct ClockTolerant {
    webpki: Arc<WebPkiServerVerifier>,
    clock_known: ClockKnown,
}

impl std::fmt::Debug for ClockTolerant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockTolerant").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for ClockTolerant {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut at = now;
        let mut rechecks = 0;
        loop {
            let result = self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                at,
            );
            let Err(error) = &result else { return result };
            match recheck_at(error, (self.clock_known)()) {
                Some(later) if later > at && rechecks < RECHECKS => {
                    if rechecks == 0 {
                        tracing::warn!(
                            clock = now.as_secs(),
                            certificate_starts = later.as_secs(),
                            "the clock is before the school server's certificate starts and \
                             no time source has set it yet: checking the certificate as at its \
                             start"
                        );
                    }
                    rechecks += 1;
                    at = later;
                }
                _ => return result,
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_certificate_not_yet_valid_by_a_clock_not_known_is_checked_again() {
        let starts = UnixTime::since_unix_epoch(std::time::Duration::from_secs(2_000_000_000));
        let clock = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_900_000_000));
        let not_yet: rustls::Error =
            CertificateError::NotValidYetContext { time: clock, not_before: starts }.into();
        let expired: rustls::Error =
            CertificateError::ExpiredContext { time: clock, not_after: clock }.into();
        let cases = [
            ("not yet valid, clock not known", &not_yet, false, Some(starts)),
            ("not yet valid, clock known", &not_yet, true, None),
            ("expired, clock not known", &expired, false, None),
            ("unknown issuer", &CertificateError::UnknownIssuer.into(), false, None),
            ("bad name", &CertificateError::NotValidForName.into(), false, None),
        ];
        for (name, error, known, expected) in cases {
            assert_eq!(recheck_at(error, known), expected, "{name}");
        }
    }

    /// A school CA and a server certificate, valid from `(ca_from, leaf_from)` to a year on.
    fn chain(
        ca_from: (i32, u8, u8),
        leaf_from: (i32, u8, u8),
    ) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.not_before = rcgen::date_time_ymd(ca_from.0, ca_from.1, ca_from.2);
        ca.not_after = rcgen::date_time_ymd(ca_from.0 + 1, ca_from.1, ca_from.2);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["slate.school.test".into()]).unwrap();
        leaf.not_before = rcgen::date_time_ymd(leaf_from.0, leaf_from.1, leaf_from.2);
        leaf.not_after = rcgen::date_time_ymd(leaf_from.0 + 1, leaf_from.1, leaf_from.2);
        let leaf_cert =
            leaf.signed_by(&leaf_key, &rcgen::Issuer::from_params(&ca, &ca_key)).unwrap();
        (ca_cert.der().clone(), leaf_cert.der().clone())
    }

    fn verify(
        ca: &CertificateDer<'static>,
        leaf: &CertificateDer<'static>,
        clock: &str,
        known: bool,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let verifier = ClockTolerant { webpki, clock_known: Arc::new(move || known) };
        let clock: chrono::DateTime<chrono::Utc> = clock.parse().unwrap();
        let now =
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(clock.timestamp() as u64));
        let name = ServerName::try_from("slate.school.test").unwrap();
        verifier.verify_server_cert(leaf, &[], &name, &[], now)
    }

    #[test]
    fn a_certificate_made_after_the_clock_is_trusted_only_while_the_clock_is_not_known() {
        // The image was built in 2025; the school made its CA and certificate in December 2026.
        let (ca, leaf) = chain((2026, 12, 1), (2026, 12, 2));
        let build_time = "2025-12-06T10:00:00Z";
        assert!(verify(&ca, &leaf, build_time, false).is_ok(), "clock not known: trusted");
        let refused = verify(&ca, &leaf, build_time, true).unwrap_err();
        assert!(
            matches!(
                refused,
                rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "clock known: {refused:?}"
        );
        assert!(verify(&ca, &leaf, "2026-12-06T10:00:00Z", true).is_ok(), "a right clock");
        // Everything else is still checked: another CA's certificate, or one long expired.
        let (_, stranger) = chain((2026, 12, 1), (2026, 12, 2));
        assert!(verify(&ca, &stranger, build_time, false).is_err(), "issuer still checked");
        let (old_ca, old_leaf) = chain((2020, 1, 1), (2020, 1, 2));
        let expired = verify(&old_ca, &old_leaf, "2026-12-06T10:00:00Z", false).unwrap_err();
        assert!(
            matches!(
                expired,
                rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "expiry still checked: {expired:?}"
        );
    }
}
