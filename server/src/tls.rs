//! TLS for the server: the self-signed certificate made on first run (and reused after), and
//! loading certificate and key files into a rustls configuration. It does not bind sockets.

use crate::data_dir::{write_private_file, DataDir, DataDirError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Names the generated certificate covers: the server as reached from the same machine.
/// A school that reaches it by another name gives its own files with `--tls-cert`/`--tls-key`.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{existing} exists but {missing} does not; delete {existing} to make a new pair")]
    HalfAPair { existing: PathBuf, missing: PathBuf },
    #[error("cannot read a PEM certificate from {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read a PEM private key from {path}: {reason}")]
    PrivateKey { path: PathBuf, reason: String },
    #[error("the certificate {cert} and key {key} do not make a usable TLS setup: {source}")]
    Rustls { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// Where a certificate and its private key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A loaded, checked TLS server configuration, ready for [`crate::serve`].
#[derive(Clone)]
pub struct TlsConfig(pub(crate) Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig(..)")
    }
}

/// The data directory's self-signed pair: made on first call, the same files ever after (devices
/// trust this exact certificate, so it must not change under them).
pub fn self_signed(data_dir: &DataDir) -> Result<TlsFiles, TlsError> {
    let dir = data_dir.tls_dir()?;
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    match (files.cert.exists(), files.key.exists()) {
        (true, true) => return Ok(files),
        (true, false) => {
            return Err(TlsError::HalfAPair { existing: files.cert, missing: files.key });
        }
        (false, true) => {
            return Err(TlsError::HalfAPair { existing: files.key, missing: files.cert });
        }
        (false, false) => {}
    }
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names)?;
    // The key first: a crash between the two writes leaves a key without a certificate, which
    // the next run reports rather than pairing a certificate with nothing.
    write_private_file(&files.key, generated.signing_key.serialize_pem().as_bytes())?;
    write_private_file(&files.cert, generated.cert.pem().as_bytes())?;
    tracing::info!(cert = %files.cert.display(), "created a self-signed certificate");
    Ok(files)
}

/// What `slate-server init` left in the data directory's `tls/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolCertificates {
    /// The school's CA certificate: what goes on every card as `server-ca.pem`, and into staff
    /// browsers' trust.
    pub ca: PathBuf,
    /// Whether the CA was made now (else the one made before was kept).
    pub ca_made: bool,
    /// The names and addresses the server certificate covers.
    pub names: Vec<String>,
}

/// The school's own CA (made once, kept: every card trusts it) and a server certificate it
/// signs for `hosts` (the names and addresses devices and browsers use) and this machine's own
/// names, replacing `cert.pem`/`key.pem`. The CA's name is kept beside it, so a later run signs
/// with the same issuer name (rcgen rebuilds the issuer from its name and key).
pub fn school_certificates(
    data_dir: &DataDir,
    school: &str,
    hosts: &[String],
) -> Result<SchoolCertificates, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let dir = data_dir.tls_dir()?;
    let (ca_cert, ca_key, ca_name) =
        (dir.join("ca.pem"), dir.join("ca-key.pem"), dir.join("ca-name.txt"));
    let ca_params = |name: &str| {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_after = rcgen::date_time_ymd(2046, 1, 1);
        params
    };
    let ca_made = !(ca_cert.exists() && ca_key.exists() && ca_name.exists());
    let (issuer_name, issuer_key) = if ca_made {
        let name = format!("{school} Slate CA");
        let key = KeyPair::generate()?;
        let cert = ca_params(&name).self_signed(&key)?;
        write_private_file(&ca_key, key.serialize_pem().as_bytes())?;
        write_private_file(&ca_name, name.as_bytes())?;
        write_private_file(&ca_cert, cert.pem().as_bytes())?;
        (name, key)
    } else {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| {
                TlsError::DataDir(DataDirError::Read { path: path.to_owned(), source })
            })
        };
        let key = KeyPair::from_pem(&read(&ca_key)?)?;
        (read(&ca_name)?.trim().to_owned(), key)
    };
    let issuer = Issuer::new(ca_params(&issuer_name), issuer_key);
    let mut names: Vec<String> = hosts.iter().map(|h| h.trim().to_owned()).collect();
    for own in SELF_SIGNED_NAMES {
        if !names.iter().any(|n| n == own) {
            names.push(own.to_owned());
        }
    }
    let mut params = CertificateParams::new(names.clone())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].as_str());
    params.distinguished_name = dn;
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    // The key first, as for the self-signed pair.
    write_private_file(&dir.join("key.pem"), key.serialize_pem().as_bytes())?;
    write_private_file(&dir.join("cert.pem"), cert.pem().as_bytes())?;
    Ok(SchoolCertificates { ca: ca_cert, ca_made, names })
}

/// Loads and checks a certificate chain and key, naming the file at fault if they do not load.
pub fn load(files: &TlsFiles) -> Result<TlsConfig, TlsError> {
    let certs = read_certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError::PrivateKey { path: files.key.clone(), reason: e.to_string() })?;
    let rustls_err =
        |source| TlsError::Rustls { cert: files.cert.clone(), key: files.key.clone(), source };
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rustls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsConfig(Arc::new(config)))
}

/// The cryptography rustls uses here, named rather than left to rustls's process-wide default:
/// aws-lc-rs, the one provider built (rcgen is built with it too, so ring is not).
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificates in a PEM file; an unreadable file or one without any is an error naming it.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Certificate { path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn self_signed_pair_is_made_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let files = self_signed(&dir).unwrap();
        let cert = std::fs::read(&files.cert).unwrap();
        let key_mode = std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(key_mode, 0o600);
        load(&files).unwrap();

        let again = self_signed(&dir).unwrap();
        assert_eq!(again, files);
        assert_eq!(
            std::fs::read(&again.cert).unwrap(),
            cert,
            "the same certificate, not a new one"
        );
    }

    #[test]
    fn a_missing_half_is_reported_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let files = self_signed(&dir).unwrap();
        std::fs::remove_file(&files.key).unwrap();
        let err = self_signed(&dir).unwrap_err().to_string();
        assert!(err.contains("key.pem"), "{err}");
    }

    #[test]
    fn bad_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let good = self_signed(&dir).unwrap();
        let junk = tmp.path().join("junk.pem");
        std::fs::write(&junk, "not a pem file").unwrap();
        let missing = tmp.path().join("missing.pem");

        let cases = [
            (TlsFiles { cert: junk.clone(), key: good.key.clone() }, "junk.pem"),
            (TlsFiles { cert: good.cert.clone(), key: junk.clone() }, "junk.pem"),
            (TlsFiles { cert: missing.clone(), key: good.key.clone() }, "missing.pem"),
            (TlsFiles { cert: good.cert.clone(), key: missing.clone() }, "missing.pem"),
        ];
        for (files, named) in cases {
            let err = load(&files).unwrap_err().to_string();
            assert!(err.contains(named), "{files:?}: {err}");
        }
    }
}
