//! The hub on PostgreSQL over TLS, end to end with real processes: a
//! server of the test's own with `ssl=on`, a certificate for `localhost`
//! signed by a test CA and `hostssl` lines only (plain TCP refused by the
//! server). `outpostd hub init`, `hub token new` and `hub restored` take
//! the CA file from the flag, the environment and hub.toml, `hub migrate`
//! copies a SQLite hub over it; a hub node
//! started with it serves laptops that sync records to each other through
//! it; without the CA file every command refuses, naming the setting.

use std::path::Path;
use std::process::Command;

use outpost_hub_postgres::test_pg::{Cluster, INSTALL, TestCa};
use outpost_tests::hub::{HubNode, add_visit, admin, ok_at as outpost, record_ids};
use outpost_tests::{bin, clean_env};

/// `outpostd --data-dir DIR ARGS` with a clean environment plus `env`;
/// (status ok, stdout, stderr).
fn outpostd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = clean_env(
        Command::new(bin("outpostd"))
            .arg("--data-dir")
            .arg(dir)
            .args(args),
    )
    .envs(env.iter().copied())
    .output()
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_hub_on_postgres_over_verified_tls_serves_laptops_and_its_commands_work() {
    let ca = TestCa::new("Outpost test CA");
    let mut cluster = Cluster::init().unwrap_or_else(|e| panic!("{e}; {INSTALL}"));
    cluster.start_tls_only(&ca, &["localhost"]).unwrap();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        cluster.port
    );
    let scratch = tempfile::tempdir().unwrap();
    let ca_file = scratch.path().join("db-ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let ca_path = ca_file.to_str().unwrap();

    // Without the CA file: refused, saying which setting to give.
    let (ok, _, err) = outpostd(scratch.path(), &["hub", "init", "--database", &url], &[]);
    assert!(!ok, "connected without trusting the server's CA");
    assert!(
        err.contains("not signed by an authority") && err.contains("--database-ca-file"),
        "{err}"
    );
    assert!(!err.contains("postgres@"), "no URL in messages: {err}");

    // The flag.
    let (ok, token, err) = outpostd(
        scratch.path(),
        &[
            "hub",
            "init",
            "--database",
            &url,
            "--database-ca-file",
            ca_path,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(token.starts_with("opa_"), "{token}");
    // The environment.
    let (ok, second, err) = outpostd(
        scratch.path(),
        &["hub", "token", "new", "--database", &url],
        &[("OUTPOST_HUB_DATABASE_CA_FILE", ca_path)],
    );
    assert!(ok, "{err}");
    assert!(second.starts_with("opa_") && second != token, "{second}");
    // hub.toml, with the database there too.
    let hub_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        hub_dir.path().join("hub.toml"),
        format!("database = {url:?}\ndatabase_ca_file = {ca_path:?}\n"),
    )
    .unwrap();
    let (ok, _, err) = outpostd(hub_dir.path(), &["hub", "restored"], &[]);
    assert!(ok, "{err}");
    assert!(err.contains("0 organisation"), "{err}");

    // A hub node trusting the CA through its environment.
    let node = HubNode::start(&url, &[("OUTPOST_HUB_DATABASE_CA_FILE", ca_path)]);
    admin(
        &node,
        &second,
        scratch.path(),
        &["org", "add", "mjolby", "Mjölby kommun"],
    );
    let laptops: Vec<tempfile::TempDir> = ["Bibliotek", "Medborgarkontor"]
        .iter()
        .map(|site| {
            let dir = tempfile::tempdir().unwrap();
            outpost(
                dir.path(),
                &["init", "--org", "mjolby", "--site", site, "--staff", "AB"],
            );
            let code = admin(&node, &token, dir.path(), &["invite", "--org", "mjolby"]);
            outpost(dir.path(), &["enroll", &node.url, &code]);
            dir
        })
        .collect();
    let mut want = vec![
        add_visit(laptops[0].path(), "besök ett"),
        add_visit(laptops[1].path(), "besök två"),
    ];
    want.sort();
    for _ in 0..2 {
        for l in &laptops {
            outpost(l.path(), &["sync"]);
        }
    }
    for l in &laptops {
        assert_eq!(record_ids(l.path()), want, "every laptop has every record");
    }

    // Every session the hub holds to the database is encrypted.
    let mut check = outpost_hub_postgres::PgTarget::new(&url, Some(&ca_file))
        .unwrap()
        .connect()
        .unwrap();
    let row = check
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.application_name = 'outpostd-hub' \
             AND a.pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(all >= 1, "the hub holds no session to the database");
    assert_eq!(all, encrypted, "a hub session without TLS");

    // `hub migrate` copies a SQLite hub into an empty database over the
    // same kind of connection.
    check.batch_execute("CREATE DATABASE moved").unwrap();
    let sqlite_hub = tempfile::tempdir().unwrap();
    let (ok, _, err) = outpostd(sqlite_hub.path(), &["hub", "init"], &[]);
    assert!(ok, "{err}");
    let moved = url.replace("/postgres?", "/moved?");
    let from = sqlite_hub.path().to_str().unwrap();
    let (ok, _, err) = outpostd(
        scratch.path(),
        &["hub", "migrate", "--from", from, "--database", &moved],
        &[],
    );
    assert!(!ok && err.contains("--database-ca-file"), "{err}");
    let (ok, out, err) = outpostd(
        scratch.path(),
        &[
            "hub",
            "migrate",
            "--from",
            from,
            "--database",
            &moved,
            "--database-ca-file",
            ca_path,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("admin_tokens"), "{out}");
}
