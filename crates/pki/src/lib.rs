//! netctl's cluster certificates.
//!
//! A cluster's store is etcd over TLS with client certificates: etcd takes a client
//! certificate's common name as the etcd user it acts as. One CA (an [`Authority`]) signs
//! the etcd members' server certificates, the administrator's client certificate
//! (`root`), and each node's client certificate, whose name is that node's etcd user.
//!
//! A node never sends its private key: it makes a [`SigningRequest`] and keeps the key; a
//! manager issues the certificate for the name the manager chooses, whatever the request
//! asked for.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{what}: {source}")]
    Rcgen {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid host name {0:?} for a certificate")]
    BadHost(String),
    #[error("the CA's key is not the key of the CA's certificate")]
    KeyMismatch,
}

fn context(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Rcgen { what, source }
}

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster's CA: it signs every certificate the cluster's etcd and nodes use.
pub struct Authority {
    credential: Credential,
    issuer: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    /// A new CA named `name`, valid for ten years.
    pub fn generate(name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(context("generating the CA's key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(context("the CA's parameters"))?;
        params.distinguished_name = common_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let issuer = params
            .self_signed(&key)
            .map_err(context("signing the CA"))?;
        let credential = Credential {
            cert_pem: issuer.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self {
            credential,
            issuer,
            key,
        })
    }

    /// A CA kept as PEM (its certificate and key), to sign with again.
    pub fn from_pem(credential: &Credential) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(&credential.key_pem).map_err(context("the CA's key"))?;
        let params = CertificateParams::from_ca_cert_pem(&credential.cert_pem)
            .map_err(context("the CA's certificate"))?;
        if certified_key(&credential.cert_pem).as_deref() != Some(key.public_key_der().as_slice()) {
            return Err(PkiError::KeyMismatch);
        }
        // The same subject and key: what it signs verifies against the original certificate.
        let issuer = params
            .self_signed(&key)
            .map_err(context("loading the CA"))?;
        Ok(Self {
            credential: credential.clone(),
            issuer,
            key,
        })
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The CA's certificate: what clients and servers verify each other against.
    pub fn cert_pem(&self) -> &str {
        &self.credential.cert_pem
    }

    /// A server certificate for `hosts` (IP addresses or DNS names): an etcd member's, or a
    /// manager's join service. It is a client certificate too, as etcd members' are.
    pub fn server(&self, name: &str, hosts: &[String]) -> Result<Credential, PkiError> {
        let key = KeyPair::generate().map_err(context("generating a server key"))?;
        let mut params = leaf(name)?;
        params.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.issuer, &self.key)
            .map_err(context("signing a server certificate"))?;
        Ok(Credential {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate for etcd user `user`, with a key made here (the administrator's).
    pub fn client(&self, user: &str) -> Result<Credential, PkiError> {
        let request = SigningRequest::new(user)?;
        let cert_pem = self.sign(&request.csr_pem, user)?;
        Ok(Credential {
            cert_pem,
            key_pem: request.key_pem,
        })
    }

    /// Signs a node's request as a client certificate for etcd user `user`: the name is the
    /// signer's choice, never the request's.
    pub fn sign(&self, csr_pem: &str, user: &str) -> Result<String, PkiError> {
        let mut request = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(context("the signing request"))?;
        let mut params = leaf(user)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        request.params = params;
        let cert = request
            .signed_by(&self.issuer, &self.key)
            .map_err(context("signing a client certificate"))?;
        Ok(cert.pem())
    }
}

/// A node's key, kept by the node, and its request for a certificate.
#[derive(Debug, Clone)]
pub struct SigningRequest {
    pub csr_pem: String,
    pub key_pem: String,
}

impl SigningRequest {
    pub fn new(name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(context("generating a key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(context("the request's parameters"))?;
        params.distinguished_name = common_name(name);
        let csr = params
            .serialize_request(&key)
            .map_err(context("making the signing request"))?;
        Ok(Self {
            csr_pem: csr.pem().map_err(context("encoding the signing request"))?,
            key_pem: key.serialize_pem(),
        })
    }
}

/// The public key (SubjectPublicKeyInfo, DER) a PEM certificate certifies.
fn certified_key(cert_pem: &str) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.public_key().raw.to_vec())
}

fn leaf(name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(context("a certificate's parameters"))?;
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params);
    Ok(params)
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn san(host: &str) -> Result<SanType, PkiError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) if is_dns_name(host) => host
            .to_string()
            .try_into()
            .map(SanType::DnsName)
            .map_err(|_| PkiError::BadHost(host.to_string())),
        Err(_) => Err(PkiError::BadHost(host.to_string())),
    }
}

fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
}

/// From the start of last year to ten years on: a clock a little behind still accepts it.
fn set_validity(params: &mut CertificateParams) {
    const YEAR_SECS: u64 = 31_556_952;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let year = 1970 + (now / YEAR_SECS) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_carries_the_signers_name_not_the_requests() {
        let ca = Authority::generate("netctl test CA").unwrap();
        let request = SigningRequest::new("root").unwrap();
        let cert = ca.sign(&request.csr_pem, "netctl-node-abc").unwrap();
        let params = CertificateParams::from_ca_cert_pem(&cert).unwrap();
        let cn = params
            .distinguished_name
            .get(&DnType::CommonName)
            .cloned()
            .unwrap();
        assert_eq!(cn, rcgen::DnValue::Utf8String("netctl-node-abc".into()));
        assert!(!request.key_pem.is_empty());
    }

    #[test]
    fn a_reloaded_authority_signs_and_servers_name_their_hosts() {
        let ca = Authority::generate("netctl test CA").unwrap();
        let again = Authority::from_pem(ca.credential()).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let server = again
            .server("etcd", &["203.0.113.1".into(), "etcd.example".into()])
            .unwrap();
        let params = CertificateParams::from_ca_cert_pem(&server.cert_pem).unwrap();
        assert_eq!(
            params.subject_alt_names,
            vec![
                SanType::IpAddress("203.0.113.1".parse().unwrap()),
                SanType::DnsName("etcd.example".try_into().unwrap())
            ]
        );
        assert!(matches!(
            ca.server("x", &["bad host!".into()]),
            Err(PkiError::BadHost(_))
        ));
        assert!(ca.sign("not a request", "x").is_err());
        let other = Authority::generate("another CA").unwrap();
        let mismatched = Credential {
            cert_pem: ca.cert_pem().to_string(),
            key_pem: other.credential().key_pem.clone(),
        };
        assert!(matches!(
            Authority::from_pem(&mismatched),
            Err(PkiError::KeyMismatch)
        ));
    }
}
