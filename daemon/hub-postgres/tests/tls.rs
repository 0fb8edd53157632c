//! TLS from the hub to PostgreSQL against real servers of the test's own
//! (`test_pg::Cluster`): one with `ssl=on`, a certificate for `localhost`
//! signed by a test CA and `hostssl` lines only (the server itself refuses
//! plain connections), and one with `ssl=off`. Each `sslmode` does what
//! libpq's does, the connection is really encrypted (`pg_stat_ssl`), and
//! each refusal is its own typed error naming the setting to change.

use std::path::{Path, PathBuf};

use outpost_hub_db::HubStore;
use outpost_hub_postgres::test_pg::{Cluster, INSTALL, TestCa};
use outpost_hub_postgres::{PgError, PgHubStore, PgTarget};

/// A started server with TLS on and plain TCP refused, and the CA file
/// (in a directory kept alive by the returned guard).
fn tls_server() -> (Cluster, PathBuf, tempfile::TempDir) {
    let ca = TestCa::new("Outpost test CA");
    let mut cluster = Cluster::init().unwrap_or_else(|e| panic!("{e}; {INSTALL}"));
    cluster.start_tls_only(&ca, &["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    (cluster, ca_file, dir)
}

fn url(host: &str, port: u16, query: &str) -> String {
    format!("postgres://postgres@{host}:{port}/postgres?{query}")
}

/// Whether this connection's own backend uses TLS, and with which version.
fn ssl_of(target: &PgTarget) -> (bool, Option<String>) {
    let mut client = target.connect().unwrap();
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

fn connect_err(url: &str, ca_file: Option<&Path>) -> PgError {
    let target = PgTarget::new(url, ca_file).unwrap();
    match target.connect() {
        Ok(_) => panic!("{target:?} connected"),
        Err(e) => e,
    }
}

#[test]
fn verify_full_with_the_ca_file_is_encrypted_and_checks_the_certificate() {
    let (cluster, ca_file, _dir) = tls_server();
    let port = cluster.port;

    // The CA file from the setting: encrypted, and the store works on it.
    let full = url("localhost", port, "sslmode=verify-full");
    let target = PgTarget::new(&full, Some(&ca_file)).unwrap();
    let (ssl, version) = ssl_of(&target);
    assert!(ssl, "pg_stat_ssl says the connection is not encrypted");
    assert!(
        version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")),
        "{version:?}"
    );
    let store = PgHubStore::open_target(target, 2).unwrap();
    assert!(!store.has_admin_token().unwrap());
    store.create_admin_token(None).unwrap();
    assert!(store.has_admin_token().unwrap());

    // The same file named by the URL, as libpq's sslrootcert=.
    let in_url = format!(
        "{full}&sslrootcert={}",
        ca_file.display().to_string().replace('/', "%2F")
    );
    assert!(ssl_of(&PgTarget::new(&in_url, None).unwrap()).0);

    // Without the CA file the system's roots do not know the test CA.
    let err = connect_err(&full, None);
    assert!(matches!(err, PgError::TlsUntrusted { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("database_ca_file") && msg.contains("OUTPOST_HUB_DATABASE_CA_FILE"),
        "{msg}"
    );
    // A CA file of another authority is no better.
    let other = ca_file.with_file_name("other-ca.pem");
    std::fs::write(&other, TestCa::new("Someone else").cert_pem).unwrap();
    let err = connect_err(&full, Some(&other));
    assert!(matches!(err, PgError::TlsUntrusted { .. }), "{err:?}");
    assert!(err.to_string().contains("other-ca.pem"), "{err}");

    // The certificate names localhost, not 127.0.0.1: verify-full refuses
    // the address, verify-ca (chain only) takes it.
    let by_address = url("127.0.0.1", port, "sslmode=verify-full");
    let err = connect_err(&by_address, Some(&ca_file));
    assert!(matches!(err, PgError::TlsHostMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1") && msg.contains("verify-ca"),
        "{msg}"
    );
    let chain_only = url("127.0.0.1", port, "sslmode=verify-ca");
    assert!(ssl_of(&PgTarget::new(&chain_only, Some(&ca_file)).unwrap()).0);

    // libpq's require and prefer: encrypted without a CA file (the
    // certificate unchecked), and the chain checked when one is given.
    for mode in ["require", "prefer"] {
        let u = url("127.0.0.1", port, &format!("sslmode={mode}"));
        assert!(ssl_of(&PgTarget::new(&u, None).unwrap()).0, "{mode}");
        let err = connect_err(&u, Some(&other));
        assert!(
            matches!(err, PgError::TlsUntrusted { .. }),
            "{mode}: {err:?}"
        );
    }
    // And the server itself turns away a connection without TLS.
    let err = connect_err(&url("127.0.0.1", port, "sslmode=disable"), None);
    let PgError::Postgres(e) = &err else {
        panic!("{err:?}")
    };
    let refusal = e.as_db_error().map(|d| d.message()).unwrap_or_default();
    assert!(
        refusal.contains("pg_hba.conf") && refusal.contains("no encryption"),
        "the server accepted or failed oddly: {err:?}"
    );
}

#[test]
fn require_refuses_a_server_without_tls_and_prefer_falls_back() {
    let mut cluster = Cluster::init().unwrap_or_else(|e| panic!("{e}; {INSTALL}"));
    cluster.start(&["ssl=off"]).unwrap();
    let port = cluster.port;
    for mode in ["require", "verify-ca", "verify-full"] {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, TestCa::new("unused").cert_pem).unwrap();
        let err = connect_err(
            &url("localhost", port, &format!("sslmode={mode}")),
            Some(&ca_file),
        );
        assert!(matches!(err, PgError::TlsRefused { .. }), "{mode}: {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("sslmode={mode}")) && msg.contains("postgresql.conf"),
            "{msg}"
        );
        // The store's open says the same (what `outpostd hub` prints).
        let open = PgHubStore::open(&url("localhost", port, &format!("sslmode={mode}")));
        assert!(
            matches!(open, Err(PgError::TlsRefused { .. })),
            "{mode}: {open:?}"
        );
    }
    // prefer (the default, also with no sslmode at all) connects in plain.
    for query in ["sslmode=prefer", ""] {
        let target = PgTarget::new(&url("127.0.0.1", port, query), None).unwrap();
        assert_eq!(ssl_of(&target), (false, None), "{query}");
    }
    // A mode PostgreSQL does not know is refused before connecting.
    let err = PgTarget::new(&url("127.0.0.1", port, "sslmode=on"), None).unwrap_err();
    assert!(err.to_string().contains("verify-full"), "{err}");
}
